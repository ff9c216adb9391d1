#!/usr/bin/python3
"""An echo bot as an external component (XEP-0114), written with slixmpp's ComponentXMPP.

The same bot as bot.js: it answers every chat message sent to an address at its domain with the
same body, and joins a MUC room when invited (XEP-0045 mediated or XEP-0249 direct invitation).

    COMPONENT_DOMAIN=bot.example.org COMPONENT_SECRET=... /usr/bin/python3 examples/echo-bot/echo_bot.py

Needs slixmpp (Debian: apt-get install python3-slixmpp). See README.md beside it.
"""
import asyncio
import logging
import os
import signal
import sys
from urllib.parse import urlsplit

from slixmpp import JID
from slixmpp.componentxmpp import ComponentXMPP

NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_USER = 'http://jabber.org/protocol/muc#user'
NS_CONFERENCE = 'jabber:x:conference'


class EchoBot(ComponentXMPP):
    def __init__(self, domain, secret, host, port, name, nick):
        super().__init__(domain, secret, host, port)
        self.bot_jid = JID(f'{name}@{domain}')
        self.nick = nick
        self.register_plugin('xep_0030')
        self['xep_0030'].add_identity(category='client', itype='bot', name='Echo bot', jid=self.bot_jid)
        self['xep_0030'].add_feature(NS_CONFERENCE, jid=self.bot_jid)
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('message', self.on_message)

    def on_start(self, _event):
        print(f'online as {self.boundjid}', flush=True)

    def on_message(self, msg):
        if msg['type'] == 'error':
            return
        room = self.invitation(msg)
        if room:
            return self.join(room, msg['to'])
        if msg['type'] == 'chat' and msg['body']:
            self.make_message(mto=msg['from'], mfrom=msg['to'], mbody=msg['body'], mtype='chat').send()

    @staticmethod
    def invitation(msg):
        """The room and password of a mediated or direct invitation, if the message is one."""
        mediated = msg.xml.find(f'{{{NS_MUC_USER}}}x')
        if mediated is not None and mediated.find(f'{{{NS_MUC_USER}}}invite') is not None:
            return msg['from'].bare, mediated.findtext(f'{{{NS_MUC_USER}}}password')
        direct = msg.xml.find(f'{{{NS_CONFERENCE}}}x')
        if direct is not None and direct.get('jid'):
            return direct.get('jid'), direct.get('password')
        return None

    def join(self, room, invited):
        jid, password = room
        sender = invited if invited.user else self.bot_jid
        print(f'invited to {jid}: joining as {self.nick}', flush=True)
        presence = self.make_presence(pto=f'{jid}/{self.nick}', pfrom=sender)
        x = presence.xml.makeelement(f'{{{NS_MUC}}}x', {})
        if password:
            secret = x.makeelement(f'{{{NS_MUC}}}password', {})
            secret.text = password
            x.append(secret)
        presence.xml.append(x)
        presence.send()


def main():
    domain = os.environ.get('COMPONENT_DOMAIN')
    secret = os.environ.get('COMPONENT_SECRET')
    if not domain or not secret:
        print('set COMPONENT_DOMAIN (e.g. bot.example.org) and COMPONENT_SECRET (the secret in Starling\'s [components."bot.example.org"])', file=sys.stderr)
        sys.exit(2)
    service = urlsplit(os.environ.get('COMPONENT_SERVICE', 'xmpp://127.0.0.1:5347'))
    logging.basicConfig(level=logging.DEBUG if os.environ.get('BOT_DEBUG') else logging.WARNING, format='%(levelname)s %(message)s')
    bot = EchoBot(domain, secret, service.hostname, service.port or 5347, os.environ.get('BOT_NAME', 'echo'), os.environ.get('BOT_NICK', 'echo'))
    loop = asyncio.get_event_loop()
    # Disconnected (stopped, or the server went away): the process ends; a supervisor restarts it.
    bot.add_event_handler('disconnected', lambda _e: (print('offline', flush=True), loop.stop()))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: (bot.disconnect(), loop.call_later(1, loop.stop)))
    bot.connect()
    loop.run_forever()


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""Interop run: two slixmpp clients log in to a Starling over STARTTLS with SCRAM and exchange
messages.

The scenario: both clients connect to --host/--port for --domain, do STARTTLS (certificate not
verified: the test server's is self-signed), authenticate with --mechanism only, bind, send initial
presence and wait for a ping round trip to the server (so the presence has been processed before
anyone routes to the bare JID: a resource without presence gets nothing sent to its bare JID,
RFC 6121 section 8.5.2); user1 sends a message to user2's bare JID, user2 replies to the full JID it came from,
then user2 sends to user1's full JID. Every message must arrive with the sender's full JID in
'from' and the body unchanged.

Run it with Debian's /usr/bin/python3 (python3-slixmpp). Exit status 0 means every check passed;
a failure prints a line starting with "FAIL:" on stderr and exits 1 (2: bad arguments, 3: slixmpp
missing). --debug logs the XML exchanged on stderr. On success stdout ends with, per user:

    RESULT mechanism=<SASL mechanism> user=<bare jid>
    RESULT tls=<TLS version> user=<bare jid>
    RESULT cbflag=<gs2 cbind flag: n, y or p=type> user=<bare jid>
    RESULT failed=<mechanism:condition,... of failed SASL attempts, or -> user=<bare jid>
    OK

Channel binding: Debian's slixmpp (1.8.x) only knows tls-unique, which is undefined over TLS 1.3
(RFC 9266) and which Starling does not offer (it advertises tls-exporter and tls-server-end-point
with XEP-0440). Left alone, slixmpp tries SCRAM-*-PLUS with p=tls-unique (refused), then plain
SCRAM with the gs2 flag 'y' ("I support channel binding but think the server does not"), which a
server offering -PLUS MUST refuse as a downgrade (RFC 5802 section 6), then PLAIN. With the default
--channel-binding=none the script tells slixmpp, through the feature_mechanisms sasl_callback, that
it has no channel-binding data, so it sends 'n'; --channel-binding=stock leaves slixmpp alone.
--mechanism=any lets slixmpp choose (and fail over) on its own.
"""

import asyncio
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Failure, base_parser, close, connect, new_client, ping_server, print_result, retrieve, run  # noqa: E402


def parse_args(argv):
    p = base_parser(__doc__, 20.0)
    p.add_argument('--mechanism', default='SCRAM-SHA-256',
                   help="the only SASL mechanism slixmpp may use (default SCRAM-SHA-256); 'any' leaves the "
                        "choice to slixmpp, tolerates failed attempts and does not require SCRAM")
    p.add_argument('--channel-binding', choices=['none', 'stock'], default='none',
                   help="'none': the client claims no channel-binding support (gs2 flag 'n'); "
                        "'stock': slixmpp's own behaviour")
    return p.parse_args(argv)


class Client:
    """One slixmpp ClientXMPP with futures for the events the scenario waits on."""

    def __init__(self, args, local, resource, problems):
        self.label = local
        self.problems = problems  # shared future: the first problem after the sessions started
        loop = asyncio.get_running_loop()
        self.any_mechanism = args.mechanism == 'any'
        # XMPP Ping: the round trip after initial presence.
        self.xmpp = new_client(f'{local}@{args.domain}/{resource}', args.password,
                               mechanism=None if self.any_mechanism else args.mechanism, plugins=['xep_0199'],
                               channel_binding=args.channel_binding == 'stock')
        self.session = loop.create_future()
        self.messages = asyncio.Queue()
        self.mechanism = None
        self.tls_version = None
        self.gs2_flag = None
        self.failure = None  # the first problem seen, for the report
        self.closing = False  # from then on a disconnect is ours
        self.failed_attempts = []

        x = self.xmpp
        x.add_event_handler('auth_success', self._on_auth)
        x.add_event_handler('failed_auth', self._on_failed_auth)
        x.add_event_handler('failed_all_auth', lambda _e=None: self._fail('no SASL mechanism left to try'))
        x.add_event_handler('no_auth', lambda _e=None: self._fail(f'server did not offer {args.mechanism}'))
        x.add_event_handler('connection_failed', lambda e: self._fail(f'connection failed: {e}'))
        x.add_event_handler('ssl_invalid_chain', lambda e: self._fail(f'TLS handshake failed: {e}'))
        x.add_event_handler('stream_error', lambda e: self._fail(f"stream error: {e['condition']} {e['text']}"))
        x.add_event_handler('disconnected', lambda e: self._fail(f'disconnected before the scenario finished: {e}'))
        x.add_event_handler('session_start', self._on_session_start)
        x.add_event_handler('message', self._on_message)
        x.add_event_handler('message_error', self._on_message_error)

    def _fail(self, reason):
        if self.closing:
            return
        reason = f'{self.label}: {reason}'
        if self.failure is None:
            self.failure = reason
        if not self.session.done():
            self.session.set_exception(Failure(reason))
        elif not self.problems.done():
            self.problems.set_exception(Failure(reason))

    def _on_auth(self, _stanza):
        mech = self.xmpp['feature_mechanisms'].mech
        self.mechanism = mech.name
        # The gs2 header SCRAM sent in its client-first-message: its flag is n, y or p=<type>.
        header = getattr(mech, 'gs2_header', None)
        self.gs2_flag = header.split(b',', 1)[0].decode('ascii', 'replace') if header else None
        transport = self.xmpp.transport
        ssl_object = transport.get_extra_info('ssl_object') if transport else None
        self.tls_version = ssl_object.version() if ssl_object else None

    def _on_failed_auth(self, stanza):
        mech = self.xmpp['feature_mechanisms'].mech
        name = mech.name if mech else '?'
        self.failed_attempts.append(f"{name}:{stanza['condition']}")
        reason = f"SASL {name} failed: <{stanza['condition']}/> {stanza['text']}".rstrip()
        if self.any_mechanism:
            print(f'{self.label}: {reason}; slixmpp tries its next mechanism')
        else:
            self._fail(reason)

    async def _on_session_start(self, _event):
        # Initial presence, then a round trip on the same stream: once the server answers the
        # ping it has processed the presence (RFC 6120 section 10.1: in-order processing). Any
        # answer will do, an error included. No roster request: this is about login and messages.
        self.xmpp.send_presence()
        if not await ping_server(self.xmpp, 10):
            self._fail('no answer to a ping to the server within 10 s')
            return
        if not self.session.done():
            self.session.set_result(self.xmpp.boundjid.full)

    def _on_message(self, msg):
        if msg['type'] in ('chat', 'normal') and msg['body']:
            self.messages.put_nowait(msg)

    def _on_message_error(self, msg):
        self._fail(f"message {msg['id']} bounced by {msg['from']}: <{msg['error']['condition']}/> {msg['error']['text']}".rstrip())

    def connect(self, args):
        connect(self.xmpp, args)

    async def close(self):
        await close(self.xmpp, 1, 3)


async def expect_message(client, sender, body, to, timeout):
    """The next message `client` receives, checked; fails early on a problem seen by either client."""
    receive = asyncio.ensure_future(client.messages.get())
    done, _ = await asyncio.wait({receive, client.problems}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if receive not in done:
        receive.cancel()
        if client.problems.done():
            client.problems.result()  # raises the Failure
        raise Failure(f'{client.label}: no message from {sender} within {timeout:.0f} s')
    msg = receive.result()
    if str(msg['from']) != sender:
        raise Failure(f"{client.label}: message 'from' is {msg['from']!s}, expected the sender's full JID {sender}")
    if msg['body'] != body:
        raise Failure(f"{client.label}: body is {msg['body']!r}, expected {body!r}")
    if to is not None and str(msg['to']) != to:
        raise Failure(f"{client.label}: message 'to' is {msg['to']!s}, expected {to}")
    return msg


async def scenario(args):
    deadline = time.monotonic() + args.timeout

    def left():
        return max(0.5, deadline - time.monotonic())

    problems = asyncio.get_running_loop().create_future()
    alice = Client(args, args.user1, 'slix-a', problems)
    bob = Client(args, args.user2, 'slix-b', problems)
    try:
        for c in (alice, bob):
            c.connect(args)
        try:
            a_jid, b_jid = await asyncio.wait_for(asyncio.gather(alice.session, bob.session), left())
        except asyncio.TimeoutError:
            pending = [c.label for c in (alice, bob) if not c.session.done()]
            raise Failure(f"session not started within {args.timeout:.0f} s for {', '.join(pending)}") from None

        for c, jid in ((alice, a_jid), (bob, b_jid)):
            print(f'{c.label}: bound {jid} over {c.tls_version or "?"} with {c.mechanism} (gs2 flag {c.gs2_flag})')
            if c.tls_version is None:
                raise Failure(f'{c.label}: the stream is not encrypted (STARTTLS did not happen)')
            if c.any_mechanism:
                continue
            if c.mechanism != args.mechanism:
                raise Failure(f'{c.label}: authenticated with {c.mechanism}, expected {args.mechanism}')
            if not (c.mechanism or '').startswith('SCRAM-'):
                raise Failure(f'{c.label}: {c.mechanism} is not SCRAM')
            if not getattr(c.xmpp['feature_mechanisms'].mech, '_mutual_auth', False):
                raise Failure(f"{c.label}: the server's SCRAM signature (v=) was not verified")

        # alice -> bob's bare JID (routed to bob's available resource), bob answers alice's full JID.
        body1 = 'Hello from slixmpp alice \u2764 <&>'
        alice.xmpp.send_message(mto=bob.xmpp.boundjid.bare, mbody=body1, mtype='chat')
        first = await expect_message(bob, a_jid, body1, None, left())
        print(f'{bob.label}: received {body1!r} from {first["from"]}')

        body2 = 'Reply from slixmpp bob \u00e9'
        reply = first.reply(body2)
        reply['type'] = 'chat'
        reply.send()
        await expect_message(alice, b_jid, body2, a_jid, left())
        print(f'{alice.label}: received {body2!r} from {b_jid}')

        # and the other way round, full JID to full JID.
        body3 = 'full to full'
        bob.xmpp.send_message(mto=a_jid, mbody=body3, mtype='chat')
        await expect_message(alice, b_jid, body3, a_jid, left())
        print(f'{alice.label}: received {body3!r} from {b_jid}')
    except Failure as err:
        earlier = [c.failure for c in (alice, bob) if c.failure and c.failure not in str(err)]
        if earlier:
            raise Failure(f"{err} (also seen: {'; '.join(earlier)})") from None
        raise
    else:
        for c in (alice, bob):
            user = c.xmpp.boundjid.bare
            print_result('mechanism', c.mechanism, user)
            print_result('tls', c.tls_version, user)
            print_result('cbflag', c.gs2_flag, user)
            print_result('failed', ','.join(c.failed_attempts) or '-', user)
    finally:
        for c in (alice, bob):
            c.closing = True
        retrieve(alice.session, bob.session, problems)
        await asyncio.gather(alice.close(), bob.close(), return_exceptions=True)


def main(argv):
    args = parse_args(argv)
    return run(scenario, args, args.timeout + 5, banner=f', {ssl.OPENSSL_VERSION}')


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

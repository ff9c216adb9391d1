#!/usr/bin/python3
"""Interop run: slixmpp's pubsub plugins (xep_0060, xep_0163, xep_0084) against Starling's PEP.

The scenario: two clients that are not contacts (--user1, --user2) log in (see common.py), send
initial presence and wait for a ping round trip. user1 publishes an OMEMO device list
(eu.siacs.conversations.axolotl.devicelist, item 'current') with publish-options
pubsub#access_model=open, as Conversations, Gajim and Profanity do; user2 fetches it with
get_items and must see the device ids. user1 publishes an avatar (xep_0084 publish_avatar and
publish_avatar_metadata, both open); user2 fetches the data with retrieve_avatar and must get the
same bytes. user1 publishes the device list again with access_model=presence: the server must
refuse it with <conflict/> and <precondition-not-met/> (XEP-0060 §7.1.5).

Run it with Debian's /usr/bin/python3 (python3-slixmpp). Exit status 0: every check passed; a
failure prints "FAIL: ..." on stderr and exits 1 (3: slixmpp missing). --debug logs the XML on
stderr. On success stdout ends with:

    RESULT devices=<device ids user2 fetched, comma-separated> user=<user2's bare jid>
    RESULT avatar=<bytes of the avatar user2 fetched> user=<user2's bare jid>
    RESULT precondition=<the error's pubsub condition> user=<user1's bare jid>
    OK
"""

import asyncio
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Failure, IqError, IqTimeout, SessionClient, base_parser, print_result, run  # noqa: E402

OMEMO = 'eu.siacs.conversations.axolotl'
DEVICELIST = f'{OMEMO}.devicelist'
PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options'
PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors'
AVATAR = b'\x89PNG\r\n\x1a\n-slixmpp-avatar'


class Client(SessionClient):
    def __init__(self, args, local):
        super().__init__(args, local, ['xep_0199', 'xep_0030', 'xep_0004', 'xep_0060', 'xep_0163', 'xep_0084'])

    def options(self, access_model):
        """A publish-options form asking for `access_model`."""
        form = self.xmpp['xep_0004'].make_form('submit')
        form.add_field('FORM_TYPE', ftype='hidden', value=PUBLISH_OPTIONS)
        form.add_field('pubsub#access_model', value=access_model)
        return form


def device_list(*ids):
    root = ET.Element(f'{{{OMEMO}}}list')
    for device in ids:
        ET.SubElement(root, f'{{{OMEMO}}}device', {'id': device})
    return root


async def scenario(args):
    alice = Client(args, args.user1)
    bob = Client(args, args.user2)
    try:
        for c in (alice, bob):
            c.connect(args)
        await asyncio.wait_for(asyncio.gather(alice.session, bob.session), args.timeout)
        owner = alice.xmpp.boundjid.bare

        # The OMEMO device list, open to anyone, fetched by a stranger.
        result = await alice.xmpp['xep_0060'].publish(None, DEVICELIST, id='current', payload=device_list('31415', '27182'),
                                                      options=alice.options('open'), timeout=10)
        if result['pubsub']['publish']['item']['id'] != 'current':
            raise Failure(f"alice: the publish result names item {result['pubsub']['publish']['item']['id']!r}, expected 'current'")
        fetched = await bob.xmpp['xep_0060'].get_items(owner, DEVICELIST, timeout=10)
        items = list(fetched['pubsub']['items'])
        if len(items) != 1:
            raise Failure(f'bob: {len(items)} items in the device list, expected 1')
        ids = [d.get('id') for d in items[0]['payload'].findall(f'{{{OMEMO}}}device')]
        print_result('devices', ','.join(ids), bob.xmpp.boundjid.bare)

        # An avatar (XEP-0084): data, then metadata, both open.
        avatar = alice.xmpp['xep_0084']
        await avatar.publish_avatar(AVATAR, options=alice.options('open'), timeout=10)
        avatar_id = avatar.generate_id(AVATAR)
        await avatar.publish_avatar_metadata({'id': avatar_id, 'type': 'image/png', 'bytes': len(AVATAR)}, options=alice.options('open'), timeout=10)
        got = await bob.xmpp['xep_0084'].retrieve_avatar(owner, avatar_id, timeout=10)
        data = got['pubsub']['items']['item']['avatar_data']['value']
        if data != AVATAR:
            raise Failure(f'bob: the avatar fetched is {data!r}, expected {AVATAR!r}')
        print_result('avatar', len(data), bob.xmpp.boundjid.bare)

        # Publish-options that differ from the node's configuration: precondition-not-met.
        try:
            await alice.xmpp['xep_0060'].publish(None, DEVICELIST, id='current', payload=device_list('31415'),
                                                 options=alice.options('presence'), timeout=10)
            raise Failure('alice: a publish with access_model=presence on an open node was accepted')
        except IqError as err:
            error = err.iq['error']
            app = error.xml.find(f'{{{PUBSUB_ERRORS}}}precondition-not-met')
            if error['condition'] != 'conflict' or app is None:
                raise Failure(f"alice: expected conflict with precondition-not-met, got {error['condition']}: {error.xml!r}") from None
            print_result('precondition', 'precondition-not-met', owner)
    finally:
        await asyncio.gather(alice.close(), bob.close(), return_exceptions=True)


def main(argv):
    args = parse_args(argv)
    return run(scenario, args, args.timeout + 5, errors=(asyncio.TimeoutError, IqError, IqTimeout),
               describe=lambda err: f'{type(err).__name__}: {err}')


def parse_args(argv):
    return base_parser(__doc__, 30.0).parse_args(argv)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

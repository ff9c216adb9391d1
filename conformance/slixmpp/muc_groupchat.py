#!/usr/bin/python3
"""Interop run: slixmpp's MUC plugin (xep_0045) against Starling's multi-user chat service.

The scenario: two clients (--user1, --user2) log in over STARTTLS with SCRAM-SHA-256 (telling
slixmpp it has no channel binding, see common.py), send initial presence and wait
for a ping round trip. user1 creates --room with join_muc_wait (the room must answer with status
codes 110 and 201: a new, locked room), fetches the configuration form with get_room_config,
names the room and submits the form with set_room_config (a reserved room), then user2 enters
with join_muc_wait and must see user1 among the occupants and get the subject. Each sends a
groupchat message; both must receive both, from room/nick, bodies unchanged. user1 sets the
subject; user2 must get it. user2 leaves with leave_muc; user1 must see it go.

Run it with Debian's /usr/bin/python3 (python3-slixmpp). Exit status 0: every check passed; a
failure prints "FAIL: ..." on stderr and exits 1 (3: slixmpp missing). --debug logs the XML on
stderr. On success stdout ends with, per user:

    RESULT selfcodes=<status codes of the self-presence, comma-separated> user=<bare jid>
    RESULT groupchat=<bodies received as room/nick: body|...> user=<bare jid>
    OK
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Failure, IqError, IqTimeout, SessionClient, base_parser, print_result, run  # noqa: E402


def parse_args(argv):
    p = base_parser(__doc__, 30.0)
    p.add_argument('--room', required=True, help='the room JID, room@conference.domain')
    return p.parse_args(argv)


class Client(SessionClient):
    def __init__(self, args, local, nick):
        super().__init__(args, local, ['xep_0199', 'xep_0030', 'xep_0004', 'xep_0045'])
        self.nick = nick
        self.room = args.room
        self.groupchat = asyncio.Queue()
        self.subjects = asyncio.Queue()
        self.offline = asyncio.Queue()
        self.online = asyncio.Queue()
        x = self.xmpp
        x.add_event_handler(f'muc::{args.room}::message', lambda m: self.groupchat.put_nowait(m) if m['body'] else None)
        x.add_event_handler(f'muc::{args.room}::groupchat_subject', lambda m: self.subjects.put_nowait(m))
        x.add_event_handler(f'muc::{args.room}::got_offline', lambda p: self.offline.put_nowait(p))
        x.add_event_handler(f'muc::{args.room}::got_online', lambda p: self.online.put_nowait(p))


async def take(queue, what, timeout):
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except asyncio.TimeoutError:
        raise Failure(f'no {what} within {timeout:.0f} s') from None


async def scenario(args):
    room = args.room
    alice = Client(args, args.user1, 'Alice')
    bob = Client(args, args.user2, 'Bob')
    try:
        for c in (alice, bob):
            c.connect(args)
        await asyncio.wait_for(asyncio.gather(alice.session, bob.session), args.timeout)
        muc_a = alice.xmpp['xep_0045']
        muc_b = bob.xmpp['xep_0045']

        # Creation: a new room answers with 110 and 201 and stays locked until configured.
        pres, subject, occupants, history = await muc_a.join_muc_wait(room, 'Alice', maxstanzas=0, timeout=10)
        codes = sorted(pres['muc']['status_codes'])
        print_result('selfcodes', ','.join(map(str, codes)), alice.xmpp.boundjid.bare)
        if 110 not in codes or 201 not in codes:
            raise Failure(f'alice: the self-presence of a new room has status codes {codes}, expected 110 and 201')
        if pres['muc']['affiliation'] != 'owner' or pres['muc']['role'] != 'moderator':
            raise Failure(f"alice: affiliation {pres['muc']['affiliation']}, role {pres['muc']['role']}: expected owner, moderator")

        form = await muc_a.get_room_config(room)
        fields = form.get_fields()
        for name in ('muc#roomconfig_roomname', 'muc#roomconfig_persistentroom', 'muc#roomconfig_membersonly'):
            if name not in fields:
                raise Failure(f'alice: the configuration form has no {name} field')
        form.set_values({'muc#roomconfig_roomname': 'Slixmpp interop', 'muc#roomconfig_publicroom': True})
        await muc_a.set_room_config(room, form)
        print(f'alice: configured {room}')

        pres_b, subject_b, occupants_b, _ = await muc_b.join_muc_wait(room, 'Bob', maxstanzas=0, timeout=10)
        codes_b = sorted(pres_b['muc']['status_codes'])
        print_result('selfcodes', ','.join(map(str, codes_b)), bob.xmpp.boundjid.bare)
        if codes_b != [110]:
            raise Failure(f'bob: self-presence status codes {codes_b}, expected [110]')
        nicks = sorted(p['muc']['nick'] for p in occupants_b)
        if 'Alice' not in nicks:
            raise Failure(f'bob: occupants on entering were {nicks}, expected Alice among them')
        # slixmpp reports alice's own arrival there too: wait for Bob's.
        while True:
            joined = await take(alice.online, 'presence of Bob entering, at alice', 10)
            if joined['muc']['nick'] == 'Bob':
                break

        # Groupchat both ways: each message reaches both occupants, from room/nick.
        received = {alice: [], bob: []}
        for sender, body in ((alice, 'Hello room, from slixmpp alice \u2764 <&>'), (bob, 'And hello from bob \u00e9')):
            sender.xmpp.send_message(mto=room, mbody=body, mtype='groupchat')
            for c in (alice, bob):
                msg = await take(c.groupchat, f'groupchat message {body!r} at {c.label}', 10)
                expected_from = f'{room}/{sender.nick}'
                if str(msg['from']) != expected_from or msg['body'] != body:
                    raise Failure(f"{c.label}: got {msg['body']!r} from {msg['from']}, expected {body!r} from {expected_from}")
                received[c].append(f"{msg['from'].resource}:{msg['body']}")

        for c in (alice, bob):  # the subjects of the join sequences
            while not c.subjects.empty():
                c.subjects.get_nowait()
        muc_a.set_subject(room, 'Interop subject')
        for c in (alice, bob):
            changed = await take(c.subjects, f'the new subject at {c.label}', 10)
            if changed['subject'] != 'Interop subject':
                raise Failure(f"{c.label}: subject {changed['subject']!r}, expected 'Interop subject'")

        muc_b.leave_muc(room, 'Bob', 'bye')
        gone = await take(alice.offline, 'bob leaving, at alice', 10)
        if gone['muc']['nick'] != 'Bob':
            raise Failure(f"alice: saw {gone['muc']['nick']} leave, expected Bob")

        for c in (alice, bob):
            print_result('groupchat', '|'.join(received[c]).replace(' ', '_'), c.xmpp.boundjid.bare)
    finally:
        await asyncio.gather(alice.close(), bob.close(), return_exceptions=True)


def main(argv):
    args = parse_args(argv)
    return run(scenario, args, args.timeout + 5, errors=(asyncio.TimeoutError, IqError, IqTimeout),
               describe=lambda err: f'{type(err).__name__}: {err}')


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

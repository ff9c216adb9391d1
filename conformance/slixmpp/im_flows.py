#!/usr/bin/python3
"""Interop run: slixmpp's roster, presence subscription, presence and offline-message handling
against Starling (RFC 6121, XEP-0160, XEP-0203).

Three accounts, --user1 (alice), --user2 (bob) and --user3 (carol), all slixmpp clients over
STARTTLS with SCRAM-SHA-256 and no channel binding (see common.py). slixmpp's own
subscription automatics are off (auto_authorize=None, auto_subscribe=False): every approval below
is sent by the script. Each login fetches the roster (get_roster), then sends initial presence and
waits for a ping round trip.

1. Roster: alice's roster is empty; she adds bob with a name and two groups (update_roster) and
   gets the roster push (RFC 6121 section 2.1.6), which slixmpp's roster reflects.
2. Subscription (section 3.1): alice subscribes to bob; her roster push shows ask="subscribe";
   bob, online, gets the request from alice's bare JID and approves it
   (send_presence(ptype='subscribed')); bob's push shows 'from', alice gets 'subscribed', a push
   with 'to' and bob's current presence. Then the other way round. Both end with 'both', in
   slixmpp's roster and in a fresh roster get (no 'ver'), with alice's name and groups kept.
3. Presence (section 4): bob sets show/status; alice sees both. bob sends unavailable with a
   status; alice sees it and slixmpp forgets bob's resource. bob disconnects.
4. Offline (XEP-0160): alice sends bob two messages while bob has no session. bob logs in again:
   both arrive after his initial presence, in order, from alice's full JID, each with a XEP-0203
   delay from the server whose stamp lies in the time they were sent. bob also gets alice's
   presence (the probe answer) and alice sees him come online. bob then drops the stream without
   unavailable presence: alice must get the unavailable presence the server sends for him.
5. Pending-in (section 3.1.3): carol, online, subscribes to bob while he is offline; bob logs in
   again: his roster does not list carol (an inbound request alone adds no item), the request
   is delivered to him, from carol's bare JID, after his initial presence; he approves, carol
   gets 'subscribed', a 'to' push and bob's presence; bob gets a 'from' push.

Exit status 0: every check passed. A failure prints one "FAIL: <step>: ..." line on stderr,
quoting the XML of the stanzas involved, and exits 1 (3: slixmpp missing). --debug logs all the
XML exchanged on stderr. On success stdout ends with:

    RESULT roster=<jid:subscription,... from a fresh roster get> user=<bare jid>   (per user)
    RESULT offline=<number of delayed messages received in order> user=<bob>
    RESULT delay=<'from' of their delay elements> user=<bob>
    RESULT pending=<bare JID of the subscription request delivered at login> user=<bob>
    OK
"""

import asyncio
import datetime as dt
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Failure, IqError, IqTimeout, base_parser, close, connect, new_client, ping_server, print_result, retrieve, run  # noqa: E402

NS_ROSTER = 'jabber:iq:roster'
WAIT = 10.0  # seconds for any single expected stanza


def parse_args(argv):
    p = base_parser(__doc__, 60.0)
    p.add_argument('--user3', default='carol')
    return p.parse_args(argv)


class Inbox:
    """Stanzas of one kind a client received, taken out by predicate (order among others free)."""

    def __init__(self, label, kind):
        self.label = label
        self.kind = kind
        self.items = []
        self.changed = asyncio.Event()

    def put(self, stanza):
        self.items.append(stanza)
        self.changed.set()

    def take_now(self, predicate):
        for i, stanza in enumerate(self.items):
            if predicate(stanza):
                return self.items.pop(i)
        return None

    async def expect(self, what, predicate, problems, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            found = self.take_now(predicate)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                seen = ' '.join(str(s) for s in self.items[-4:]) or 'nothing'
                raise Failure(f'{self.label}: did not receive {what} within {timeout:.0f} s; other {self.kind} stanzas received: {seen}')
            self.changed.clear()
            waiter = asyncio.ensure_future(self.changed.wait())
            done, _ = await asyncio.wait({waiter, problems}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
            if problems in done:
                problems.result()  # raises the Failure


class Client:
    """One slixmpp session (one login) with inboxes for what the scenario waits on."""

    def __init__(self, args, local, resource, problems):
        self.label = f'{local}/{resource}'
        self.problems = problems  # shared future: the first unexpected event of any client
        # XMPP Ping: round trips to the server; Delayed Delivery: msg['delay'].
        self.xmpp = new_client(f'{local}@{args.domain}/{resource}', args.password, plugins=['xep_0199', 'xep_0203'])
        x = self.xmpp
        # Approvals are the script's to send, not slixmpp's.
        x.auto_authorize = None
        x.auto_subscribe = False
        self.session = asyncio.get_running_loop().create_future()
        self.closing = False
        self.presences = Inbox(self.label, 'presence')
        self.messages = Inbox(self.label, 'message')
        self.pushes = Inbox(self.label, 'roster push')
        x.add_event_handler('session_start', self._on_session_start)
        x.add_event_handler('failed_all_auth', lambda _e=None: self._fail('authentication failed'))
        x.add_event_handler('connection_failed', lambda e: self._fail(f'connection failed: {e}'))
        x.add_event_handler('stream_error', lambda e: self._fail(f'stream error: {e}'))
        x.add_event_handler('disconnected', lambda e: self._fail(f'disconnected unexpectedly: {e}'))
        x.add_event_handler('presence', self.presences.put)
        x.add_event_handler('message', lambda m: self.messages.put(m) if m['type'] in ('chat', 'normal') else None)
        x.add_event_handler('message_error', lambda m: self._fail(f'a message bounced: {m}'))
        # Registered after slixmpp's own handler, so its roster is already updated when we look.
        x.add_event_handler('roster_update', lambda iq: self.pushes.put(iq) if iq['type'] == 'set' else None)

    @property
    def full(self):
        return self.xmpp.boundjid.full

    @property
    def bare(self):
        return self.xmpp.boundjid.bare

    def _fail(self, reason):
        if self.closing:
            return
        failure = Failure(f'{self.label}: {reason}')
        if not self.session.done():
            self.session.set_exception(failure)
        elif not self.problems.done():
            self.problems.set_exception(failure)

    def _on_session_start(self, _event):
        if not self.session.done():
            self.session.set_result(self.xmpp.boundjid.full)

    async def login(self, args, **presence):
        """Connects, fetches the roster (returned), sends initial presence, pings the server."""
        connect(self.xmpp, args)
        try:
            await asyncio.wait_for(asyncio.shield(self.session), WAIT)
        except asyncio.TimeoutError:
            raise Failure(f'{self.label}: no session within {WAIT:.0f} s') from None
        roster = await self.iq(self.xmpp.get_roster(timeout=WAIT), 'roster get')
        self.xmpp.send_presence(**presence)
        await self.ping()
        return roster

    async def iq(self, sent, what):
        try:
            return await sent
        except IqError as err:
            raise Failure(f'{self.label}: {what} failed: {err.iq}') from None
        except IqTimeout:
            raise Failure(f'{self.label}: no answer to the {what} within {WAIT:.0f} s') from None

    async def ping(self):
        """A round trip: the server has processed everything sent before (RFC 6120 section 10.1)."""
        if not await ping_server(self.xmpp, WAIT):
            raise Failure(f'{self.label}: no answer to a ping within {WAIT:.0f} s')

    async def fresh_roster(self):
        """A roster get without 'ver': the whole roster, as {jid: item} (slixmpp's state untouched)."""
        iq = self.xmpp.Iq()
        iq['type'] = 'get'
        iq.enable('roster')
        result = await self.iq(iq.send(timeout=WAIT), 'fresh roster get')
        return result, items_of(result)

    async def close(self):
        self.closing = True
        await close(self.xmpp, 2, 4)


def items_of(iq):
    """The roster items of a roster result or push, keyed by JID string."""
    return {str(jid): item for jid, item in iq['roster']['items'].items()}


def push_for(jid, subscription, ask=False):
    """Predicate: a roster push for `jid` with that subscription (and ask='subscribe' or not)."""

    def match(iq):
        item = items_of(iq).get(jid)
        return item is not None and item['subscription'] == subscription and (item['ask'] == 'subscribe') == ask

    return match


def presence_of(type_, sender):
    """Predicate: presence of that type (slixmpp's: a show value, 'available', ...) from `sender`."""
    return lambda p: p['type'] == type_ and str(p['from']) == sender


def available_from(sender):
    return lambda p: p['type'] in ('available', 'away', 'chat', 'dnd', 'xa') and str(p['from']) == sender


def check_item(label, where, items, jid, subscription, name=None, groups=None, ask=False):
    item = items.get(jid)
    if item is None:
        raise Failure(f'{label}: {where} has no item for {jid}: {items!r}')
    if item['subscription'] != subscription:
        raise Failure(f"{label}: {where}: {jid} has subscription {item['subscription']!r}, expected {subscription!r}")
    if (item['ask'] == 'subscribe') != ask:
        raise Failure(f"{label}: {where}: {jid} has ask={item['ask']!r}, expected {'subscribe' if ask else 'none'}")
    if name is not None and item['name'] != name:
        raise Failure(f"{label}: {where}: {jid} has name {item['name']!r}, expected {name!r}")
    if groups is not None and sorted(item['groups']) != sorted(groups):
        raise Failure(f"{label}: {where}: {jid} has groups {sorted(item['groups'])}, expected {sorted(groups)}")


def check_slix_state(c, jid, subscription, pending_out=False, name=None, groups=None):
    """What slixmpp's own roster (client_roster, fed by results and pushes) says about `jid`."""
    roster = c.xmpp.client_roster
    if not roster.has_jid(jid):
        raise Failure(f"{c.label}: slixmpp's roster has no {jid} (it has {list(map(str, roster.keys()))})")
    item = roster[jid]
    state = f"subscription={item['subscription']} pending_out={item['pending_out']} name={item['name']!r} groups={item['groups']}"
    if item['subscription'] != subscription or item['pending_out'] != pending_out:
        raise Failure(f"{c.label}: slixmpp's roster says {jid}: {state}; expected subscription={subscription} pending_out={pending_out}")
    if name is not None and item['name'] != name:
        raise Failure(f"{c.label}: slixmpp's roster says {jid}: {state}; expected name {name!r}")
    if groups is not None and sorted(item['groups']) != sorted(groups):
        raise Failure(f"{c.label}: slixmpp's roster says {jid}: {state}; expected groups {sorted(groups)}")


def summary(items):
    return ','.join(f"{jid}:{item['subscription']}" for jid, item in sorted(items.items()))


CURRENT = {'step': 'login'}  # for the overall time-out's FAIL line


async def step(name, coro):
    CURRENT['step'] = name
    try:
        result = await coro
    except Failure as err:
        raise Failure(f'{name}: {err}') from None
    print(f'PASS {name}')
    return result


async def scenario(args):
    problems = asyncio.get_running_loop().create_future()
    alice_jid = f'{args.user1}@{args.domain}'
    bob_jid = f'{args.user2}@{args.domain}'
    carol_jid = f'{args.user3}@{args.domain}'
    name, groups = 'Bob the Builder \u2692', ['Friends', 'Work & Play']
    clients = []

    def client(local, resource):
        c = Client(args, local, resource, problems)
        clients.append(c)
        return c

    alice = client(args.user1, 'slix-a')
    bob = client(args.user2, 'slix-b1')
    carol = client(args.user3, 'slix-c')
    try:
        CURRENT['step'] = 'login of alice, bob and carol'
        rosters = await asyncio.gather(alice.login(args), bob.login(args), carol.login(args))
        print(f'logged in: {alice.full}, {bob.full}, {carol.full}')

        async def roster_flow():
            items = items_of(rosters[0])
            if items:
                raise Failure(f"{alice.label}: a new account's roster is not empty: {rosters[0]}")
            await alice.iq(alice.xmpp.update_roster(bob_jid, name=name, groups=groups, timeout=WAIT), 'roster set')
            push = await alice.pushes.expect(f'roster push for {bob_jid}', push_for(bob_jid, 'none'), problems)
            check_item(alice.label, f'the roster push {push}', items_of(push), bob_jid, 'none', name, groups)
            if not push['roster']['ver']:
                raise Failure(f'{alice.label}: the roster push has no ver (roster versioning is advertised): {push}')
            check_slix_state(alice, bob_jid, 'none', False, name, groups)

        async def subscription_flow():
            # alice -> bob
            alice.xmpp.send_presence(pto=bob_jid, ptype='subscribe')
            await alice.pushes.expect(f'roster push {bob_jid} none + ask=subscribe', push_for(bob_jid, 'none', ask=True), problems)
            check_slix_state(alice, bob_jid, 'none', True)
            req = await bob.presences.expect(f'subscription request from {alice_jid}', presence_of('subscribe', alice_jid), problems)
            print(f'{bob.label}: got {req}')
            bob.xmpp.send_presence(pto=alice_jid, ptype='subscribed')
            await bob.pushes.expect(f'roster push {alice_jid} from', push_for(alice_jid, 'from'), problems)
            await alice.presences.expect(f"'subscribed' from {bob_jid}", presence_of('subscribed', bob_jid), problems)
            push = await alice.pushes.expect(f'roster push {bob_jid} to', push_for(bob_jid, 'to'), problems)
            check_item(alice.label, f'the roster push {push}', items_of(push), bob_jid, 'to', name, groups)
            await alice.presences.expect("bob's current presence after approval (RFC 6121 3.1.5)", available_from(bob.full), problems)
            # bob -> alice
            bob.xmpp.send_presence(pto=alice_jid, ptype='subscribe')
            await bob.pushes.expect(f'roster push {alice_jid} from + ask=subscribe', push_for(alice_jid, 'from', ask=True), problems)
            await alice.presences.expect(f'subscription request from {bob_jid}', presence_of('subscribe', bob_jid), problems)
            alice.xmpp.send_presence(pto=bob_jid, ptype='subscribed')
            await alice.pushes.expect(f'roster push {bob_jid} both', push_for(bob_jid, 'both'), problems)
            await bob.presences.expect(f"'subscribed' from {alice_jid}", presence_of('subscribed', alice_jid), problems)
            await bob.pushes.expect(f'roster push {alice_jid} both', push_for(alice_jid, 'both'), problems)
            await bob.presences.expect("alice's current presence after approval", available_from(alice.full), problems)
            check_slix_state(alice, bob_jid, 'both', False, name, groups)
            check_slix_state(bob, alice_jid, 'both', False)
            result, items = await alice.fresh_roster()
            check_item(alice.label, f'a fresh roster get {result}', items, bob_jid, 'both', name, groups)
            result, items = await bob.fresh_roster()
            check_item(bob.label, f'a fresh roster get {result}', items, alice_jid, 'both')

        async def presence_flow():
            status = 'In a meeting \u2615'
            bob.xmpp.send_presence(pshow='away', pstatus=status)
            p = await alice.presences.expect(f'away presence from {bob.full}', presence_of('away', bob.full), problems)
            if p['status'] != status:
                raise Failure(f"{alice.label}: bob's status is {p['status']!r}, expected {status!r}: {p}")
            seen = alice.xmpp.client_roster[bob_jid].resources.get(bob.xmpp.boundjid.resource)
            if not seen or seen.get('show') != 'away' or seen.get('status') != status:
                raise Failure(f"{alice.label}: slixmpp's roster has bob's resource as {seen!r}")
            bob.xmpp.send_presence(ptype='unavailable', pstatus='Gone home')
            p = await alice.presences.expect(f'unavailable presence from {bob.full}', presence_of('unavailable', bob.full), problems)
            if p['status'] != 'Gone home':
                raise Failure(f"{alice.label}: bob's unavailable presence has status {p['status']!r}, expected 'Gone home': {p}")
            if alice.xmpp.client_roster[bob_jid].resources:
                raise Failure(f"{alice.label}: slixmpp still lists bob's resources {alice.xmpp.client_roster[bob_jid].resources}")
            await bob.close()

        async def offline_flow():
            bodies = ['Offline message one \u2709', 'Offline message two <&>']
            sent_from = time.time()
            for body in bodies:
                alice.xmpp.send_message(mto=bob_jid, mbody=body, mtype='chat')
            await alice.ping()
            sent_until = time.time()
            bob2 = client(args.user2, 'slix-b2')
            roster = await bob2.login(args)
            check_item(bob2.label, f'the roster at login {roster}', items_of(roster), alice_jid, 'both')
            got = []
            for i, body in enumerate(bodies):
                msg = await bob2.messages.expect(f'offline message {i + 1}', lambda m: True, problems)
                if msg['body'] != body:
                    raise Failure(f'{bob2.label}: offline message {i + 1} has body {msg["body"]!r}, expected {body!r} (order or content wrong): {msg}')
                if str(msg['from']) != alice.full:
                    raise Failure(f"{bob2.label}: offline message from {msg['from']}, expected {alice.full}: {msg}")
                delay = msg.xml.find('{urn:xmpp:delay}delay')
                if delay is None:
                    raise Failure(f'{bob2.label}: offline message {i + 1} has no XEP-0203 delay: {msg}')
                stamp = msg['delay']['stamp']
                if str(msg['delay']['from']) != args.domain:
                    raise Failure(f"{bob2.label}: the delay's from is {msg['delay']['from']}, expected {args.domain}: {msg}")
                if stamp is None or stamp.tzinfo is None:
                    raise Failure(f'{bob2.label}: the delay stamp is missing or has no time zone: {msg}')
                when = stamp.timestamp()
                if not (sent_from - 2 <= when <= sent_until + 2):
                    raise Failure(f'{bob2.label}: delay stamp {stamp.isoformat()} is not when the message was sent '
                                  f'({dt.datetime.fromtimestamp(sent_from, dt.timezone.utc).isoformat()}): {msg}')
                got.append((msg, when))
            if got[1][1] < got[0][1]:
                raise Failure(f'{bob2.label}: the second message has an earlier stamp than the first')
            await bob2.presences.expect("alice's presence (probe answer) at login", available_from(alice.full), problems)
            await alice.presences.expect(f'bob online again ({bob2.full})', available_from(bob2.full), problems)
            await bob2.ping()
            if bob2.messages.items:
                raise Failure(f'{bob2.label}: more messages than the two stored: {bob2.messages.items}')
            print_result('offline', len(got), bob_jid)
            print_result('delay', got[0][0]['delay']['from'], bob_jid)
            # Gone without unavailable presence (connection dropped): the server must broadcast it (RFC 6121 section 4.5).
            bob2.closing = True
            bob2.xmpp.abort()
            await alice.presences.expect(f'unavailable presence for {bob2.full} after its connection dropped',
                                         presence_of('unavailable', bob2.full), problems)

        async def pending_in_flow():
            carol.xmpp.send_presence(pto=bob_jid, ptype='subscribe')
            await carol.pushes.expect(f'roster push {bob_jid} none + ask=subscribe', push_for(bob_jid, 'none', ask=True), problems)
            await carol.ping()
            bob3 = client(args.user2, 'slix-b3')
            roster = await bob3.login(args)
            items = items_of(roster)
            if carol_jid in items:
                raise Failure(f'{bob3.label}: an inbound request alone put {carol_jid} on the roster: {roster}')
            req = await bob3.presences.expect(f'the pending subscription request from {carol_jid} at login',
                                              presence_of('subscribe', carol_jid), problems)
            print(f'{bob3.label}: got at login {req}')
            print_result('pending', req['from'], bob_jid)
            bob3.xmpp.send_presence(pto=carol_jid, ptype='subscribed')
            await carol.presences.expect(f"'subscribed' from {bob_jid}", presence_of('subscribed', bob_jid), problems)
            await carol.pushes.expect(f'roster push {bob_jid} to', push_for(bob_jid, 'to'), problems)
            await carol.presences.expect("bob's current presence after approval", available_from(bob3.full), problems)
            await bob3.pushes.expect(f'roster push {carol_jid} from', push_for(carol_jid, 'from'), problems)
            check_slix_state(carol, bob_jid, 'to')
            check_slix_state(bob3, carol_jid, 'from')
            await bob3.ping()
            again = bob3.presences.take_now(presence_of('subscribe', carol_jid))
            if again is not None:
                raise Failure(f'{bob3.label}: the request was delivered twice: {again}')
            return bob3

        await step('1 roster get and set with push', roster_flow())
        await step('2 mutual subscription', subscription_flow())
        await step('3 presence show/status and unavailable', presence_flow())
        await step('4 offline messages with delay', offline_flow())
        bob3 = await step('5 subscription request while offline, delivered at login', pending_in_flow())

        for c, label in ((alice, alice_jid), (bob3, bob_jid), (carol, carol_jid)):
            _, items = await c.fresh_roster()
            print_result('roster', summary(items), label)
    finally:
        for c in clients:
            c.closing = True
        retrieve(problems, *(c.session for c in clients))
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def main(argv):
    args = parse_args(argv)
    return run(scenario, args, args.timeout,
               describe=lambda _err: f"{CURRENT['step']}: overall time limit of {args.timeout:.0f} s exceeded")


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

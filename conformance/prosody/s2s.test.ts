// Federation interop with Prosody (Debian's package): Starling serves starling.localhost,
// Prosody prosody.localhost, both on loopback with their own ports and static routes to each
// other (Starling: [s2s] routes; Prosody: mod_test_s2s_routes.lua). Two runs:
//
// 1. dialback: both servers with self-signed certificates, s2s_secure_auth off on both sides,
//    so each authenticates to the other with dialback (XEP-0220) over STARTTLS;
// 2. certificates: both certificates from a test CA that both trust, secure_auth on both
//    sides: SASL EXTERNAL both ways.
//
// In each run, both directions: messages (to full and bare JIDs), subscriptions with roster
// pushes and presence (including a change of presence), IQ round trips (software version of
// the other server, vCard of a user on the other server, ping), and errors coming back (a
// message to an account the other server does not have). Skipped (with the reason) when
// Prosody is not installed, a failure under STARLING_REQUIRE_SERVICES=1.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import {
  PASSWORD,
  connectClient,
  errorCondition,
  makeTestCa,
  startFederated,
  xml,
  type FedClient,
  type FederatedServer,
} from '../../test/integration/s2s-helpers.js';
import { freePort, needProsody, prosodyVersion, startProsody, type RunningProsody } from './prosody.js';

const STARLING = 'starling.localhost';
const PROSODY = 'prosody.localhost';
const ROSTER = 'jabber:iq:roster';
const WAIT = 15_000;

const presenceFrom = (from: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;
const pushFor = (jid: string, subscription: string) => (el: Element) =>
  el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === jid && el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === subscription;
const chatFrom = (from: string, body: string) => (el: Element) => el.name === 'message' && el.attrs.from === from && el.getChildText('body') === body;

interface Setup {
  starling: FederatedServer;
  prosody: RunningProsody;
  alice: FedClient; // alice@starling.localhost
  bob: FedClient; // bob@prosody.localhost
}

async function setUp(t: Test, mode: 'dialback' | 'certificates'): Promise<Setup> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'starling-interop-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const [prosodyC2s, prosodyS2s] = [await freePort(), await freePort()];

  let prosodyCert: { cert: string; key: string };
  let starlingHost: Record<string, unknown> = {};
  let s2s: Record<string, unknown> = { routes: { [PROSODY]: `127.0.0.1:${prosodyS2s}` }, connect_timeout: 20 };
  let caFile: string | undefined;
  if (mode === 'dialback') {
    prosodyCert = selfSigned(tmp, PROSODY);
  } else {
    const ca = makeTestCa(t);
    caFile = ca.caFile;
    prosodyCert = ca.issue(PROSODY);
    const mine = ca.issue(STARLING);
    starlingHost = { certificate: mine.cert, key: mine.key };
    s2s = { ...s2s, secure_auth: true, ca_files: [ca.caFile] };
  }

  const starling = await startFederated(t, STARLING, s2s, { hosts: { [STARLING]: starlingHost } });
  await starling.user('alice');
  const prosody = await startProsody(t, {
    domain: PROSODY,
    c2sPort: prosodyC2s,
    s2sPort: prosodyS2s,
    routes: { [STARLING]: ['127.0.0.1', starling.s2sPort] },
    secureAuth: mode === 'certificates',
    certificate: prosodyCert.cert,
    key: prosodyCert.key,
    caFile,
    users: { bob: PASSWORD, carol: PASSWORD },
  });
  // On failure, what Prosody said.
  t.teardown(() => {
    if (!t.passing()) t.comment(`prosody.log (tail):\n${prosody.log().split('\n').slice(-80).join('\n')}`);
  });

  const alice = await connectClient({ service: `xmpp://127.0.0.1:${starling.port}`, domain: STARLING, username: 'alice', resource: 'desk' });
  const bob = await connectClient({ service: `xmpp://127.0.0.1:${prosodyC2s}`, domain: PROSODY, username: 'bob', resource: 'phone' });
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
  // Both ask for their rosters, so roster pushes reach them.
  await alice.iq('get', undefined, xml('query', { xmlns: ROSTER }));
  await bob.iq('get', undefined, xml('query', { xmlns: ROSTER }));
  return { starling, prosody, alice, bob };
}

function selfSigned(dir: string, domain: string): { cert: string; key: string } {
  const cert = path.join(dir, `${domain}.crt`);
  const key = path.join(dir, `${domain}.key`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${domain}`, '-addext', `subjectAltName=DNS:${domain}`],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

async function bothDirections(t: Test, { starling, prosody, alice, bob }: Setup, mode: 'dialback' | 'certificates') {
  t.test('messages: Starling -> Prosody and Prosody -> Starling', async (t) => {
    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'hello Prosody ✓ <&>')));
    const m1 = await bob.next(chatFrom(alice.jid, 'hello Prosody ✓ <&>'), WAIT);
    t.equal(m1.attrs.to, bob.jid, 'Starling -> Prosody: arrives at bob’s full JID, body intact');
    await bob.send(xml('message', { to: `alice@${STARLING}`, type: 'chat' }, xml('body', {}, 'hello Starling')));
    t.ok(await alice.next(chatFrom(bob.jid, 'hello Starling'), WAIT), 'Prosody -> Starling: to the bare JID, from bob’s full JID');
    await alice.send(xml('message', { to: `bob@${PROSODY}`, type: 'chat' }, xml('body', {}, 'to the bare JID')));
    t.ok(await bob.next(chatFrom(alice.jid, 'to the bare JID'), WAIT), 'Starling -> Prosody bare JID');
  });

  t.test('subscriptions and presence, both ways', async (t) => {
    // alice (Starling) subscribes to bob (Prosody).
    await alice.send(xml('presence', { to: `bob@${PROSODY}`, type: 'subscribe' }));
    t.ok(await bob.next(presenceFrom(`alice@${STARLING}`, 'subscribe'), WAIT), 'Prosody delivers alice’s subscription request');
    await bob.send(xml('presence', { to: `alice@${STARLING}`, type: 'subscribed' }));
    t.ok(await alice.next(pushFor(`bob@${PROSODY}`, 'to'), WAIT), 'Starling: bob is on alice’s roster, subscription to');
    t.ok(await alice.next(presenceFrom(`bob@${PROSODY}`, 'subscribed'), WAIT), 'alice is told bob approved');
    t.ok(await alice.next(presenceFrom(bob.jid), WAIT), 'and gets bob’s presence from Prosody');
    t.ok(await bob.next(pushFor(`alice@${STARLING}`, 'from'), WAIT), 'Prosody: alice is on bob’s roster, subscription from');

    // bob (Prosody) subscribes to alice (Starling).
    await bob.send(xml('presence', { to: `alice@${STARLING}`, type: 'subscribe' }));
    t.ok(await alice.next(presenceFrom(`bob@${PROSODY}`, 'subscribe'), WAIT), 'Starling delivers bob’s subscription request');
    await alice.send(xml('presence', { to: `bob@${PROSODY}`, type: 'subscribed' }));
    t.ok(await bob.next(pushFor(`alice@${STARLING}`, 'both'), WAIT), 'Prosody: subscription both');
    t.ok(await alice.next(pushFor(`bob@${PROSODY}`, 'both'), WAIT), 'Starling: subscription both');
    t.ok(await bob.next(presenceFrom(alice.jid), WAIT), 'bob gets alice’s presence from Starling');

    await alice.send(xml('presence', {}, xml('show', {}, 'dnd'), xml('status', {}, 'in a meeting')));
    const dnd = await bob.next((el) => presenceFrom(alice.jid)(el) && el.getChildText('show') === 'dnd', WAIT);
    t.equal(dnd.getChildText('status'), 'in a meeting', 'a presence change crosses Starling -> Prosody');
    await bob.send(xml('presence', {}, xml('show', {}, 'away')));
    t.ok(await alice.next((el) => presenceFrom(bob.jid)(el) && el.getChildText('show') === 'away', WAIT), 'and Prosody -> Starling');

    const roster = await alice.iq('get', undefined, xml('query', { xmlns: ROSTER }));
    t.match(roster.getChild('query')!.getChildren('item').map((i) => i.attrs), [{ jid: `bob@${PROSODY}`, subscription: 'both' }], 'alice’s roster holds the remote contact');

    t.test('a probe: a new resource learns the remote contact’s presence', async (t) => {
      const alice2 = await connectClient({ service: `xmpp://127.0.0.1:${starling.port}`, domain: STARLING, username: 'alice', resource: 'laptop' });
      t.teardown(() => alice2.stop());
      t.ok(await alice2.next((el) => presenceFrom(bob.jid)(el) && el.getChildText('show') === 'away', WAIT), 'Prosody answers Starling’s probe');
      t.ok(await bob.next(presenceFrom(alice2.jid), WAIT), 'bob sees the new resource');
    });
  });

  t.test('IQ round trips, both ways', async (t) => {
    const version = await alice.iq('get', PROSODY, xml('query', { xmlns: 'jabber:iq:version' }), WAIT);
    t.equal(version.attrs.type, 'result', 'Starling user -> Prosody server: software version');
    t.equal(version.getChild('query')!.getChildText('name'), 'Prosody');
    const theirs = await bob.iq('get', STARLING, xml('query', { xmlns: 'jabber:iq:version' }), WAIT);
    t.equal(theirs.attrs.type, 'result', 'Prosody user -> Starling server: software version');
    t.equal(theirs.getChild('query')!.getChildText('name'), 'Starling');

    t.equal((await alice.iq('get', PROSODY, xml('ping', { xmlns: 'urn:xmpp:ping' }), WAIT)).attrs.type, 'result', 'ping Starling -> Prosody');
    t.equal((await bob.iq('get', STARLING, xml('ping', { xmlns: 'urn:xmpp:ping' }), WAIT)).attrs.type, 'result', 'ping Prosody -> Starling');
    t.equal((await bob.iq('get', alice.jid, xml('ping', { xmlns: 'urn:xmpp:ping' }), WAIT)).attrs.type, 'result', 'ping Prosody user -> Starling client (full JID)');

    t.equal((await bob.iq('set', undefined, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Bob on Prosody')))).attrs.type, 'result');
    t.equal((await alice.iq('set', undefined, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice on Starling')))).attrs.type, 'result');
    const bobsCard = await alice.iq('get', `bob@${PROSODY}`, xml('vCard', { xmlns: 'vcard-temp' }), WAIT);
    t.equal(bobsCard.getChild('vCard')?.getChildText('FN'), 'Bob on Prosody', 'Starling user fetches a vCard from Prosody');
    const alicesCard = await bob.iq('get', `alice@${STARLING}`, xml('vCard', { xmlns: 'vcard-temp' }), WAIT);
    t.equal(alicesCard.getChild('vCard')?.getChildText('FN'), 'Alice on Starling', 'Prosody user fetches a vCard from Starling');
  });

  t.test('errors come back to the sender, both ways', async (t) => {
    await alice.send(xml('message', { to: `nobody@${PROSODY}`, type: 'chat', id: 'e1' }, xml('body', {}, '?')));
    const e1 = await alice.next((el) => el.attrs.id === 'e1', WAIT);
    t.equal(e1.attrs.type, 'error', 'Prosody’s error for an unknown account reaches the Starling user');
    t.equal(errorCondition(e1), 'service-unavailable');
    await bob.send(xml('message', { to: `nobody@${STARLING}`, type: 'chat', id: 'e2' }, xml('body', {}, '?')));
    const e2 = await bob.next((el) => el.attrs.id === 'e2', WAIT);
    t.equal(e2.attrs.type, 'error', 'Starling’s error reaches the Prosody user');
    t.equal(errorCondition(e2), 'service-unavailable');
    const unknownIq = await bob.iq('get', STARLING, xml('query', { xmlns: 'urn:example:nothing' }), WAIT);
    t.equal(errorCondition(unknownIq), 'service-unavailable', 'an IQ Starling does not handle: service-unavailable to the Prosody user');
  });

  t.test('how the servers authenticated', async (t) => {
    const connections = starling.server.s2s.connections();
    const expected = mode === 'dialback' ? 'dialback' : 'sasl-external';
    t.match(connections.filter((c) => c.direction === 'out'), [{ remote: PROSODY, secure: true, auth: [expected] }], `Starling -> Prosody: TLS, ${expected}`);
    const inbound = connections.filter((c) => c.direction === 'in' && c.auth.length > 0);
    t.ok(inbound.length >= 1, 'Prosody -> Starling: an authenticated incoming stream');
    t.ok(inbound.every((c) => c.secure && c.auth.every((a) => a === `${PROSODY}:${expected}`)), `over TLS, ${expected}: ${JSON.stringify(inbound.map((c) => c.auth))}`);
    const log = prosody.log();
    if (mode === 'certificates') {
      t.match(log, /Accepting SASL EXTERNAL identity from starling\.localhost/, 'Prosody accepted Starling’s certificate (SASL EXTERNAL)');
      t.match(log, /SASL EXTERNAL with starling\.localhost succeeded/, 'and authenticated to Starling with it');
    } else {
      t.match(log, /verified dialback key\.\.\. it is valid/, 'Prosody confirmed Starling’s dialback key as the authoritative server... ');
      t.notMatch(log, /SASL EXTERNAL with starling\.localhost succeeded/, 'no SASL EXTERNAL with self-signed certificates');
    }
  });
}

if (needProsody(t, 'Prosody federation interop (conformance/prosody/s2s.test.ts)')) {
  t.comment(`prosody ${prosodyVersion()}`);
  for (const mode of ['dialback', 'certificates'] as const) {
    t.test(mode === 'dialback' ? 'dialback between self-signed certificates' : 'SASL EXTERNAL with certificates from a shared test CA', async (t) => {
      const setup = await setUp(t, mode);
      await bothDirections(t, setup, mode);
    });
  }
}

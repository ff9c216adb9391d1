// The federation scenario the interop runs share (conformance/prosody, conformance/ejabberd):
// a Starling serving starling.localhost with alice, a peer server with bob, and both directions
// checked over real s2s streams: messages (to full and bare JIDs), subscriptions with roster
// pushes and presence (including a change of presence and a probe), IQ round trips (software
// version of the other server, ping of the server and of a client, a vCard), errors coming back
// (a message to an account the other server does not have, an IQ Starling does not handle), and
// how the servers authenticated as Starling sees it; the peer adds its own view (its log).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { PASSWORD, connectClient, errorCondition, makeTestCa, startFederated, xml, type FedClient, type FederatedServer } from '../../test/integration/s2s-helpers.js';
import { selfSigned } from './daemon.js';

export { PASSWORD };

export const STARLING = 'starling.localhost';
export const ROSTER = 'jabber:iq:roster';
/** The bound on every wait for a stanza crossing servers. */
export const WAIT = 15_000;

export const presenceFrom = (from: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;
export const pushFor = (jid: string, subscription: string) => (el: Element) =>
  el.name === 'iq' &&
  el.attrs.type === 'set' &&
  el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === jid &&
  el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === subscription;
export const chatFrom = (from: string, body: string) => (el: Element) => el.name === 'message' && el.attrs.from === from && el.getChildText('body') === body;

export type Mode = 'dialback' | 'certificates';

export interface Peer {
  /** As it appears in test names ("Prosody"). */
  name: string;
  domain: string;
  /** Its c2s STARTTLS port on 127.0.0.1 (bob logs in there). */
  c2sPort: number;
  /** What it answers to a software version query (XEP-0092), exactly. */
  software: string;
}

export interface Federation {
  starling: FederatedServer;
  peer: Peer;
  alice: FedClient; // alice@starling.localhost
  bob: FedClient; // bob@<peer>
}

/** How Starling authenticates servers: dialback, or certificates from the CA in `caFile`. */
export type StarlingTls = { mode: 'dialback' } | { mode: 'certificates'; caFile: string; certificate: { cert: string; key: string } };

export interface RunCertificates {
  /** The peer's certificate and key. */
  peer: { cert: string; key: string };
  /** The CA the peer trusts ('certificates' mode). */
  caFile?: string;
  /** Starling's side, for startStarlingFor. */
  starling: StarlingTls;
}

/**
 * The certificates of a run: in 'dialback' mode a self-signed one for the peer (in a temporary
 * directory, removed at teardown); in 'certificates' mode the peer's and Starling's, from a
 * test CA both trust.
 */
export function certificatesFor(t: Test, mode: Mode, peerDomain: string): RunCertificates {
  if (mode === 'dialback') {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'starling-interop-'));
    t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
    return { peer: selfSigned(tmp, peerDomain), starling: { mode: 'dialback' } };
  }
  const ca = makeTestCa(t);
  return { peer: ca.issue(peerDomain), caFile: ca.caFile, starling: { mode, caFile: ca.caFile, certificate: ca.issue(STARLING) } };
}

/**
 * Starling for `peer`: starling.localhost with a static route to the peer's s2s port (which
 * need not listen yet), and the account alice. In "certificates" mode `certificate` (from a CA
 * in `caFile`) is Starling's, and only servers with valid certificates are accepted.
 */
export async function startStarlingFor(t: Test, peerDomain: string, peerS2sPort: number, tls: StarlingTls): Promise<FederatedServer> {
  let s2s: Record<string, unknown> = { routes: { [peerDomain]: `127.0.0.1:${peerS2sPort}` }, connect_timeout: 20 };
  let host: Record<string, unknown> = {};
  if (tls.mode === 'certificates') {
    s2s = { ...s2s, secure_auth: true, ca_files: [tls.caFile] };
    host = { certificate: tls.certificate.cert, key: tls.certificate.key };
  }
  const starling = await startFederated(t, STARLING, s2s, { hosts: { [STARLING]: host } });
  await starling.user('alice');
  return starling;
}

/** alice (Starling) and bob (the peer) logged in, with their rosters asked for (so pushes reach them). */
export async function connectBoth(t: Test, starling: FederatedServer, peer: Peer): Promise<Federation> {
  const alice = await connectClient({ service: `xmpp://127.0.0.1:${starling.port}`, domain: STARLING, username: 'alice', resource: 'desk' });
  t.teardown(() => alice.stop());
  const bob = await connectClient({ service: `xmpp://127.0.0.1:${peer.c2sPort}`, domain: peer.domain, username: 'bob', resource: 'phone' });
  t.teardown(() => bob.stop());
  await alice.iq('get', undefined, xml('query', { xmlns: ROSTER }));
  await bob.iq('get', undefined, xml('query', { xmlns: ROSTER }));
  return { starling, peer, alice, bob };
}

export interface ScenarioOptions {
  mode: Mode;
  /** The peer's own account of how it authenticated (its log), in the last subtest. */
  peerChecks(t: Test): void;
}

export function bothDirections(t: Test, { starling, peer, alice, bob }: Federation, { mode, peerChecks }: ScenarioOptions): void {
  const PEER = peer.domain;
  const Peer = peer.name;

  t.test(`messages: Starling -> ${Peer} and ${Peer} -> Starling`, async (t) => {
    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, `hello ${Peer} ✓ <&>`)));
    const m1 = await bob.next(chatFrom(alice.jid, `hello ${Peer} ✓ <&>`), WAIT);
    t.equal(m1.attrs.to, bob.jid, `Starling -> ${Peer}: arrives at bob’s full JID, body intact`);
    await bob.send(xml('message', { to: `alice@${STARLING}`, type: 'chat' }, xml('body', {}, 'hello Starling')));
    t.ok(await alice.next(chatFrom(bob.jid, 'hello Starling'), WAIT), `${Peer} -> Starling: to the bare JID, from bob’s full JID`);
    await alice.send(xml('message', { to: `bob@${PEER}`, type: 'chat' }, xml('body', {}, 'to the bare JID')));
    t.ok(await bob.next(chatFrom(alice.jid, 'to the bare JID'), WAIT), `Starling -> ${Peer} bare JID`);
  });

  t.test('subscriptions and presence, both ways', async (t) => {
    // alice (Starling) subscribes to bob (the peer).
    await alice.send(xml('presence', { to: `bob@${PEER}`, type: 'subscribe' }));
    t.ok(await bob.next(presenceFrom(`alice@${STARLING}`, 'subscribe'), WAIT), `${Peer} delivers alice’s subscription request`);
    await bob.send(xml('presence', { to: `alice@${STARLING}`, type: 'subscribed' }));
    t.ok(await alice.next(pushFor(`bob@${PEER}`, 'to'), WAIT), 'Starling: bob is on alice’s roster, subscription to');
    t.ok(await alice.next(presenceFrom(`bob@${PEER}`, 'subscribed'), WAIT), 'alice is told bob approved');
    t.ok(await alice.next(presenceFrom(bob.jid), WAIT), `and gets bob’s presence from ${Peer}`);
    t.ok(await bob.next(pushFor(`alice@${STARLING}`, 'from'), WAIT), `${Peer}: alice is on bob’s roster, subscription from`);

    // bob (the peer) subscribes to alice (Starling).
    await bob.send(xml('presence', { to: `alice@${STARLING}`, type: 'subscribe' }));
    t.ok(await alice.next(presenceFrom(`bob@${PEER}`, 'subscribe'), WAIT), 'Starling delivers bob’s subscription request');
    await alice.send(xml('presence', { to: `bob@${PEER}`, type: 'subscribed' }));
    t.ok(await bob.next(pushFor(`alice@${STARLING}`, 'both'), WAIT), `${Peer}: subscription both`);
    t.ok(await alice.next(pushFor(`bob@${PEER}`, 'both'), WAIT), 'Starling: subscription both');
    t.ok(await bob.next(presenceFrom(alice.jid), WAIT), 'bob gets alice’s presence from Starling');

    await alice.send(xml('presence', {}, xml('show', {}, 'dnd'), xml('status', {}, 'in a meeting')));
    const dnd = await bob.next((el) => presenceFrom(alice.jid)(el) && el.getChildText('show') === 'dnd', WAIT);
    t.equal(dnd.getChildText('status'), 'in a meeting', `a presence change crosses Starling -> ${Peer}`);
    await bob.send(xml('presence', {}, xml('show', {}, 'away')));
    t.ok(await alice.next((el) => presenceFrom(bob.jid)(el) && el.getChildText('show') === 'away', WAIT), `and ${Peer} -> Starling`);

    const roster = await alice.iq('get', undefined, xml('query', { xmlns: ROSTER }));
    t.match(
      roster
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs),
      [{ jid: `bob@${PEER}`, subscription: 'both' }],
      'alice’s roster holds the remote contact',
    );

    t.test('a probe: a new resource learns the remote contact’s presence', async (t) => {
      const alice2 = await connectClient({ service: `xmpp://127.0.0.1:${starling.port}`, domain: STARLING, username: 'alice', resource: 'laptop' });
      t.teardown(() => alice2.stop());
      t.ok(await alice2.next((el) => presenceFrom(bob.jid)(el) && el.getChildText('show') === 'away', WAIT), `${Peer} answers Starling’s probe`);
      t.ok(await bob.next(presenceFrom(alice2.jid), WAIT), 'bob sees the new resource');
    });
  });

  t.test('IQ round trips, both ways', async (t) => {
    const version = await alice.iq('get', PEER, xml('query', { xmlns: 'jabber:iq:version' }), WAIT);
    t.equal(version.attrs.type, 'result', `Starling user -> ${Peer} server: software version`);
    t.equal(version.getChild('query')!.getChildText('name'), peer.software);
    const theirs = await bob.iq('get', STARLING, xml('query', { xmlns: 'jabber:iq:version' }), WAIT);
    t.equal(theirs.attrs.type, 'result', `${Peer} user -> Starling server: software version`);
    t.equal(theirs.getChild('query')!.getChildText('name'), 'Starling');

    t.equal((await alice.iq('get', PEER, xml('ping', { xmlns: 'urn:xmpp:ping' }), WAIT)).attrs.type, 'result', `ping Starling -> ${Peer}`);
    t.equal((await bob.iq('get', STARLING, xml('ping', { xmlns: 'urn:xmpp:ping' }), WAIT)).attrs.type, 'result', `ping ${Peer} -> Starling`);
    t.equal((await bob.iq('get', alice.jid, xml('ping', { xmlns: 'urn:xmpp:ping' }), WAIT)).attrs.type, 'result', `ping ${Peer} user -> Starling client (full JID)`);

    t.equal((await bob.iq('set', undefined, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, `Bob on ${Peer}`)))).attrs.type, 'result');
    t.equal((await alice.iq('set', undefined, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice on Starling')))).attrs.type, 'result');
    const bobsCard = await alice.iq('get', `bob@${PEER}`, xml('vCard', { xmlns: 'vcard-temp' }), WAIT);
    t.equal(bobsCard.getChild('vCard')?.getChildText('FN'), `Bob on ${Peer}`, `Starling user fetches a vCard from ${Peer}`);
    const alicesCard = await bob.iq('get', `alice@${STARLING}`, xml('vCard', { xmlns: 'vcard-temp' }), WAIT);
    t.equal(alicesCard.getChild('vCard')?.getChildText('FN'), 'Alice on Starling', `${Peer} user fetches a vCard from Starling`);
  });

  t.test('errors come back to the sender, both ways', async (t) => {
    await alice.send(xml('message', { to: `nobody@${PEER}`, type: 'chat', id: 'e1' }, xml('body', {}, '?')));
    const e1 = await alice.next((el) => el.attrs.id === 'e1', WAIT);
    t.equal(e1.attrs.type, 'error', `${Peer}’s error for an unknown account reaches the Starling user`);
    t.equal(errorCondition(e1), 'service-unavailable');
    await bob.send(xml('message', { to: `nobody@${STARLING}`, type: 'chat', id: 'e2' }, xml('body', {}, '?')));
    const e2 = await bob.next((el) => el.attrs.id === 'e2', WAIT);
    t.equal(e2.attrs.type, 'error', `Starling’s error reaches the ${Peer} user`);
    t.equal(errorCondition(e2), 'service-unavailable');
    const unknownIq = await bob.iq('get', STARLING, xml('query', { xmlns: 'urn:example:nothing' }), WAIT);
    t.equal(errorCondition(unknownIq), 'service-unavailable', `an IQ Starling does not handle: service-unavailable to the ${Peer} user`);
  });

  t.test('how the servers authenticated', async (t) => {
    const connections = starling.server.s2s.connections();
    const expected = mode === 'dialback' ? 'dialback' : 'sasl-external';
    t.match(
      connections.filter((c) => c.direction === 'out'),
      [{ remote: PEER, secure: true, auth: [expected] }],
      `Starling -> ${Peer}: TLS, ${expected}`,
    );
    const inbound = connections.filter((c) => c.direction === 'in' && c.auth.length > 0);
    t.ok(inbound.length >= 1, `${Peer} -> Starling: an authenticated incoming stream`);
    t.ok(
      inbound.every((c) => c.secure && c.auth.every((a) => a === `${PEER}:${expected}`)),
      `over TLS, ${expected}: ${JSON.stringify(inbound.map((c) => c.auth))}`,
    );
    peerChecks(t);
  });
}

// Nodes sharing PostgreSQL and Redis route to each other: messages to full and bare JIDs, IQs and
// their replies, presence between contacts, a full JID bound on two nodes (<conflict/>), status
// listing the nodes, and a node killed (SIGKILL) seen unavailable by its contacts elsewhere, a
// message acknowledged to its sender before the kill delivered after it.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer, DOMAIN, PASSWORD, type TestServer } from '../helpers/harness.js';
import { connect, errorCondition, nothingArrived, rawLogin, startClient, xml, xmppClient, type TestClient } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { REDIS_URL, redisReachable, useService } from '../helpers/services.js';
import { runStarlingAsync } from '../helpers/cli.js';
import { clusterLiveState, startClusterProcess } from '../helpers/cluster.js';
import { befriend } from './pep-helpers.js';

// Seconds: a node is taken for dead after 3 (found within 2 more).
const HEARTBEAT = 3;

const body = (text: string) => (el: Element) => el.name === 'message' && el.getChildText('body') === text;
const presenceFrom = (jid: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from === jid && el.attrs.type === type;

t.test('a cluster of nodes on one PostgreSQL and one Redis', async (t) => {
  if (!(await useService(t, 'Redis', redisReachable, REDIS_URL))) return;
  await onPostgres(t, 'starling_cluster', async (storage) => {
    const pg = storage.storage as { postgres_url: string; postgres_schema: string };
    // Keys of this run only, removed at the end (registered first: runs after the servers stop).
    const live_state = clusterLiveState(t);
    const node = (id: string): Promise<TestServer> =>
      startTestServer(t, { ...storage, live_state, cluster: { node_id: id, heartbeat_interval: HEARTBEAT }, accounts: { max_sessions_per_user: 2 } });
    const n1 = await node('n1');
    const n2 = await node('n2');
    for (const user of ['alice', 'bob', 'carol', 'erin']) await n1.addUser(user);

    const alice = await connect(n1, 'alice', { resource: 'a1' });
    const bob = await connect(n2, 'bob', { resource: 'b1' });
    t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
    for (const c of [alice, bob]) await c.send(xml('iq', { type: 'get', id: 'roster' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await befriend(alice, bob);

    await t.test('presence between contacts on different nodes', async (t) => {
      await bob.send(xml('presence', {}, xml('show', {}, 'away'), xml('priority', {}, '5')));
      const seen = await alice.next((el) => presenceFrom(bob.jid)(el) && el.getChildText('show') === 'away');
      t.equal(seen.getChildText('priority'), '5', 'alice (n1) sees the presence bob sent on n2');
    });

    await t.test('a message to a full JID on another node', async (t) => {
      await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'to your full JID')));
      const got = await bob.next(body('to your full JID'));
      t.equal(got.attrs.from, alice.jid, 'bob on n2 has it, from alice on n1');
    });

    await t.test('a message to a bare JID: the resource of highest priority, on any node', async (t) => {
      // bob/b2 on n1 with priority 1; bob/b1 on n2 has 5: the message goes to n2.
      const b2 = await connect(n1, 'bob', { resource: 'b2', presence: false });
      t.teardown(() => b2.stop());
      await b2.send(xml('presence', {}, xml('priority', {}, '1')));
      await b2.roundTrip();
      await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'to your bare JID')));
      await bob.next(body('to your bare JID'));
      t.ok(await nothingArrived(b2, body('to your bare JID'), alice), 'not to the lower priority resource on the same node as the sender');
      // And the other way round: a bare JID whose only available resource is on the other node.
      await bob.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'back to your bare JID')));
      t.equal((await alice.next(body('back to your bare JID'))).attrs.from, bob.jid, 'n2 to n1 as well');
    });

    await t.test('an IQ to a full JID on another node, and its reply', async (t) => {
      await alice.send(xml('iq', { type: 'get', id: 'v1', to: bob.jid }, xml('query', { xmlns: 'urn:example:cluster' })));
      const request = await bob.next((el) => el.name === 'iq' && el.attrs.id === 'v1');
      t.equal(request.attrs.from, alice.jid, 'the request reached bob on n2');
      await bob.send(xml('iq', { type: 'result', id: 'v1', to: alice.jid }, xml('query', { xmlns: 'urn:example:cluster' }, xml('answer', {}, '42'))));
      const reply = await alice.next((el) => el.name === 'iq' && el.attrs.id === 'v1');
      t.equal(reply.attrs.type, 'result');
      t.equal(reply.attrs.from, bob.jid);
      t.equal(reply.getChild('query')?.getChildText('answer'), '42', 'the reply came back to n1');
    });

    await t.test('an IQ to a resource that is on no node: service-unavailable', async (t) => {
      await alice.send(xml('iq', { type: 'get', id: 'v2', to: 'bob@localhost/nowhere' }, xml('query', { xmlns: 'urn:example:cluster' })));
      const reply = await alice.next((el) => el.name === 'iq' && el.attrs.id === 'v2');
      t.equal(errorCondition(reply), 'service-unavailable');
    });

    await t.test('the same full JID bound on another node: the old session gets <conflict/>', async (t) => {
      const { s: old } = await rawLogin(n2.port, 'carol', 'phone');
      const { s: fresh, bound } = await rawLogin(n1.port, 'carol', 'phone');
      t.teardown(() => {
        old.close();
        fresh.close();
      });
      t.equal(bound.getChild('bind')?.getChildText('jid'), 'carol@localhost/phone', 'bound on n1');
      const error = await old.until(() => old.elements.find((e) => e.name === 'stream:error'));
      t.ok(error.getChild('conflict'), `the session on n2 ended with conflict: ${error.toString()}`);
      await old.until(() => old.ended);
      // The new one stays, and is reached from the other node.
      await bob.send(xml('message', { to: 'carol@localhost/phone', type: 'chat' }, xml('body', {}, 'still there?')));
      await fresh.until(() => fresh.elements.find(body('still there?')));
      t.pass('a message from n2 reaches the session on n1');
    });

    await t.test('max_sessions_per_user counts the sessions on every node', async (t) => {
      const e1 = await connect(n1, 'erin', { resource: 'e1' });
      const e2 = await connect(n2, 'erin', { resource: 'e2' });
      t.teardown(() => Promise.all([e1.stop(), e2.stop()]));
      // n1 forwards to it: n1 knows of the session on n2.
      await e1.next(presenceFrom(e2.jid));
      const third = await rawLogin(n1.port, 'erin', 'e3');
      t.teardown(() => third.s.close());
      t.ok(third.bound.getChild('error')?.getChild('resource-constraint'), 'a third session, on n1, gets resource-constraint');
    });

    await t.test('a node killed: its contacts on other nodes see it unavailable', async (t) => {
      const n3 = await startClusterProcess(t, 'n3', pg, live_state, HEARTBEAT);
      // Not spawnSync: the nodes in this process go on beating meanwhile.
      const status = await runStarlingAsync(['status', '--config', n3.config]);
      t.match(status.out, /cluster: 3 of 3 nodes alive/, 'starling status lists the three nodes');
      t.match(status.out, /n3 \(this node\): alive, 0 sessions/);
      t.match(status.out, /n2: alive, \d+ sessions?\n/, 'with its session count (as of its last heartbeat)');

      await n1.addUser('dave');
      const daveOnN3 = await startClient(xmppClient({ service: `xmpp://127.0.0.1:${n3.port}`, domain: DOMAIN, username: 'dave', password: PASSWORD, resource: 'd1' }));
      const a2 = await connect(n2, 'alice', { resource: 'a2' });
      t.teardown(() => a2.stop());
      for (const c of [daveOnN3, a2]) await c.send(xml('iq', { type: 'get', id: 'roster' }, xml('query', { xmlns: 'jabber:iq:roster' })));
      await befriend(a2, daveOnN3);
      await a2.next(presenceFrom(daveOnN3.jid));
      // A message acknowledged (XEP-0198) while n3 cannot read its inbox (stopped), then n3 is
      // killed: the stanza waits in n3's inbox, and a live node routes it once n3 is found dead.
      await n1.addUser('frank');
      const { s: frank } = await rawLogin(n2.port, 'frank', 'sm');
      t.teardown(() => frank.close());
      frank.write("<enable xmlns='urn:xmpp:sm:3'/>");
      await frank.element('enabled');
      n3.signal('SIGSTOP');
      frank.write(`<message to='${daveOnN3.jid}' type='chat' id='acked'><body>sent before the kill</body></message><r xmlns='urn:xmpp:sm:3'/>`);
      t.equal((await frank.element('a')).attrs.h, '1', 'acknowledged by n2 while n3 was stopped');
      const started = Date.now();
      n3.signal('SIGKILL');
      await a2.next(presenceFrom(daveOnN3.jid, 'unavailable'), 30_000);
      t.ok(Date.now() - started < 30_000, `alice on n2 saw dave unavailable after ${Date.now() - started} ms`);
      await alice.next(presenceFrom(daveOnN3.jid, 'unavailable'), 5_000);
      t.pass('and alice on n1 too');
      t.ok(await nothingArrived(a2, presenceFrom(daveOnN3.jid, 'unavailable'), alice), 'once');
      // Its sessions are gone from the directory: a message to dave goes to offline storage.
      await a2.send(xml('message', { to: daveOnN3.jid, type: 'chat' }, xml('body', {}, 'for later')));
      await a2.roundTrip();
      const back = await startClient(xmppClient({ service: `xmpp://127.0.0.1:${n2.port}`, domain: DOMAIN, username: 'dave', password: PASSWORD, resource: 'd2' }));
      t.teardown(() => back.stop());
      await back.next(body('for later'));
      t.pass('offline storage kept the message for dave');
      await back.next(body('sent before the kill'));
      t.pass("and the message acknowledged before the kill, left in the dead node's inbox");
    });
  });
});

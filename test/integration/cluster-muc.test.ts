// One MUC room across the nodes of a cluster (PostgreSQL + Redis): the room is served by the node
// holding its lease (n3, a real `starling start`), occupants on n1, n2 and n3 see each other's
// presence and messages once each, subject, history, private messages between nodes, disco#items
// from any node; n3 killed (SIGKILL): the other occupants get 332 from the node that cleans up
// after it, join again, and the persistent room comes back from storage on another node; then
// that node stopped: it releases the lease and the room goes on on the last node.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer, DOMAIN, PASSWORD, type TestServer } from '../helpers/harness.js';
import { connect, startClient, xml, xmppClient, type TestClient } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { REDIS_URL, redisReachable, useService } from '../helpers/services.js';
import { clusterLiveState, startClusterProcess } from '../helpers/cluster.js';
import { DISCO_INFO, DISCO_ITEMS, SERVICE, createRoom, groupchat, groupchatWith, iq, isSubject, join, presenceFrom, statusCodes } from './muc-helpers.js';

// Seconds: a node is taken for dead after 3 intervals (found within 2 more).
const HEARTBEAT = 2;
const ROOM = `across@${SERVICE}`;

const occupant = (nick: string) => `${ROOM}/${nick}`;
const available = (nick: string) => presenceFrom(occupant(nick));
const shutDown = (nick: string) => (el: Element) => presenceFrom(occupant(nick), 'unavailable')(el) && statusCodes(el).includes(332);

/** Nothing more matching `match` reached `receivers`: checked once `sender`'s later groupchat message reached them (it comes after, in order). */
async function nothingElse(t: Test, sender: TestClient, receivers: TestClient[], match: (el: Element) => boolean, what: string): Promise<void> {
  const marker = `marker-${randomBytes(3).toString('hex')}`;
  await groupchat(sender, ROOM, marker);
  for (const r of receivers) {
    await r.next(groupchatWith(marker));
    t.equal(r.take(match).length, 0, `${what}: once at ${r.jid}`);
  }
}

t.test('one MUC room across the nodes of a cluster', async (t) => {
  if (!(await useService(t, 'Redis', redisReachable, REDIS_URL))) return;
  await onPostgres(t, 'starling_cluster_muc', async (storage) => {
    const pg = storage.storage as { postgres_url: string; postgres_schema: string };
    const live_state = clusterLiveState(t);
    const redis = new Redis(REDIS_URL);
    t.teardown(() => redis.quit());
    const lease = () => redis.get(`${live_state.key_prefix}muc-lease:${ROOM}`);
    const node = (id: string): Promise<TestServer> => startTestServer(t, { ...storage, live_state, cluster: { node_id: id, heartbeat_interval: HEARTBEAT } });
    const n1 = await node('n1');
    const n2 = await node('n2');
    const n3 = await startClusterProcess(t, 'n3', pg, live_state, HEARTBEAT);
    for (const user of ['alice', 'bob', 'carol']) await n1.addUser(user);
    const carol = await startClient(xmppClient({ service: `xmpp://127.0.0.1:${n3.port}`, domain: DOMAIN, username: 'carol', password: PASSWORD, resource: 'c3' }));
    const alice = await connect(n1, 'alice', { resource: 'a1' });
    const bob = await connect(n2, 'bob', { resource: 'b2' });
    t.teardown(() => Promise.all([alice.stop(), bob.stop(), carol.stop()]));

    await t.test('the room is served by the node its first stanza reached', async (t) => {
      await createRoom(carol, ROOM, 'Carol', {
        'muc#roomconfig_persistentroom': '1',
        'muc#roomconfig_publicroom': '1',
        'muc#roomconfig_roomname': 'Across nodes',
        'muc#roomconfig_enablelogging': '1',
      });
      t.equal(await lease(), 'n3', 'n3 holds the lease');
      await carol.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('subject', {}, 'Spanning three nodes')));
      await carol.next(isSubject(ROOM));
    });

    await t.test('occupants on three nodes see each other join, once each', async (t) => {
      const a = await join(alice, ROOM, 'Alice');
      t.equal(a.subject?.getChildText('subject'), 'Spanning three nodes', 'alice (n1) gets the subject set on n3');
      await alice.next(available('Carol'));
      await carol.next(available('Alice'));
      await groupchat(alice, ROOM, 'said before bob came');
      await carol.next(groupchatWith('said before bob came'));
      const b = await join(bob, ROOM, 'Bob', { waitSubject: false });
      t.same(statusCodes(b.self).includes(110), true, 'bob (n2) is in');
      const history = await bob.next(groupchatWith('said before bob came'));
      t.ok(history.getChild('delay', 'urn:xmpp:delay'), 'bob gets the history, delayed');
      await bob.next(isSubject(ROOM));
      for (const nick of ['Alice', 'Carol']) await bob.next(available(nick));
      await alice.next(available('Bob'));
      await carol.next(available('Bob'));
      await nothingElse(t, bob, [alice, carol], available('Bob'), "bob's join");
      await nothingElse(t, alice, [bob, carol], available('Alice'), "alice's join");
    });

    await t.test('groupchat messages from every node reach every occupant once', async (t) => {
      const everyone = [alice, bob, carol];
      for (const [sender, text] of [
        [alice, 'from n1'],
        [bob, 'from n2'],
        [carol, 'from n3'],
      ] as const) {
        await groupchat(sender, ROOM, text);
        for (const r of everyone) await r.next(groupchatWith(text));
      }
      // In order from one sender, once each.
      for (let i = 0; i < 5; i++) await groupchat(bob, ROOM, `burst ${i}`);
      for (const r of everyone) {
        for (let i = 0; i < 5; i++) {
          const got = await r.next((el) => el.name === 'message' && el.getChildText('body')?.startsWith('burst ') === true);
          t.equal(got.getChildText('body'), `burst ${i}`, `${r.jid} has burst ${i} in order`);
        }
      }
      await nothingElse(t, bob, everyone, (el) => el.name === 'message' && /^(from n|burst )/.test(el.getChildText('body') ?? ''), 'each message');
    });

    await t.test('a private message between occupants on different nodes', async (t) => {
      await alice.send(xml('message', { to: occupant('Bob'), type: 'chat' }, xml('body', {}, 'just for you'), xml('x', { xmlns: 'http://jabber.org/protocol/muc#user' })));
      const got = await bob.next((el) => el.name === 'message' && el.getChildText('body') === 'just for you');
      t.equal(got.attrs.from, occupant('Alice'), 'bob (n2) has it from the room as Alice (n1)');
    });

    await t.test('disco#items on any node lists the room', async (t) => {
      const items = await iq(alice, 'get', SERVICE, xml('query', { xmlns: DISCO_ITEMS }));
      const found = items
        .getChild('query')
        ?.getChildren('item')
        .find((i) => i.attrs.jid === ROOM);
      t.equal(found?.attrs.name, 'Across nodes', 'n1 lists the room n3 serves');
    });

    await t.test('the room-holding node killed: occupants elsewhere get 332, the room comes back on another node', async (t) => {
      const started = Date.now();
      n3.signal('SIGKILL');
      const self = await alice.next(shutDown('Alice'), 30_000);
      t.ok(statusCodes(self).includes(110), `alice (n1) is told she is out (110, 332) after ${Date.now() - started} ms`);
      await bob.next(shutDown('Bob'), 10_000);
      t.pass('and bob (n2)');

      // They join again: the room comes from storage on the node the join reached.
      const again = await join(alice, ROOM, 'Alice');
      t.equal(again.subject?.getChildText('subject'), 'Spanning three nodes', 'the subject is kept');
      t.equal(await lease(), 'n1', 'n1 serves the room now');
      const info = await iq(bob, 'get', ROOM, xml('query', { xmlns: DISCO_INFO }));
      t.equal(info.getChild('query')?.getChild('identity')?.attrs.name, 'Across nodes', 'its configuration is kept');
      t.ok(
        info
          .getChild('query')
          ?.getChildren('feature')
          .some((f) => f.attrs.var === 'muc_persistent'),
        'persistent still',
      );
      await join(bob, ROOM, 'Bob');
      await alice.next(available('Bob'));
      await groupchat(bob, ROOM, 'back again');
      await alice.next(groupchatWith('back again'));
      t.pass('bob (n2) and alice (n1) talk in the room again');
      t.equal(alice.take(shutDown('Alice')).length, 0, 'alice was told once');
    });

    await t.test('the room-holding node stopped: its leases are free at once, the room goes on elsewhere', async (t) => {
      await n1.stop();
      t.equal(await lease(), null, 'n1 released the lease on its way out');
      await bob.next(shutDown('Bob'));
      t.pass('bob (n2) got 332 from the room shutting down on n1');
      const again = await join(bob, ROOM, 'Bob');
      t.equal(again.subject?.getChildText('subject'), 'Spanning three nodes', 'the room, with its subject, is on n2 now');
      t.equal(await lease(), 'n2');
    });

    await t.test('a node starting keeps the archives of rooms it does not serve', async (t) => {
      await node('n4');
      const id = 'mam-after-n4';
      await bob.send(xml('iq', { type: 'set', id, to: ROOM }, xml('query', { xmlns: 'urn:xmpp:mam:2', queryid: id })));
      const archived: string[] = [];
      for (;;) {
        const el = await bob.next((e) => (e.name === 'message' && e.getChild('result', 'urn:xmpp:mam:2')?.attrs.queryid === id) || (e.name === 'iq' && e.attrs.id === id));
        if (el.name === 'iq') {
          t.equal(el.attrs.type, 'result');
          break;
        }
        const body = el.getChild('result', 'urn:xmpp:mam:2')?.getChild('forwarded')?.getChild('message')?.getChildText('body');
        if (body) archived.push(body);
      }
      t.ok(archived.includes('from n1') && archived.includes('back again'), `the room's archive is whole: ${archived.join(', ')}`);
    });
  });
});

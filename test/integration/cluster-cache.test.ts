// Caches of shared state stay coherent between cluster nodes (ctx.invalidation over Redis): a
// blocklist changed on one node applies on the other (and is pushed to the resources there),
// archiving preferences set on one node apply to archiving done on the other, and a roster
// change on one node is seen, with its new version, by a roster get on the other; a node that
// lost its subscription reads its caches again.
import { Redis } from 'ioredis';
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { connect, errorCondition, nothingArrived, xml, type TestClient } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { REDIS_URL, redisReachable, useService } from '../helpers/services.js';
import { clusterLiveState } from '../helpers/cluster.js';

const BLOCKING = 'urn:xmpp:blocking';
const MAM = 'urn:xmpp:mam:2';
const ROSTER = 'jabber:iq:roster';

const body = (text: string) => (el: Element) => el.name === 'message' && el.getChildText('body') === text;
const isPush = (name: 'block' | 'unblock') => (el: Element) => el.name === 'iq' && el.attrs.type === 'set' && !!el.getChild(name, BLOCKING);
const stanzaIdBy = (el: Element, by: string) => el.getChildren('stanza-id', 'urn:xmpp:sid:0').find((s) => s.attrs.by === by)?.attrs.id;

let counter = 0;
async function iq(client: TestClient, type: 'get' | 'set', payload: Element): Promise<Element> {
  const id = `cc${++counter}`;
  await client.send(xml('iq', { type, id }, payload));
  return client.next((el) => el.name === 'iq' && el.attrs.id === id);
}

/** Resolves once `ts`'s bus has handled another node's change on `topic` (its modules' handlers run first). */
function nextInvalidation(ts: TestServer, topic: string): Promise<string> {
  return new Promise((resolve) => {
    const off = ts.server.core.invalidation.on(topic, (key) => {
      off();
      resolve(key);
    });
  });
}

t.test('caches of shared state between two cluster nodes', async (t) => {
  if (!(await useService(t, 'Redis', redisReachable, REDIS_URL))) return;
  await onPostgres(t, 'starling_cluster_cache', async (storage) => {
    const live_state = clusterLiveState(t);
    const prefix = live_state.key_prefix;
    const node = (id: string): Promise<TestServer> =>
      startTestServer(t, {
        ...storage,
        live_state,
        cluster: { node_id: id },
        modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'mam', 'blocking'],
      });
    const n1 = await node('n1');
    const n2 = await node('n2');
    for (const user of ['bob', 'carol', 'dave']) await n1.addUser(user);

    const clients: TestClient[] = [];
    t.teardown(() => Promise.all(clients.map((c) => c.stop())));
    const bob1 = await connect(n1, 'bob', { resource: 'b1' });
    const bob2 = await connect(n2, 'bob', { resource: 'b2' });
    const carol = await connect(n2, 'carol', { resource: 'c' });
    clients.push(bob1, bob2, carol);
    // Both of bob's resources ask for the blocklist (so they get pushes) and the roster.
    for (const c of [bob1, bob2]) {
      await iq(c, 'get', xml('blocklist', { xmlns: BLOCKING }));
      await iq(c, 'get', xml('query', { xmlns: ROSTER }));
    }

    await t.test('a block on node 1 applies to a message routed by node 2', async (t) => {
      // Node 2 has bob's list in memory (bob/b2 is bound there): empty so far.
      await carol.send(xml('message', { to: bob2.jid, type: 'chat' }, xml('body', {}, 'before the block')));
      await bob2.next(body('before the block'));

      const pushed = bob2.next(isPush('block'));
      const reply = await iq(bob1, 'set', xml('block', { xmlns: BLOCKING }, xml('item', { jid: 'carol@localhost' })));
      t.equal(reply.attrs.type, 'result', 'blocked on node 1');
      const push = await pushed;
      t.same(
        push
          .getChild('block', BLOCKING)!
          .getChildren('item')
          .map((i) => i.attrs.jid),
        ['carol@localhost'],
        'bob/b2 on node 2 gets the push, from node 2 (which read the list again)',
      );
      t.ok(await nothingArrived(bob2, isPush('block'), bob1), 'once');

      await carol.send(xml('message', { to: bob2.jid, type: 'chat', id: 'blocked1' }, xml('body', {}, 'after the block')));
      const bounced = await carol.next((el) => el.name === 'message' && el.attrs.id === 'blocked1');
      t.equal(bounced.attrs.type, 'error', 'carol gets an error');
      t.equal(errorCondition(bounced), 'service-unavailable', 'node 2 refuses it for bob');
      t.ok(await nothingArrived(bob2, body('after the block'), carol), 'bob/b2 does not get it');
    });

    await t.test('an unblock on node 1 applies on node 2', async (t) => {
      const pushed = bob2.next(isPush('unblock'));
      const reply = await iq(bob1, 'set', xml('unblock', { xmlns: BLOCKING }, xml('item', { jid: 'carol@localhost' })));
      t.equal(reply.attrs.type, 'result', 'unblocked on node 1');
      t.same(
        (await pushed)
          .getChild('unblock', BLOCKING)!
          .getChildren('item')
          .map((i) => i.attrs.jid),
        ['carol@localhost'],
        'pushed on node 2',
      );
      await carol.send(xml('message', { to: bob2.jid, type: 'chat' }, xml('body', {}, 'after the unblock')));
      t.equal((await bob2.next(body('after the unblock'))).attrs.from, carol.jid, 'delivered again');
    });

    await t.test('archiving preferences set on node 1 apply to archiving on node 2', async (t) => {
      // Node 2 archives carol's message into bob's archive (and caches bob's preferences).
      await carol.send(xml('message', { to: bob2.jid, type: 'chat' }, xml('body', {}, 'archived')));
      t.ok(stanzaIdBy(await bob2.next(body('archived')), 'bob@localhost'), 'archived by default, with a stanza-id');

      const heard = nextInvalidation(n2, 'mam-prefs');
      const reply = await iq(bob1, 'set', xml('prefs', { xmlns: MAM, default: 'always' }, xml('always'), xml('never', {}, xml('jid', {}, 'carol@localhost'))));
      t.equal(reply.attrs.type, 'result', 'never carol, set on node 1');
      t.equal(await heard, 'bob@localhost', 'node 2 is told');

      await carol.send(xml('message', { to: bob2.jid, type: 'chat' }, xml('body', {}, 'not archived')));
      t.equal(stanzaIdBy(await bob2.next(body('not archived')), 'bob@localhost'), undefined, 'node 2 no longer archives it: no stanza-id');
    });

    await t.test('a roster change on node 1 is seen by a roster get on node 2, with a new version', async (t) => {
      const before = (await iq(bob2, 'get', xml('query', { xmlns: ROSTER }))).getChild('query', ROSTER)!.attrs.ver;
      const pushed = bob2.next((el) => el.name === 'iq' && el.attrs.type === 'set' && !!el.getChild('query', ROSTER));
      const set = await iq(bob1, 'set', xml('query', { xmlns: ROSTER }, xml('item', { jid: 'dave@localhost', name: 'Dave' })));
      t.equal(set.attrs.type, 'result', 'dave added on node 1');
      const push = (await pushed).getChild('query', ROSTER)!;
      t.equal(push.getChild('item')?.attrs.jid, 'dave@localhost', 'bob/b2 on node 2 gets the roster push');

      const got = (await iq(bob2, 'get', xml('query', { xmlns: ROSTER }))).getChild('query', ROSTER)!;
      t.ok(Number(got.attrs.ver) > Number(before), `the version advanced (${before} -> ${got.attrs.ver})`);
      t.equal(got.attrs.ver, push.attrs.ver, 'to the version of the push');
      t.equal(got.getChildren('item').find((i) => i.attrs.jid === 'dave@localhost')?.attrs.name, 'Dave', 'node 2 has the item');

      // A versioned get from the old version: an empty result, then the change as a push.
      const since = bob2.next((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.attrs.ver === got.attrs.ver);
      const empty = await iq(bob2, 'get', xml('query', { xmlns: ROSTER, ver: before }));
      t.equal(empty.getChild('query'), undefined, 'an empty result');
      t.equal((await since).getChild('query', ROSTER)!.getChild('item')?.attrs.jid, 'dave@localhost', 'the change pushed');
    });

    await t.test('a node whose subscription was cut reads its caches again, and hears later changes', async (t) => {
      const redis = new Redis(REDIS_URL);
      t.teardown(() => redis.quit());
      const clients = (await redis.client('LIST')) as string;
      const id = clients
        .split('\n')
        .find((line) => line.includes(` name=${prefix}invalidate:n2 `))
        ?.match(/\bid=(\d+)/)?.[1];
      t.ok(id, "node 2's subscriber found");
      const reset = nextInvalidation(n2, 'mam-prefs');
      await redis.client('KILL', 'ID', id!);
      t.equal(await reset, '*', 'once subscribed again, everything is read again');

      const heard = nextInvalidation(n2, 'mam-prefs');
      await iq(bob1, 'set', xml('prefs', { xmlns: MAM, default: 'always' }, xml('always'), xml('never')));
      t.equal(await heard, 'bob@localhost', 'a later change is heard');
      await carol.send(xml('message', { to: bob2.jid, type: 'chat' }, xml('body', {}, 'archived again')));
      t.ok(stanzaIdBy(await bob2.next(body('archived again')), 'bob@localhost'), 'and applies');
    });
  });
});

// What sessions do across the nodes of a cluster (PostgreSQL + Redis): message carbons between
// resources on different nodes, exactly once.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { connect, nothingArrived, xml, type TestClient } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { REDIS_URL, redisReachable, useService } from '../helpers/services.js';
import { parseJid } from '../../src/jid.js';
import { CARBONS } from '../../modules/carbons/index.js';

// Seconds: a node is taken for dead after 3 (found within 2 more).
const HEARTBEAT = 3;
const NS_CARBONS = 'urn:xmpp:carbons:2';

const body = (text: string) => (el: Element) => el.name === 'message' && el.getChildText('body') === text;
/** A carbon copy (<sent/> or <received/>) of the message with this body. */
const carbon = (kind: 'sent' | 'received', text: string) => (el: Element) =>
  el.name === 'message' && el.getChild(kind, NS_CARBONS)?.getChild('forwarded')?.getChild('message')?.getChildText('body') === text;

/** Waits until `check` holds: for what another node learns through Redis (no event of its own reaches the test). */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether `node` sees carbons enabled on `client`'s session of another node. */
const seesCarbons = (node: TestServer, client: TestClient) => node.server.core.sessions.getRemote(parseJid(client.jid))?.data.get(CARBONS) === true;

async function setCarbons(client: TestClient, on: boolean): Promise<void> {
  const id = `carbons-${randomBytes(3).toString('hex')}`;
  await client.send(xml('iq', { type: 'set', id }, xml(on ? 'enable' : 'disable', { xmlns: NS_CARBONS })));
  await client.next((el) => el.name === 'iq' && el.attrs.id === id && el.attrs.type === 'result');
}

t.test('sessions across the nodes of a cluster', async (t) => {
  if (!(await useService(t, 'Redis', redisReachable, REDIS_URL))) return;
  await onPostgres(t, 'starling_cluster_sessions', async (storage) => {
    const prefix = `starling-test-${randomBytes(4).toString('hex')}:`;
    t.teardown(async () => {
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    });
    const live_state = { backend: 'redis', redis_url: REDIS_URL, key_prefix: prefix };
    const node = (id: string): Promise<TestServer> => startTestServer(t, { ...storage, live_state, cluster: { node_id: id, heartbeat_interval: HEARTBEAT } });
    const n1 = await node('n1');
    const n2 = await node('n2');
    for (const user of ['alice', 'bob']) await n1.addUser(user);

    await t.test('message carbons between resources on different nodes, each copy once', async (t) => {
      const a1 = await connect(n1, 'alice', { resource: 'a1' });
      const a2 = await connect(n2, 'alice', { resource: 'a2' });
      const bob = await connect(n1, 'bob', { resource: 'b1' });
      t.teardown(() => Promise.all([a1.stop(), a2.stop(), bob.stop()]));

      // Enabled on n2: n1 copies to it.
      await setCarbons(a2, true);
      await until(() => seesCarbons(n1, a2), 'n1 sees carbons enabled on alice/a2');
      await a1.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'sent on n1')));
      await bob.next(body('sent on n1'));
      const sent = await a2.next(carbon('sent', 'sent on n1'));
      t.equal(sent.attrs.to, a2.jid, '<sent/> reaches alice/a2 on n2');
      await bob.send(xml('message', { to: a1.jid, type: 'chat' }, xml('body', {}, 'received on n1')));
      await a1.next(body('received on n1'));
      await a2.next(carbon('received', 'received on n1'));
      t.pass('<received/> of a message to alice/a1 on n1 reaches alice/a2 on n2');
      t.ok(await nothingArrived(a2, (el) => carbon('sent', 'sent on n1')(el) || carbon('received', 'received on n1')(el), a1, bob), 'each copy once');
      t.ok(
        await nothingArrived(a1, (el) => el.getChild('sent', NS_CARBONS) !== undefined || el.getChild('received', NS_CARBONS) !== undefined, bob),
        'none to alice/a1 (not enabled)',
      );

      // Enabled on n1: n2's messages are copied there, the other way round.
      await setCarbons(a1, true);
      await until(() => seesCarbons(n2, a1), 'n2 sees carbons enabled on alice/a1');
      await a2.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'sent on n2')));
      await bob.next(body('sent on n2'));
      await a1.next(carbon('sent', 'sent on n2'));
      t.pass('<sent/> of a message sent on n2 reaches alice/a1 on n1');
      await bob.send(xml('message', { to: a2.jid, type: 'chat' }, xml('body', {}, 'received on n2')));
      await a2.next(body('received on n2'));
      await a1.next(carbon('received', 'received on n2'));
      t.pass('<received/> of a message to alice/a2 on n2 reaches alice/a1 on n1');
      t.ok(await nothingArrived(a1, (el) => carbon('sent', 'sent on n2')(el) || carbon('received', 'received on n2')(el), a2, bob), 'each copy once');
      t.ok(await nothingArrived(a2, (el) => carbon('sent', 'sent on n2')(el) || carbon('received', 'received on n2')(el), bob), 'none to the sender or recipient itself');

      // Disabled on n2: n1 stops copying to it.
      await setCarbons(a2, false);
      await until(() => !seesCarbons(n1, a2), 'n1 sees carbons disabled on alice/a2');
      await a1.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'after disable')));
      await bob.next(body('after disable'));
      t.ok(await nothingArrived(a2, carbon('sent', 'after disable'), a1), 'no copy once disabled');
    });
  });
});

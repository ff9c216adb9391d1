// Live-state contract: the same cases on the in-memory implementation and on Redis.
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import type { LiveState } from '../../src/sessions/live-state.js';
import { createMemoryLiveState } from '../../src/sessions/memory-live-state.js';
import { openRedisLiveState } from '../../src/sessions/redis-live-state.js';
import { REDIS_URL, redisReachable, useService } from '../helpers/services.js';

async function contract(t: Test, live: LiveState) {
  t.teardown(() => live.close());
  // Unique names, so runs against a shared Redis never meet.
  const bare = `user-${randomBytes(4).toString('hex')}@example.org`;

  t.test('session directory', async (t) => {
    await live.sessions.put({ jid: `${bare}/a`, node: 'n1', priority: 1, available: true });
    await live.sessions.put({ jid: `${bare}/b`, node: 'n2', priority: -1, available: false });
    const all = (await live.sessions.resourcesOf(bare)).sort((x, y) => x.jid.localeCompare(y.jid));
    t.same(all, [
      { jid: `${bare}/a`, node: 'n1', priority: 1, available: true },
      { jid: `${bare}/b`, node: 'n2', priority: -1, available: false },
    ]);
    await live.sessions.put({ jid: `${bare}/a`, node: 'n1', priority: 7, available: true });
    t.equal((await live.sessions.resourcesOf(bare)).find((r) => r.jid.endsWith('/a'))?.priority, 7, 'put replaces');
    await live.sessions.remove(`${bare}/b`, 'n1');
    t.equal((await live.sessions.resourcesOf(bare)).length, 2, "a node cannot remove another node's entry");
    await live.sessions.remove(`${bare}/b`, 'n2');
    await live.sessions.remove(`${bare}/a`, 'n1');
    t.same(await live.sessions.resourcesOf(bare), []);
  });

  t.test('counters count within a window and expire', async (t) => {
    const key = `test:${bare}`;
    t.equal(await live.counters.peek(key), 0);
    t.equal(await live.counters.hit(key, 200), 1);
    t.equal(await live.counters.hit(key, 200), 2);
    t.equal(await live.counters.peek(key), 2);
    await new Promise((r) => setTimeout(r, 300));
    t.equal(await live.counters.peek(key), 0, 'expired with the window');
    t.equal(await live.counters.hit(key, 200), 1, 'a new window starts at one');
    await live.counters.reset(key);
    t.equal(await live.counters.peek(key), 0);
  });
}

t.test('memory', (t) => contract(t, createMemoryLiveState()));

t.test('redis', async (t) => {
  if (!(await useService(t, 'Redis', redisReachable, REDIS_URL))) return;
  await contract(t, await openRedisLiveState(REDIS_URL));
});

// Federation with a cluster: a remote server's stream may land on any node. Here b.localhost's
// stream lands on node 1 while alice@a.localhost is bound on node 2; her reply leaves over node
// 2's own outgoing stream, which b.localhost verifies by dialback against node 1 (the nodes share
// the dialback secret through Redis).
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { onPostgres } from '../helpers/databases.js';
import { REDIS_URL, redisReachable, useService } from '../helpers/services.js';
import { clusterLiveState } from '../helpers/cluster.js';
import { connectTo, startFederated, xml, type FederatedServer } from './s2s-helpers.js';

const isMessageFrom = (from: string, body: string) => (el: Element) =>
  el.name === 'message' && el.attrs.from === from && el.attrs.type !== 'error' && el.getChildText('body') === body;

const outgoing = (ts: FederatedServer) => ts.server.s2s.connections().filter((c) => c.direction === 'out' && c.remote === 'b.localhost');

t.test('a remote server talks to a cluster through any node', async (t) => {
  if (!(await useService(t, 'Redis', redisReachable, REDIS_URL))) return;
  await onPostgres(t, 'starling_cluster_s2s', async (storage) => {
    const live_state = clusterLiveState(t);
    const prefix = live_state.key_prefix;
    const node = (id: string) => startFederated(t, 'a.localhost', {}, { ...storage, live_state, cluster: { node_id: id } });
    const n1 = await node('n1');
    const n2 = await node('n2');
    const b = await startFederated(t, 'b.localhost');
    // b.localhost reaches a.localhost at node 1 only; each node has its own route out to b.localhost.
    b.server.s2s.addRoute('a.localhost', `127.0.0.1:${n1.s2sPort}`);
    for (const n of [n1, n2]) n.server.s2s.addRoute('b.localhost', `127.0.0.1:${b.s2sPort}`);
    await n1.user('alice');
    await b.user('bob');

    const alice = await connectTo(n2, 'alice', 'desk');
    const bob = await connectTo(b, 'bob', 'phone');
    t.teardown(() => Promise.all([alice.stop(), bob.stop()]));

    await bob.send(xml('message', { to: 'alice@a.localhost', type: 'chat' }, xml('body', {}, 'hello cluster')));
    t.equal((await alice.next(isMessageFrom(bob.jid, 'hello cluster'))).attrs.to, 'alice@a.localhost', 'alice on node 2 gets what came in on node 1');
    t.match(
      n1.server.s2s.connections().filter((c) => c.direction === 'in'),
      [{ remote: 'b.localhost', auth: ['b.localhost:dialback'] }],
      "b.localhost's stream is on node 1",
    );

    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'hello from node 2')));
    t.equal((await bob.next(isMessageFrom(alice.jid, 'hello from node 2'))).attrs.to, bob.jid, 'the reply reaches bob');
    t.match(outgoing(n2), [{ local: 'a.localhost', auth: ['dialback'], ready: true }], "over node 2's own outgoing stream, verified against node 1");
  });
});

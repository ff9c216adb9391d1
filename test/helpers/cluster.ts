// What the cluster tests share: the Redis keys of one run (under a prefix of their own, removed
// at the end) and a node run as a real `starling start` process on the run's database and Redis.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { configDir, loopbackServerToml, startStarling, type RunningStarling } from './cli.js';
import { REDIS_URL } from './services.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface ClusterLiveState {
  backend: 'redis';
  redis_url: string;
  key_prefix: string;
}

/** The [live_state] of one run's nodes; its keys are deleted at teardown (register it before the nodes). */
export function clusterLiveState(t: Teardown): ClusterLiveState {
  const prefix = `starling-test-${randomBytes(4).toString('hex')}:`;
  t.teardown(async () => {
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });
  return { backend: 'redis', redis_url: REDIS_URL, key_prefix: prefix };
}

export interface ClusterProcess extends RunningStarling {
  config: string;
  /** Sends `signal` (SIGKILL: the node is not killed again at teardown). */
  signal(signal: NodeJS.Signals): void;
}

/** A node `id` as a `starling start` process on PostgreSQL (`pg`) and the run's Redis; killed at teardown. */
export async function startClusterProcess(
  t: Teardown,
  id: string,
  pg: { postgres_url: string; postgres_schema: string },
  live: ClusterLiveState,
  heartbeatSeconds: number,
): Promise<ClusterProcess> {
  const { config } = configDir(
    t,
    `cluster-${id}`,
    (dir) => `${loopbackServerToml(dir)}
[storage]
driver = "postgres"
postgres_url = "${pg.postgres_url}"
postgres_schema = "${pg.postgres_schema}"
[live_state]
backend = "redis"
redis_url = "${live.redis_url}"
key_prefix = "${live.key_prefix}"
[cluster]
node_id = "${id}"
heartbeat_interval = ${heartbeatSeconds}
`,
  );
  const node = await startStarling(config);
  let killed = false;
  t.teardown(() => {
    if (!killed) node.child.kill('SIGKILL');
  });
  return {
    ...node,
    config,
    signal(signal) {
      if (signal === 'SIGKILL') killed = true;
      node.child.kill(signal);
    },
  };
}

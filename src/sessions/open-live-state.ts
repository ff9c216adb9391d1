// Memory for a single node, Redis when configured (a cluster).
import type { LiveState } from './live-state.js';
import { createMemoryLiveState } from './memory-live-state.js';
import type { Logger } from '../log.js';

/** Redis: fails with "unreachable (...)" within a few seconds when it cannot connect. */
export async function openLiveState(options: { backend: 'memory' | 'redis'; redis_url: string; key_prefix?: string }, log?: Logger): Promise<LiveState> {
  if (options.backend === 'memory') return createMemoryLiveState();
  const { openRedisLiveState } = await import('./redis-live-state.js');
  return openRedisLiveState(options.redis_url, { log, prefix: options.key_prefix });
}

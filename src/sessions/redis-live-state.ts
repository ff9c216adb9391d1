// Live state in Redis, shared by the nodes of a cluster: the session directory as one hash per
// bare JID, counters as expiring keys.
import { Redis } from 'ioredis';
import type { Counters, LiveState, SessionDirectory, SessionRecord } from './live-state.js';
import type { Logger } from '../log.js';

const PREFIX = 'starling:';

function bareOf(fullJid: string): string {
  const slash = fullJid.indexOf('/');
  return slash === -1 ? fullJid : fullJid.slice(0, slash);
}

class RedisSessionDirectory implements SessionDirectory {
  constructor(private readonly redis: Redis) {}

  async put(record: SessionRecord): Promise<void> {
    await this.redis.hset(`${PREFIX}sessions:${bareOf(record.jid)}`, record.jid, JSON.stringify(record));
  }

  async remove(fullJid: string, node: string): Promise<void> {
    const key = `${PREFIX}sessions:${bareOf(fullJid)}`;
    const current = await this.redis.hget(key, fullJid);
    // Another node may have taken the resource over meanwhile: remove only our own entry.
    if (current && (JSON.parse(current) as SessionRecord).node === node) await this.redis.hdel(key, fullJid);
  }

  async resourcesOf(bareJid: string): Promise<SessionRecord[]> {
    const all = await this.redis.hgetall(`${PREFIX}sessions:${bareJid}`);
    return Object.values(all).map((v) => JSON.parse(v) as SessionRecord);
  }
}

class RedisCounters implements Counters {
  constructor(private readonly redis: Redis) {}

  async hit(key: string, windowMs: number): Promise<number> {
    const k = `${PREFIX}counter:${key}`;
    const [[, count]] = (await this.redis.multi().incr(k).pexpire(k, windowMs, 'NX').exec()) as [[Error | null, number]];
    return count;
  }

  async peek(key: string): Promise<number> {
    return Number((await this.redis.get(`${PREFIX}counter:${key}`)) ?? 0);
  }

  async reset(key: string): Promise<void> {
    await this.redis.del(`${PREFIX}counter:${key}`);
  }
}

/**
 * Connects once, without retrying: an unreachable Redis is an error ("unreachable (...)")
 * within `connectTimeoutMs`, not endless retries. Once connected, a lost connection is
 * retried with backoff and commands meanwhile fail (after maxRetriesPerRequest) with an
 * error their caller handles; the loss and the recovery are logged once each.
 */
export async function openRedisLiveState(url: string, { connectTimeoutMs = 5000, log }: { connectTimeoutMs?: number; log?: Logger } = {}): Promise<LiveState> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    connectTimeout: connectTimeoutMs,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  let connected = false;
  let lost = false;
  redis.on('error', (err: Error) => {
    lastError = err;
    if (connected && !lost) {
      lost = true;
      log?.error({ err: err.message }, 'live state: lost the connection to Redis; retrying');
    }
  });
  redis.on('ready', () => {
    if (lost) log?.info('live state: reconnected to Redis');
    lost = false;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${connectTimeoutMs / 1000} s`)), connectTimeoutMs);
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    const reason = lastError ?? (err as Error);
    throw new Error(`unreachable (${reason.message || (reason as NodeJS.ErrnoException).code || reason})`);
  } finally {
    clearTimeout(timer);
  }
  connected = true;
  redis.options.retryStrategy = (times: number) => Math.min(100 * times, 2000);
  return {
    sessions: new RedisSessionDirectory(redis),
    counters: new RedisCounters(redis),
    state: async () => {
      if (redis.status !== 'ready') return redis.status;
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([redis.ping(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 1 s')), 1000)))]);
        return `ready (PING ${Date.now() - started} ms)`;
      } catch (err) {
        return `ready, but PING failed: ${(err as Error).message}`;
      } finally {
        clearTimeout(timer);
      }
    },
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

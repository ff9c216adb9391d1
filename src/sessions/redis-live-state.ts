// Live state in Redis, shared by the nodes of a cluster: the session directory as one hash per
// bare JID, counters as expiring keys.
import { Redis } from 'ioredis';
import type { Counters, LiveState, SessionDirectory, SessionRecord } from './live-state.js';
import type { Logger } from '../log.js';

function bareOf(fullJid: string): string {
  const slash = fullJid.indexOf('/');
  return slash === -1 ? fullJid : fullJid.slice(0, slash);
}

// The directory: `<prefix>sessions:<bare JID>` (full JID -> record), `<prefix>node-sessions:<node>`
// (the full JIDs a node holds), and every change published on `<prefix>directory` for the
// other nodes' copies. Each change is one script, atomic.
// ARGV: full JID, record, node, prefix, claim ('1': take it whoever holds it).
const PUT = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local prev = false
if cur then prev = cjson.decode(cur).node end
if ARGV[5] ~= '1' and cur and prev ~= ARGV[3] then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', ARGV[4] .. 'node-sessions:' .. ARGV[3], ARGV[1])
if prev and prev ~= ARGV[3] then redis.call('SREM', ARGV[4] .. 'node-sessions:' .. prev, ARGV[1]) end
redis.call('PUBLISH', ARGV[4] .. 'directory', '{"op":"put","record":' .. ARGV[2] .. '}')
return cur`;
// ARGV: full JID, node, prefix.
const REMOVE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('SREM', ARGV[3] .. 'node-sessions:' .. ARGV[2], ARGV[1])
if not cur or cjson.decode(cur).node ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3] .. 'directory', cjson.encode({op = 'remove', jid = ARGV[1], node = ARGV[2]}))
return 1`;

class RedisSessionDirectory implements SessionDirectory {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private async write(record: SessionRecord, claim: boolean): Promise<SessionRecord | undefined> {
    const previous = (await this.redis.eval(
      PUT,
      1,
      `${this.prefix}sessions:${bareOf(record.jid)}`,
      record.jid,
      JSON.stringify(record),
      record.node,
      this.prefix,
      claim ? '1' : '0',
    )) as string | null;
    return previous ? (JSON.parse(previous) as SessionRecord) : undefined;
  }

  async put(record: SessionRecord): Promise<void> {
    await this.write(record, false);
  }

  claim(record: SessionRecord): Promise<SessionRecord | undefined> {
    return this.write(record, true);
  }

  async remove(fullJid: string, node: string): Promise<void> {
    // Another node may have taken the resource over meanwhile: only our own entry goes.
    await this.redis.eval(REMOVE, 1, `${this.prefix}sessions:${bareOf(fullJid)}`, fullJid, node, this.prefix);
  }

  async resourcesOf(bareJid: string): Promise<SessionRecord[]> {
    const all = await this.redis.hgetall(`${this.prefix}sessions:${bareJid}`);
    return Object.values(all).map((v) => JSON.parse(v) as SessionRecord);
  }
}

class RedisCounters implements Counters {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async hit(key: string, windowMs: number): Promise<number> {
    const k = `${this.prefix}counter:${key}`;
    const [[, count]] = (await this.redis.multi().incr(k).pexpire(k, windowMs, 'NX').exec()) as [[Error | null, number]];
    return count;
  }

  async peek(key: string): Promise<number> {
    return Number((await this.redis.get(`${this.prefix}counter:${key}`)) ?? 0);
  }

  async reset(key: string): Promise<void> {
    await this.redis.del(`${this.prefix}counter:${key}`);
  }
}

/**
 * Connects once, without retrying: an unreachable Redis is an error ("unreachable (...)")
 * within `connectTimeoutMs`, not endless retries. Once connected, a lost connection is
 * retried with backoff and commands meanwhile fail (after maxRetriesPerRequest) with an
 * error their caller handles; the loss and the recovery are logged once each.
 */
export async function openRedisLiveState(
  url: string,
  { connectTimeoutMs = 5000, log, prefix = 'starling:' }: { connectTimeoutMs?: number; log?: Logger; prefix?: string } = {},
): Promise<LiveState> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    // Commands issued in one event-loop turn go in one write (a cluster's inbox entries, directory updates).
    enableAutoPipelining: true,
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
    sessions: new RedisSessionDirectory(redis, prefix),
    counters: new RedisCounters(redis, prefix),
    redis: { client: redis, prefix },
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

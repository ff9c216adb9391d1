// Cache invalidation between the nodes of a cluster. A module that keeps shared state in memory
// (a blocklist, archiving preferences) publishes `(topic, key)` once its change is committed;
// the other nodes' handlers of that topic drop or reload their copy of `key`. Without a cluster
// there is no other node: publish does nothing.
//
// In a cluster every node publishes on one Redis channel, `<prefix>invalidate`, and ignores its
// own messages (its caches were updated with the change). Redis pub/sub drops what is published
// while a subscriber is disconnected: once subscribed again, every handler hears ALL (the key
// '*'), and drops or reloads every copy it has.
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';

/** The key a handler hears after a gap in which it may have missed changes: everything may be stale. */
export const ALL = '*';

export type InvalidationHandler = (key: string) => void;

export interface Invalidation {
  /** Tells the other nodes that `key` of `topic` changed; resolves once sent (never rejects). */
  publish(topic: string, key: string): Promise<void>;
  /** Calls `handler` for every change another node publishes on `topic`; returns the way to stop. */
  on(topic: string, handler: InvalidationHandler): () => void;
}

class Handlers {
  private readonly byTopic = new Map<string, Set<InvalidationHandler>>();

  constructor(private readonly log?: Logger) {}

  add(topic: string, handler: InvalidationHandler): () => void {
    let set = this.byTopic.get(topic);
    if (!set) this.byTopic.set(topic, (set = new Set()));
    set.add(handler);
    return () => void set.delete(handler);
  }

  fireAll(): void {
    for (const topic of this.byTopic.keys()) this.fire(topic, ALL);
  }

  fire(topic: string, key: string): void {
    for (const handler of this.byTopic.get(topic) ?? []) {
      try {
        handler(key);
      } catch (err) {
        this.log?.error({ err, topic }, 'invalidation: a handler failed');
      }
    }
  }
}

/** A single node: nobody else to tell. */
export function localInvalidation(): Invalidation {
  const handlers = new Handlers();
  return { publish: async () => {}, on: (topic, handler) => handlers.add(topic, handler) };
}

export interface RedisInvalidation extends Invalidation {
  close(): Promise<void>;
}

/** The cluster's bus: `redis` publishes, a duplicate of it subscribes. */
export async function redisInvalidation(redis: Redis, prefix: string, node: string, log: Logger): Promise<RedisInvalidation> {
  const channel = `${prefix}invalidate`;
  const handlers = new Handlers(log);
  const sub = redis.duplicate({ connectionName: `${prefix}invalidate:${node}`.replace(/\s/g, '_') });
  sub.on('error', () => {});
  sub.on('message', (_channel: string, message: string) => {
    let parsed: { n?: unknown; t?: unknown; k?: unknown };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      log.warn('invalidation: a message that is not JSON; ignored');
      return;
    }
    if (parsed.n === node || typeof parsed.t !== 'string' || typeof parsed.k !== 'string') return;
    handlers.fire(parsed.t, parsed.k);
  });
  await sub.subscribe(channel);
  let subscribed = true;
  sub.on('close', () => (subscribed = false));
  // ioredis subscribes again on 'ready' after a reconnection; the PING's answer comes after that.
  sub.on('ready', () => {
    if (subscribed) return;
    subscribed = true;
    void sub.ping().then(
      () => {
        log.info('invalidation: subscribed again after a disconnection; every cache is read again');
        handlers.fireAll();
      },
      () => {},
    );
  });
  return {
    async publish(topic, key) {
      try {
        await redis.publish(channel, JSON.stringify({ n: node, t: topic, k: key }));
      } catch (err) {
        log.warn({ err, topic }, 'invalidation: publishing failed; other nodes keep their copy until it expires');
      }
    },
    on: (topic, handler) => handlers.add(topic, handler),
    async close() {
      sub.disconnect();
    },
  };
}

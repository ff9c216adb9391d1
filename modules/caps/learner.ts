// What a (hash, ver) announced in entity capabilities stands for (XEP-0115 §5.4): a cache of
// verified answers, shared by every entity that announces the same hash, and the lookups that
// fill it. An announcer is anything that sent a <c/>: a local client session, or a remote
// contact whose presence reached a local account (remote.ts).
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import type { Logger } from '../../src/log.js';
import type { DiscoInfo } from '../disco/service.js';
import { capsVer, readDiscoInfo, supportedHash } from './verification.js';

/** Distinct (hash, ver) pairs kept; clients come in few versions, so this is plenty. */
const CACHE_SIZE = 1000;
/** XEP-0115 §11: ask no more than five entities about one ver. */
const MAX_TRIES = 5;

/** What the server learnt about one (hash, ver). */
export interface CapsEntry {
  features: ReadonlySet<string>;
  info: DiscoInfo;
}

/** One announcement: the <c/> an entity sent last, and what it stands for once known. */
export interface Announcement {
  node: string;
  ver: string;
  hash: string | undefined;
  entry?: CapsEntry;
}

/** An entity that announced capabilities. */
export interface Announcer {
  readonly jid: Jid;
  /** Its latest announcement; undefined once it is gone. */
  current(): Announcement | undefined;
  /** What `announcement` stands for, now known; the announcer checks it is still its current one. */
  learnt(announcement: Announcement, entry: CapsEntry): void;
}

/** A bounded map that forgets the least recently used entry first. */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly size: number) {}

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.size) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  values(): IterableIterator<V> {
    return this.map.values();
  }
}

/** Asks `jid` for disco#info of `node`; resolves with the answer's <query/>, undefined on error or timeout. */
export type DiscoQuery = (jid: Jid, node: string) => Promise<Element | undefined>;

const entryOf = (info: DiscoInfo): CapsEntry => ({ info, features: new Set(info.features) });

export class CapsLearner {
  private readonly cache = new Lru<string, CapsEntry>(CACHE_SIZE);
  /** Lookups under way, by cache key, with the announcers waiting on them. */
  private readonly inflight = new Map<string, Set<Announcer>>();

  constructor(
    private readonly query: DiscoQuery,
    private readonly log: Logger,
  ) {}

  /** Finds out what the announcer's current announcement stands for: from the cache, or by asking. */
  resolve(announcer: Announcer): void {
    const announcement = announcer.current();
    // Without 'hash' it is the legacy format (before XEP-0115 1.4): not a hash of anything.
    if (!announcement || announcement.hash === undefined) return;
    const { hash, node, ver } = announcement;
    if (!supportedHash(hash)) {
      // §5.4 step 2: ask, but keep the answer for this entity only.
      void this.query(announcer.jid, `${node}#${ver}`).then((answer) => {
        if (answer) announcer.learnt(announcement, entryOf(readDiscoInfo(answer).info));
      });
      return;
    }
    const key = `${hash} ${ver}`;
    const cached = this.cache.get(key);
    if (cached) return announcer.learnt(announcement, cached);
    const waiting = this.inflight.get(key);
    if (waiting) return void waiting.add(announcer);
    this.learn(key, announcer).catch((err: unknown) => this.log.error({ err }, 'learning caps failed'));
  }

  /**
   * XEP-0115 §5.4: ask the announcers one after the other (up to five) until an answer matches
   * the hash; that answer is cached for all. An announcer whose answer does not match still
   * gets its own answer, for itself only.
   */
  private async learn(key: string, first: Announcer): Promise<void> {
    const { hash, node, ver } = first.current()!;
    const waiting = new Set<Announcer>([first]);
    const announces = (a: Announcer) => a.current()?.ver === ver && a.current()?.hash === hash;
    this.inflight.set(key, waiting);
    try {
      for (let tries = 0; tries < MAX_TRIES; tries++) {
        const next = [...waiting].find(announces);
        if (!next) return;
        waiting.delete(next);
        const announcement = next.current()!;
        const answer = await this.query(next.jid, `${node}#${ver}`);
        if (!answer) continue;
        const { info, wellFormed } = readDiscoInfo(answer);
        if (wellFormed && capsVer(info, hash!) === ver) {
          const entry = entryOf(info);
          this.cache.set(key, entry);
          next.learnt(announcement, entry);
          for (const other of waiting) if (announces(other)) other.learnt(other.current()!, entry);
          return;
        }
        this.log.debug({ jid: next.jid.toString(), node, ver }, 'caps answer does not match its hash; not cached');
        next.learnt(announcement, entryOf(info));
      }
    } finally {
      this.inflight.delete(key);
    }
  }
}

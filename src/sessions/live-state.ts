// Live, shared state: what is online where, and counters for rate limits. Kept narrow and async
// so a Redis implementation (for a cluster of nodes) can stand behind the same interfaces.

export interface SessionRecord {
  /** Full JID. */
  jid: string;
  /** The node that holds the connection. */
  node: string;
  priority: number;
  available: boolean;
}

/** Who is online on the whole service (all nodes). */
export interface SessionDirectory {
  put(record: SessionRecord): Promise<void>;
  remove(fullJid: string, node: string): Promise<void>;
  /** Every resource of a bare JID, on any node. */
  resourcesOf(bareJid: string): Promise<SessionRecord[]>;
}

/** Fixed-window counters: how many times a key was hit in the current window. */
export interface Counters {
  /** Adds one and returns the count in the current window of `windowMs`. */
  hit(key: string, windowMs: number): Promise<number>;
  /** The count in the current window, without adding. */
  peek(key: string): Promise<number>;
  reset(key: string): Promise<void>;
}

export interface LiveState {
  sessions: SessionDirectory;
  counters: Counters;
  /** How the backend is doing, for `starling status` (Redis: connected or not); absent in memory. */
  state?(): Promise<string>;
  close(): Promise<void>;
}

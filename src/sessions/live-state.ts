// Live, shared state: what is online where, and counters for rate limits. Kept narrow and async
// so a Redis implementation (for a cluster of nodes) can stand behind the same interfaces.

export interface SessionRecord {
  /** Full JID. */
  jid: string;
  /** The node that holds the connection. */
  node: string;
  priority: number;
  available: boolean;
  /** The last available presence, serialised (Redis only: other nodes answer probes with it). */
  presence?: string;
  /** The session's shared flags (LocalSessions.shareFlag) that are on (Redis only). */
  flags?: string[];
  /** The client's IP address, when its connection began (ms since the epoch), TLS on (Redis only: `starling sessions`). */
  ip?: string;
  since?: number;
  secure?: boolean;
}

/** Who is online on the whole service (all nodes). */
export interface SessionDirectory {
  /** Updates a record this node holds (not one another node has taken over meanwhile). */
  put(record: SessionRecord): Promise<void>;
  /** Takes the full JID for `record.node` (a bind), atomically; returns the record it replaced. */
  claim(record: SessionRecord): Promise<SessionRecord | undefined>;
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
  /** Redis only: the connection and key prefix, for the cluster (heartbeats, inboxes). */
  redis?: { client: import('ioredis').Redis; prefix: string };
  close(): Promise<void>;
}

// The control channel between `starling <command>` and the running server: a Unix socket in the
// data directory (mode 0600: only the server's own user reaches it), one JSON object per line.
// A request names its command; the answer is the request's id with a result or an error.
import path from 'node:path';

export const CONTROL_SOCKET_NAME = 'control.sock';

/** Unix socket paths are limited to 107 bytes on Linux (sun_path). */
export const MAX_SOCKET_PATH_BYTES = 107;

export function controlSocketPath(dataDir: string): string {
  return path.resolve(dataDir, CONTROL_SOCKET_NAME);
}

export type ControlRequest =
  | { command: 'status' }
  | { command: 'sessions'; host?: string }
  | { command: 'kick'; jid: string; reason?: string }
  | { command: 'exists'; jid: string }
  | { command: 'deluser'; jid: string }
  | { command: 'passwd'; jid: string; password: string; keepSessions?: boolean }
  | { command: 'announce'; host: string; message: string }
  | { command: 'reload' };

export type ControlCommand = ControlRequest['command'];

export type Numbered<T> = T & { id: number };

/** `kind` tells the CLI how to word the error: an account problem, a bad request, or a server fault. */
export type ControlErrorKind = 'account' | 'request' | 'internal';

export type ControlResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; kind: ControlErrorKind; error: string };

export interface StatusResult {
  version: string;
  node: string;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  hosts: string[];
  /** Client connections: all open ones, and how many of them have bound a resource. */
  c2s: { connections: number; sessions: number };
  s2s: { incoming: number; outgoing: number };
  /** External components (XEP-0114): configured, and connected now. */
  components: { configured: number; connected: number };
  storage: { driver: string; location: string };
  /** 'memory' (one node) or 'redis' with the client's state. */
  liveState: { backend: string; state?: string };
  /** The nodes sharing Redis (live state in Redis only). */
  cluster?: { node: string; alive: boolean; sessions?: number }[];
}

export interface SessionInfo {
  jid: string;
  ip: string;
  /** When the connection began (ISO 8601). */
  since: string;
  secure: boolean;
  /** Stream management: off, on, or resumable (not known for a session of another node). */
  sm?: 'off' | 'on' | 'resumable';
  /** Client state indication (not known for a session of another node). */
  csi?: 'active' | 'inactive';
  available: boolean;
  /** The node of the cluster that holds it (in a cluster only). */
  node?: string;
}

export interface AnnounceResult {
  /** Sessions the announcement was sent to. */
  sent: number;
}

export interface KickResult {
  closed: string[];
}

export interface AccountResult {
  /** The account, prepared. */
  jid: string;
  /** The sessions the change closed. */
  closed: number;
}

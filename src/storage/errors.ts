// Storage failures, as a stanza's sender is told of them. A database that is down or unreachable
// (PostgreSQL stopped or restarting, the network cut, SQLite's file locked or out of space) is
// a transient condition: the sender gets <resource-constraint/> of type 'wait' (RFC 6120
// §8.3.3.18: retry later). Anything else a write throws is <internal-server-error/>.
import { StanzaError } from '../stream/errors.js';

// Node's socket errors, and PostgreSQL's SQLSTATE classes 08 (connection exception), 53
// (insufficient resources), 57P01..57P03 (admin shutdown, crash shutdown, cannot connect now).
const NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const SQLITE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_READONLY']);
// pg's own messages for a connection that died or never came (no code on these).
const PG_MESSAGES = [
  'Connection terminated',
  'connection error and is not queryable',
  'Client was closed and is not queryable',
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
];

/** Whether `err` says the database cannot be reached or cannot write now (not that the write itself is wrong). */
export function isStorageUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NODE_CODES.has(code) || code.startsWith('08') || code.startsWith('53') || /^57P0[1-3]$/.test(code)) return true;
    if (SQLITE_CODES.has(code) || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_BUSY')) return true;
  }
  if (PG_MESSAGES.some((m) => err.message.includes(m))) return true;
  // AggregateError (a connection to several addresses), or an error wrapping its cause.
  if (err instanceof AggregateError) return err.errors.some(isStorageUnavailable);
  return err.cause !== undefined && err.cause !== err && isStorageUnavailable(err.cause);
}

/**
 * The error for the sender of a stanza that could not be stored (`what`: "the message could not
 * be stored for the offline recipient"): <resource-constraint/> (wait) while storage is
 * unavailable, <internal-server-error/> otherwise; the text says which.
 */
export function storageStanzaError(err: unknown, what: string): StanzaError {
  if (isStorageUnavailable(err)) return new StanzaError('resource-constraint', `${what}: storage is unavailable, try again later`, 'wait');
  return new StanzaError('internal-server-error', `${what}: storage failed`);
}

/** What to log of a storage error: one line of text when storage is merely unavailable (no stack per stanza during an outage), else the error. */
export function loggableStorageError(err: unknown): unknown {
  if (!isStorageUnavailable(err)) return err;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${(err as Error).message}` : (err as Error).message;
}

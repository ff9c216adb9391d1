// Operator mistakes (a port in use, a read-only data directory, an unreachable database or
// Redis, a missing file): one line that names the thing, never a stack trace.
import { accessSync, constants, mkdirSync } from 'node:fs';

export class OperatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorError';
  }
}

/** One line saying why `err` happened (an AggregateError's reasons joined; no stack). */
export function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return [...new Set(err.errors.map(reasonOf))].join('; ');
  const e = err as NodeJS.ErrnoException | undefined;
  const message = (e?.message || e?.code || String(err)).split('\n')[0]!;
  return message;
}

/** Creates the data directory if needed and checks it is writable. */
export function ensureWritableDir(dir: string, what = 'data directory'): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') throw new OperatorError(`${what} ${dir}: read-only (cannot create or write it: ${code})`);
    if (code === 'ENOTDIR' || code === 'EEXIST') throw new OperatorError(`${what} ${dir}: not a directory`);
    throw new OperatorError(`${what} ${dir}: ${reasonOf(err)}`);
  }
}

/** A listener that could not bind: its role, address and port in one line. */
export function listenError(role: string, err: unknown): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = `${e.address ?? '?'}:${e.port ?? '?'}`;
  if (e.code === 'EADDRINUSE') return new OperatorError(`${role} listener ${where}: address already in use (another server on that port?)`);
  if (e.code === 'EACCES') return new OperatorError(`${role} listener ${where}: permission denied (a port below 1024 needs privileges)`);
  return err;
}

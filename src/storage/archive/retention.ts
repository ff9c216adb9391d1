// Retention (XEP-0313 §3.2: the oldest items go, no holes): a purge pass every hour, and a
// first one right after the start (not during it: the start stays fast). Scheduled by the
// archive store kind (../stores.ts) for an archive with a retention period.
import { EventEmitter } from 'node:events';
import type { Logger } from '../../log.js';

const HOUR_MS = 3_600_000;
const FIRST_PASS_DELAY_MS = 1_000;

/** What retention needs of a module context: timers that go with the module, and its log. */
export interface Scheduler {
  readonly log: Logger;
  every(ms: number, fn: () => void): void;
  onUnload(fn: () => void | Promise<void>): void;
}

export interface PurgePass {
  store: string;
  deleted: number;
  error?: unknown;
}

/** 'pass' once each pass is done, so that a test waits on the purge rather than on a clock. */
export const purgePasses = new EventEmitter<{ pass: [PurgePass] }>();

/**
 * Schedules `purge` (which returns how many items it deleted), one pass at a time. Each pass is
 * logged as "expired items purged" with the store and `fields`, or "purging expired items failed".
 */
export function purgeHourly(ctx: Scheduler, store: string, fields: Record<string, unknown>, purge: () => Promise<number>): void {
  let running = false;
  const pass = async () => {
    if (running) return;
    running = true;
    try {
      const deleted = await purge();
      if (deleted > 0) ctx.log.info({ deleted, store, ...fields }, 'expired items purged');
      purgePasses.emit('pass', { store, deleted });
    } catch (err) {
      ctx.log.error({ err, store }, 'purging expired items failed');
      purgePasses.emit('pass', { store, deleted: 0, error: err });
    } finally {
      running = false;
    }
  };
  ctx.every(HOUR_MS, () => void pass());
  const first = setTimeout(() => void pass(), FIRST_PASS_DELAY_MS);
  first.unref();
  ctx.onUnload(() => clearTimeout(first));
}

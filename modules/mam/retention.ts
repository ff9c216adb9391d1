// Retention (XEP-0313 §3.2: the oldest messages go, no holes): a purge pass every hour, and a
// first one right after the start (not during it: the start stays fast). Used by the user
// archives (index.ts) and the room archives (modules/muc-mam).
import { EventEmitter } from 'node:events';
import type { ModuleContext } from '../../src/module-api/define.js';

const HOUR_MS = 3_600_000;
const FIRST_PASS_DELAY_MS = 1_000;

export interface PurgePass {
  what: string;
  deleted: number;
  error?: unknown;
}

/** 'pass' once each pass is done, so that a test waits on the purge rather than on a clock. */
export const purgePasses = new EventEmitter<{ pass: [PurgePass] }>();

/**
 * Schedules `purge` (which returns how many messages it deleted), one pass at a time. Each pass
 * is logged as "expired <what> purged" with `fields`, or "purging expired <what> failed".
 */
export function purgeHourly(ctx: ModuleContext<unknown>, what: string, fields: Record<string, unknown>, purge: () => Promise<number>): void {
  let running = false;
  const pass = async () => {
    if (running) return;
    running = true;
    try {
      const deleted = await purge();
      if (deleted > 0) ctx.log.info({ deleted, ...fields }, `expired ${what} purged`);
      purgePasses.emit('pass', { what, deleted });
    } catch (err) {
      ctx.log.error({ err }, `purging expired ${what} failed`);
      purgePasses.emit('pass', { what, deleted: 0, error: err });
    } finally {
      running = false;
    }
  };
  ctx.every(HOUR_MS, () => void pass());
  const first = setTimeout(() => void pass(), FIRST_PASS_DELAY_MS);
  first.unref();
  ctx.onUnload(() => clearTimeout(first));
}

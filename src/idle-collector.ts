// Gives memory back once the server goes idle after a busy spell.
//
// V8 grows its young generation under load (up to --max-semi-space-size per semi-space) and
// keeps it committed while nothing allocates; the old generation keeps its garbage until the
// next full collection, which an idle process never reaches. Measured (2,000 sessions, run-compare
// configuration): after the logins an idle server held ~30 MB of empty young generation, 15 KiB
// per session of its RSS, and V8's own memory reducer gave nothing back within 30 s. So when the
// event loop has been (nearly) idle for IDLE_MS and the heap grew since the last collection, one
// full collection: a forced GC releases old-space pages, and shrinks the young generation when
// little was allocated over the last 5 s (V8's measure of the allocation rate: hence the wait).
//
// It needs gc(), which the launchers expose (LAUNCH_FLAGS); without it, it does nothing.
import { getHeapStatistics } from 'node:v8';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Logger } from './log.js';

/**
 * The V8 flags `npm start`, the `starling` command, contrib/starling.service and the Docker image
 * start the server with: a 64 MB semi-space (a busy archive keeps each message ~100 ms or more
 * while its group commit runs; with V8's default 16 MB they survive two scavenges and go to the
 * old generation: the default configuration did 6,700-7,000 against 9,400-11,600 msgs/s in the
 * closed-loop bench), and gc() for the idle collector.
 */
export const LAUNCH_FLAGS = ['--max-semi-space-size=64', '--expose-gc'] as const;

/** The launch flags this process lacks (given on the command line or in NODE_OPTIONS). */
export function missingLaunchFlags(execArgv = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map((f) => f.split('=')[0]);
  return LAUNCH_FLAGS.filter((flag) => !given.includes(flag.split('=')[0]));
}

export interface IdleCollectorOptions {
  /** A full, forced collection (globalThis.gc); none: the collector does nothing. */
  gc?: () => void;
  /** The heap V8 holds (committed bytes). */
  heapBytes?: () => number;
  /** The event loop's utilization (0..1) since the previous call. */
  utilization?: () => number;
  checkMs?: number;
  /** How long the loop must have been idle. */
  idleMs?: number;
  log?: Logger;
}

/** Busy below this share of a check's interval counts as idle. */
const IDLE_UTILIZATION = 0.05;
const CHECK_MS = 2000;
const IDLE_MS = 8000;
/** The heap must have grown this much since the last collection for another one. */
const GROWTH_BYTES = 8 * 1024 * 1024;

export class IdleCollector {
  private readonly gc: (() => void) | undefined;
  private readonly heapBytes: () => number;
  private readonly utilization: () => number;
  private readonly log: Logger | undefined;
  private readonly checkMs: number;
  private readonly idleMs: number;
  /** How long the loop has been idle, in whole checks. */
  private idleFor = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The heap after the last collection (or at the start). */
  private baseline: number;
  collections = 0;

  constructor(options: IdleCollectorOptions = {}) {
    this.gc = options.gc ?? (globalThis as { gc?: () => void }).gc;
    this.heapBytes = options.heapBytes ?? (() => getHeapStatistics().total_heap_size);
    this.utilization = options.utilization ?? loopUtilization();
    this.log = options.log;
    this.checkMs = options.checkMs ?? CHECK_MS;
    this.idleMs = options.idleMs ?? IDLE_MS;
    this.baseline = this.heapBytes();
    if (this.gc) this.timer = setInterval(() => this.check(), this.checkMs).unref();
  }

  /** One check: collects when the loop has been idle long enough and the heap has grown. Returns whether it did. */
  check(): boolean {
    this.idleFor = this.utilization() < IDLE_UTILIZATION ? this.idleFor + this.checkMs : 0;
    const heap = this.heapBytes();
    // The heap may have shrunk by itself (a collection under load): measure growth from there.
    if (heap < this.baseline) this.baseline = heap;
    if (!this.gc || this.idleFor < this.idleMs || heap - this.baseline < GROWTH_BYTES) return false;
    const start = performance.now();
    this.gc();
    this.baseline = this.heapBytes();
    this.collections++;
    this.log?.debug({ heapBefore: heap, heapAfter: this.baseline, ms: Math.round(performance.now() - start) }, 'idle: heap collected');
    return true;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The event loop's utilization since the previous call. */
function loopUtilization(): () => number {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}

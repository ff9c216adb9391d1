// Gives memory back once the server goes idle after a busy spell.
//
// V8 grows its young generation under load (up to --max-semi-space-size per semi-space) and
// keeps it committed while nothing allocates; the old generation keeps its garbage until the
// next full collection, which an idle process never reaches. Measured (2,000 sessions, run-compare
// configuration): after the logins an idle server held ~30 MB of empty young generation, 15 KiB
// per session of its RSS, and V8's own memory reducer gave nothing back within 30 s. So when the
// event loop has been (nearly) idle for IDLE_MS: one full collection when the heap grew since the
// last one (it releases old-space pages), and scavenges while the young generation is still large
// (V8 shrinks it in a collection only when it finds the recent allocation rate low).
//
// It needs gc(), which the launchers expose (LAUNCH_FLAGS); without it, it does nothing.
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Logger } from './log.js';

/**
 * The V8 flags `npm start`, the `starling` command, contrib/starling.service and the Docker image
 * start the server with: a 64 MB semi-space (a busy archive keeps each message ~100 ms or more
 * while its group commit runs; with V8's default 16 MB they survive two scavenges and go to the
 * old generation: the default configuration did 6,700-7,000 against 8,200-11,600 msgs/s in the
 * closed-loop bench), and gc() for the idle collector.
 */
export const LAUNCH_FLAGS = ['--max-semi-space-size=64', '--expose-gc'] as const;

/** The launch flags this process lacks (given on the command line or in NODE_OPTIONS). */
export function missingLaunchFlags(execArgv = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map((f) => f.split('=')[0]);
  return LAUNCH_FLAGS.filter((flag) => !given.includes(flag.split('=')[0]));
}

/** A forced collection: 'major' (the whole heap) or 'minor' (the young generation). */
export type Collect = (type: 'major' | 'minor') => void;

export interface IdleCollectorOptions {
  /** Forced collections (globalThis.gc); none: the collector does nothing. */
  gc?: Collect;
  /** The heap V8 holds (committed bytes): all of it, and the young generation. */
  heap?: () => { total: number; young: number };
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
const IDLE_MS = 4000;
/** The heap must have grown this much since the last full collection for another one. */
const GROWTH_BYTES = 8 * 1024 * 1024;
/** A young generation above this is worth shrinking. */
const YOUNG_FLOOR_BYTES = 8 * 1024 * 1024;
/**
 * Scavenges per idle spell to get the young generation shrunk: V8 shrinks it in a collection
 * only when it finds the recent allocation rate low, which it may not yet at the first one.
 */
const YOUNG_TRIES = 5;

export class IdleCollector {
  private readonly gc: Collect | undefined;
  private readonly heap: () => { total: number; young: number };
  private readonly utilization: () => number;
  private readonly log: Logger | undefined;
  private readonly checkMs: number;
  private readonly idleMs: number;
  /** How long the loop has been idle (ms, a check's interval at a time). */
  private idleFor = 0;
  /** Scavenges in this idle spell. */
  private youngTries = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The heap after the last full collection; none yet: the first idle spell collects what the start left. */
  private baseline = 0;

  constructor(options: IdleCollectorOptions = {}) {
    this.gc = options.gc ?? exposedGc();
    this.heap = options.heap ?? heapSizes;
    this.utilization = options.utilization ?? loopUtilization();
    this.log = options.log;
    this.checkMs = options.checkMs ?? CHECK_MS;
    this.idleMs = options.idleMs ?? IDLE_MS;
    if (this.gc) this.timer = setInterval(() => this.check(), this.checkMs).unref();
  }

  /**
   * One check: once the loop has been idle long enough, a full collection when the heap has
   * grown, else a scavenge while the young generation is still large. Returns which it did.
   */
  check(): 'major' | 'minor' | undefined {
    if (this.utilization() < IDLE_UTILIZATION) this.idleFor += this.checkMs;
    else this.idleFor = this.youngTries = 0;
    const before = this.heap();
    // The heap may have shrunk by itself (a collection under load): measure growth from there.
    if (before.total < this.baseline) this.baseline = before.total;
    if (!this.gc || this.idleFor < this.idleMs) return undefined;
    let type: 'major' | 'minor';
    if (before.total - this.baseline >= GROWTH_BYTES) type = 'major';
    else if (before.young > YOUNG_FLOOR_BYTES && this.youngTries < YOUNG_TRIES) type = 'minor';
    else return undefined;
    const start = performance.now();
    this.gc(type);
    const after = this.heap();
    if (type === 'major') this.baseline = after.total;
    else this.youngTries++;
    this.log?.debug({ type, before, after, ms: Math.round(performance.now() - start) }, 'idle: heap collected');
    return type;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function exposedGc(): Collect | undefined {
  const gc = (globalThis as { gc?: (options: { type: 'major' | 'minor' }) => void }).gc;
  return gc && ((type) => gc({ type }));
}

function heapSizes(): { total: number; young: number } {
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
  return { total: getHeapStatistics().total_heap_size, young };
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

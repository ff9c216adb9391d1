// Flood control: how many groupchat messages an occupant may send to a room. A token bucket per
// occupant: `burst` messages at once, refilled at `rate` per second. What goes over is bounced
// with a 'wait' policy-violation (as Prosody's mod_muc_limits does) and never broadcast.
// Moderators are not limited (they are who would deal with a flood).
import { performance } from 'node:perf_hooks';
import { StanzaError } from '../../src/stream/errors.js';

export interface FloodLimit {
  /** Messages per second, on average; 0: no limit. */
  rate: number;
  /** Messages at once before the rate applies. */
  burst: number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly limit: FloodLimit,
    now: number,
  ) {
    this.tokens = limit.burst;
    this.last = now;
  }

  /** Takes one token if there is one; false when the bucket is empty. */
  take(now: number): boolean {
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) / 1000) * this.limit.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** What is limited: the occupant's role, and its bucket (made on its first message). */
interface Limited {
  readonly role: string;
  bucket?: TokenBucket;
}

/** Throws the policy-violation when `occ` is over its limit; every other message takes a token. */
export function checkFlood(occ: Limited, limit: FloodLimit | undefined, now = performance.now()): void {
  if (!limit || limit.rate <= 0 || occ.role === 'moderator') return;
  occ.bucket ??= new TokenBucket(limit, now);
  if (!occ.bucket.take(now)) throw new StanzaError('policy-violation', 'you are sending messages too fast; wait a moment and try again', 'wait');
}

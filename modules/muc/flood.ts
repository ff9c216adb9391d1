// Flood control: how many groupchat messages an occupant may send to a room. A token bucket per
// occupant: `burst` messages at once, refilled at `rate` per second. What goes over is bounced
// with a 'wait' policy-violation (as Prosody's mod_muc_limits does) and never broadcast.
// Moderators are not limited (they are who would deal with a flood).
import { performance } from 'node:perf_hooks';
import { StanzaError } from '../../src/stream/errors.js';
import { TokenBucket, type BucketLimit } from '../../src/token-bucket.js';

/** Messages per second, on average (0: no limit), and messages at once before the rate applies. */
export type FloodLimit = BucketLimit;

export { TokenBucket };

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

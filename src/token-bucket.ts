// A token bucket: `burst` at once, refilled at `rate` per second. Flood control in MUC rooms
// and the anti_spam module's limits (rate limits, new accounts, reports) count with it; `now` is
// in milliseconds, from one clock per bucket (performance.now() or Date.now()).

export interface BucketLimit {
  /** Tokens per second, on average. */
  rate: number;
  /** Tokens at once before the rate applies. */
  burst: number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly limit: BucketLimit,
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

  /** Whether it has refilled to its burst by `now` (an idle bucket, which can be forgotten). */
  full(now: number): boolean {
    return this.tokens + ((now - this.last) / 1000) * this.limit.rate >= this.limit.burst;
  }
}

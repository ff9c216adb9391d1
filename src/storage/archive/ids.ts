// Archive ids (XEP-0313 UIDs, XEP-0359 stanza-id values): 26 characters of Crockford base32,
// ULID-like. The first 10 characters are the archive time in milliseconds since the epoch (48
// bits), the other 16 are 80 random bits. Within one millisecond a process increments the random
// part by a random step, so ids it issues sort in the order it issued them (ordering stays
// unpredictable to anyone else: XEP-0313 §3 wants UIDs unpredictable, XEP-0359 §5 wants them to
// reveal nothing, e.g. not the size of the archive).
//
// The time prefix is load-bearing: a row's `ts` is always the time of its id, so an id alone
// finds its row through the (host, username, ts, id) primary key (see store.ts).
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));
/** What an archive id looks like; anything else is not in any archive. */
export const ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const TIME_CHARS = 10;
const MAX_TIME = 2 ** 48 - 1;
// The 80 random bits are two halves of 40 bits, each exact in a double: no BigInt (allocating
// one per operation cost ~1.8 KB of garbage per id, 5% of all the allocations of an archived
// message).
const HALF = 2 ** 40;
const HALF_CHARS = 8;

/** `value` (< 32^chars) as `chars` base32 characters, most significant first. */
function encode(value: number, chars: number): string {
  let out = '';
  for (let shift = 5 * (chars - 1); shift >= 0; shift -= 5) out += ALPHABET[Math.floor(value / 2 ** shift) % 32];
  return out;
}

/** The archive time (ms since the epoch) of an id, or undefined when it is not an archive id. */
export function idTime(id: string): number | undefined {
  if (!ID_PATTERN.test(id)) return undefined;
  let ms = 0;
  for (let i = 0; i < TIME_CHARS; i++) ms = ms * 32 + VALUE.get(id[i]!)!;
  return ms <= MAX_TIME ? ms : undefined;
}

/** Random bytes drawn from the system in blocks: one randomBytes() call per id cost ~20 µs. */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolAt = 0;

/** A random integer of `bytes` bytes (at most 6: exact in a double). */
function randomInt(bytes: number): number {
  if (poolAt + bytes > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  const value = pool.readUIntBE(poolAt, bytes);
  poolAt += bytes;
  return value;
}

export class IdGenerator {
  private lastTime = -1;
  /** The random part of the last id: high and low 40 bits. */
  private high = 0;
  private low = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A new id, greater than every id this generator issued before. */
  next(): string {
    let time = Math.max(0, Math.floor(this.now()));
    if (time <= this.lastTime) {
      // Same millisecond (or the clock went back): keep the time, step the random part by a
      // random 1 .. 2^32.
      time = this.lastTime;
      this.low += 1 + randomInt(4);
      if (this.low >= HALF) {
        this.low -= HALF;
        this.high++;
      }
      // Exhausted (2^47 ids in one ms, in practice never): borrow the next millisecond.
      if (this.high >= HALF) this.fresh(++time);
    } else {
      this.fresh(time);
    }
    this.lastTime = time;
    return encode(Math.min(time, MAX_TIME), TIME_CHARS) + encode(this.high, HALF_CHARS) + encode(this.low, HALF_CHARS);
  }

  /** A fresh millisecond: the random part starts in the lower half, so there is room to step within it. */
  private fresh(time: number): void {
    this.lastTime = time;
    this.high = Math.floor(randomInt(5) / 2);
    this.low = randomInt(5);
  }
}

/** An id for an item archived at `ms` (an item appended later with its original time); unique by its 80 random bits. */
export function idAt(ms: number): string {
  return new IdGenerator(() => ms).next();
}

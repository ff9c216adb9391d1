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
const RANDOM_CHARS = 16;
const RANDOM_BITS = 80n;
const MAX_TIME = 2 ** 48 - 1;

function encode(value: bigint, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = ALPHABET[Number(value & 31n)]! + out;
    value >>= 5n;
  }
  return out;
}

function encodeTime(ms: number): string {
  let out = '';
  for (let i = 0; i < TIME_CHARS; i++) {
    out = ALPHABET[ms % 32]! + out;
    ms = Math.floor(ms / 32);
  }
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

function randomBits(bytes: number): bigint {
  if (poolAt + bytes > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  let value = 0n;
  // Five bytes at a time fit a double exactly (40 bits).
  for (let i = 0; i < bytes; i += 5) {
    const n = Math.min(5, bytes - i);
    value = (value << BigInt(n * 8)) | BigInt(pool.readUIntBE(poolAt + i, n));
  }
  poolAt += bytes;
  return value;
}

export class IdGenerator {
  private lastTime = -1;
  private lastRandom = 0n;

  constructor(private readonly now: () => number = Date.now) {}

  /** A new id, greater than every id this generator issued before. */
  next(): string {
    let time = Math.max(0, Math.floor(this.now()));
    if (time <= this.lastTime) {
      // Same millisecond (or the clock went back): keep the time, step the random part.
      time = this.lastTime;
      let random = this.lastRandom + 1n + randomBits(4);
      if (random >> RANDOM_BITS !== 0n) {
        // Exhausted (2^47 ids in one ms, in practice never): borrow the next millisecond.
        time++;
        random = randomBits(10) >> 1n;
      }
      this.lastRandom = random;
    } else {
      // A fresh millisecond: start in the lower half so there is room to step within it.
      this.lastRandom = randomBits(10) >> 1n;
    }
    this.lastTime = time;
    return encodeTime(Math.min(time, MAX_TIME)) + encode(this.lastRandom, RANDOM_CHARS);
  }
}

/** An id for an item archived at `ms` (an item appended later with its original time); unique by its 80 random bits. */
export function idAt(ms: number): string {
  return new IdGenerator(() => ms).next();
}

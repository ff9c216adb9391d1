// Upload slots without server-side state: the PUT URL carries a token that says who asked, for
// which size and content type, until when, signed with an HMAC over the service domain, the slot
// id and the file name. Only that one slot's PUT verifies; nothing to store until the file is in.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Slot {
  /** The slot id: 128 random bits, the unguessable part of the GET URL. */
  id: string;
  /** The requester's bare JID. */
  owner: string;
  size: number;
  /** The content type asked for; '' when none was given. */
  type: string;
  /** Seconds since the epoch after which the PUT is refused. */
  expires: number;
}

export const SLOT_ID = /^[A-Za-z0-9_-]{22}$/;

export function newSlotId(): string {
  return randomBytes(16).toString('base64url');
}

export class SlotSigner {
  constructor(
    private readonly secret: string,
    private readonly domain: string,
  ) {}

  sign(slot: Slot, filename: string): string {
    const payload = Buffer.from(JSON.stringify({ o: slot.owner, n: slot.size, t: slot.type, e: slot.expires })).toString('base64url');
    return `${payload}.${this.mac(slot.id, filename, payload)}`;
  }

  /** The slot of a token for `id` and `filename`, or why not. */
  verify(token: string, id: string, filename: string, now = Date.now()): Slot | 'invalid' | 'expired' {
    const dot = token.indexOf('.');
    if (dot <= 0) return 'invalid';
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1));
    const expected = Buffer.from(this.mac(id, filename, payload));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    let fields: { o: string; n: number; t: string; e: number };
    try {
      fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof fields;
    } catch {
      return 'invalid';
    }
    if (fields.e * 1000 < now) return 'expired';
    return { id, owner: fields.o, size: fields.n, type: fields.t, expires: fields.e };
  }

  private mac(id: string, filename: string, payload: string): string {
    return createHmac('sha256', this.secret).update(`${this.domain}\0${id}\0${filename}\0${payload}`).digest('base64url');
  }
}

/**
 * A file name safe to put in a URL and a Content-Disposition header: the last path segment,
 * without control characters, quotes or separators, at most 200 characters; '' when nothing is
 * left (the request is refused). The name is never used on disk.
 */
export function sanitiseFilename(name: string): string {
  const last = name.split(/[/\\]/).pop() ?? '';
  const clean = last.replace(/[\u0000-\u001f\u007f"<>|:*?]/g, '_').trim();
  if (clean === '' || clean === '.' || clean === '..') return '';
  return [...clean].slice(0, 200).join('');
}

/** The configured secret, else one kept in `<dir>/secret` (created once, 0600). */
export function loadSecret(configured: string, dir: string): string {
  if (configured) return configured;
  const file = path.join(dir, 'secret');
  if (existsSync(file)) {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored) return stored;
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

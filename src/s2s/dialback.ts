// Server Dialback keys (XEP-0185) and the dialback elements (XEP-0220).
//
//   key = HEX( HMAC-SHA256( HEX(SHA256(secret)), receiving + ' ' + originating + ' ' + stream id ) )
//
// The secret never leaves this server: an authoritative server recomputes the key from the
// 'from', 'to' and 'id' of a <db:verify/> and compares. It is generated once and kept under
// the data directory (so keys handed out before a restart still verify after it), unless the
// configuration gives one; the nodes of a cluster without one share the first node's through
// Redis (sharedDialbackSecret).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { xml, type Element } from '@xmpp/xml';
import { NS } from '../xml/namespaces.js';
import type { StanzaErrorCondition } from '../stream/errors.js';

export class DialbackKeys {
  private readonly hmacKey: string;

  constructor(secret: string) {
    this.hmacKey = createHash('sha256').update(secret).digest('hex');
  }

  /** The key the originating server hands the receiving one for a stream (id of the receiver's header). */
  generate(receiving: string, originating: string, streamId: string): string {
    return createHmac('sha256', this.hmacKey).update(`${receiving} ${originating} ${streamId}`).digest('hex');
  }

  /** Whether `key` is the one we would have generated, compared in constant time. */
  verify(receiving: string, originating: string, streamId: string, key: string): boolean {
    const expected = Buffer.from(this.generate(receiving, originating, streamId));
    const given = Buffer.from(key.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

/** The configured secret, else the one kept in `<dataDir>/s2s/dialback-secret` (created once, 0600). */
export function loadDialbackSecret(configured: string, dataDir: string): string {
  if (configured) return configured;
  const file = path.join(dataDir, 's2s', 'dialback-secret');
  if (existsSync(file)) {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored) return stored;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/**
 * A cluster signs with one secret, as a remote server may verify a key from one node against
 * another: the first node to start stores `own` (its configured or data-directory secret) in
 * Redis under `key`, and every node uses what is there.
 */
export async function sharedDialbackSecret(redis: Redis, key: string, own: string): Promise<string> {
  await redis.set(key, own, 'NX');
  return (await redis.get(key)) ?? own;
}

export type DialbackType = 'valid' | 'invalid' | 'error';

/** `<db:result/>` or `<db:verify/>`; the stream header declares the `db` prefix. */
export function dialbackElement(
  name: 'result' | 'verify',
  attrs: { from: string; to: string; id?: string; type?: DialbackType },
  key?: string,
  error?: StanzaErrorCondition,
): Element {
  const el = xml(`db:${name}`, definedOnly(attrs));
  if (key !== undefined) el.append(key);
  if (error) el.append(xml('error', { type: errorType(error) }, xml(error, { xmlns: NS.STANZAS_ERROR })));
  return el;
}

/** The stanza error condition inside a dialback error. */
export function dialbackErrorCondition(el: Element): string | undefined {
  const error = el.getChild('error');
  const condition = error?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === NS.STANZAS_ERROR);
  return condition?.name;
}

function errorType(condition: StanzaErrorCondition): string {
  return condition === 'remote-server-timeout' ? 'wait' : condition === 'not-authorized' || condition === 'forbidden' ? 'auth' : 'cancel';
}

function definedOnly(attrs: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) out[k] = v;
  return out;
}

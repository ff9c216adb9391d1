/**
 * XMPP addresses (JIDs), RFC 7622.
 *
 *   jid = [ localpart "@" ] domainpart [ "/" resourcepart ]
 *
 * - localpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3) plus the extra
 *   restrictions of RFC 7622 §3.3.1 (no " & ' / : < > @);
 * - domainpart: IDN / IP literal preparation (RFC 7622 §3.2);
 * - resourcepart: PRECIS OpaqueString (RFC 8265 §4.2).
 *
 * Every part that is present must be 1..1023 octets (UTF-8) after
 * preparation.
 */

import { PrecisError, prepareDomain, prepareOpaqueString, prepareUsernameCaseMapped } from './precis.js';

export type JidPart = 'localpart' | 'domainpart' | 'resourcepart';

/** Thrown when a string is not a valid JID (maps to <jid-malformed/>). */
export class JidError extends Error {
  override readonly name = 'JidError';
  /** Which part is wrong. */
  readonly part: JidPart;
  /** Human-readable reason, starting with the part name. */
  readonly reason: string;

  constructor(part: JidPart, reason: string, cause?: unknown) {
    super(`invalid JID: ${reason}`, cause === undefined ? undefined : { cause });
    this.part = part;
    this.reason = reason;
  }
}

const MAX_PART_OCTETS = 1023;
/**
 * Upper bound on the raw (UTF-16) length of a part before preparation, so
 * absurd inputs are rejected without running the Unicode machinery on them.
 * Preparation never shrinks a string anywhere near this ratio.
 */
const MAX_RAW_PART_LENGTH = MAX_PART_OCTETS * 4;

/** Characters RFC 7622 §3.3.1 forbids in localparts. */
const LOCAL_FORBIDDEN = /["&'/:<>@]/;
/** Common case: the localpart needs no work at all. */
const LOCAL_FAST = /^[a-z0-9._-]+$/;
/** Common case: resourcepart of printable ASCII / spaces needs no work. */
const RESOURCE_FAST = /^[\x20-\x7e]+$/;
/** Non-ASCII detector, for octet counting. */
const NON_ASCII = /[^\x00-\x7f]/;

function octets(s: string): number {
  return NON_ASCII.test(s) ? Buffer.byteLength(s, 'utf8') : s.length;
}

function describe(e: unknown): string {
  return e instanceof PrecisError ? e.message : String(e);
}

function prepareLocal(raw: string): string {
  if (raw.length === 0) throw new JidError('localpart', 'localpart is empty');
  if (LOCAL_FAST.test(raw)) {
    if (raw.length > MAX_PART_OCTETS) {
      throw new JidError('localpart', 'localpart exceeds 1023 octets');
    }
    return raw;
  }
  if (raw.length > MAX_RAW_PART_LENGTH) {
    throw new JidError('localpart', 'localpart exceeds 1023 octets');
  }
  let out: string;
  try {
    out = prepareUsernameCaseMapped(raw);
  } catch (e) {
    throw new JidError('localpart', `localpart: ${describe(e)}`, e);
  }
  const bad = LOCAL_FORBIDDEN.exec(out);
  if (bad !== null) {
    throw new JidError('localpart', `localpart contains forbidden character '${bad[0]}'`);
  }
  if (octets(out) > MAX_PART_OCTETS) {
    throw new JidError('localpart', 'localpart exceeds 1023 octets');
  }
  return out;
}

function prepareDomainPart(raw: string): string {
  if (raw.length === 0) throw new JidError('domainpart', 'domainpart is empty');
  if (raw.length > MAX_RAW_PART_LENGTH) {
    throw new JidError('domainpart', 'domainpart exceeds 1023 octets');
  }
  let out: string;
  try {
    out = prepareDomain(raw);
  } catch (e) {
    throw new JidError('domainpart', `domainpart: ${describe(e)}`, e);
  }
  if (octets(out) > MAX_PART_OCTETS) {
    throw new JidError('domainpart', 'domainpart exceeds 1023 octets');
  }
  return out;
}

function prepareResource(raw: string): string {
  if (raw.length === 0) throw new JidError('resourcepart', 'resourcepart is empty');
  if (RESOURCE_FAST.test(raw)) {
    if (raw.length > MAX_PART_OCTETS) {
      throw new JidError('resourcepart', 'resourcepart exceeds 1023 octets');
    }
    return raw;
  }
  if (raw.length > MAX_RAW_PART_LENGTH) {
    throw new JidError('resourcepart', 'resourcepart exceeds 1023 octets');
  }
  let out: string;
  try {
    out = prepareOpaqueString(raw);
  } catch (e) {
    throw new JidError('resourcepart', `resourcepart: ${describe(e)}`, e);
  }
  if (octets(out) > MAX_PART_OCTETS) {
    throw new JidError('resourcepart', 'resourcepart exceeds 1023 octets');
  }
  return out;
}

/** An immutable, prepared (canonical) JID. */
export class Jid {
  /** Prepared localpart, '' when absent. */
  readonly local: string;
  /** Prepared domainpart. */
  readonly domain: string;
  /** Prepared resourcepart, '' when absent. */
  readonly resource: string;
  #full: string | undefined;
  #bare: Jid | undefined;

  /** Parts must already be prepared; use parseJid / makeJid. */
  private constructor(local: string, domain: string, resource: string, full?: string) {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    this.#full = full;
    this.#bare = undefined;
  }

  /** Parse and prepare a JID string (RFC 7622 §3.1). Throws JidError. */
  static parse(s: string): Jid {
    if (typeof s !== 'string') throw new JidError('domainpart', 'JID is not a string');
    const slash = s.indexOf('/');
    const head = slash === -1 ? s : s.slice(0, slash);
    const at = head.indexOf('@');
    const rawLocal = at === -1 ? '' : head.slice(0, at);
    const rawDomain = at === -1 ? head : head.slice(at + 1);
    const rawResource = slash === -1 ? '' : s.slice(slash + 1);

    const local = at === -1 ? '' : prepareLocal(rawLocal);
    const domain = prepareDomainPart(rawDomain);
    const resource = slash === -1 ? '' : prepareResource(rawResource);

    // When nothing changed during preparation the input is already canonical.
    const unchanged = local === rawLocal && domain === rawDomain && resource === rawResource;
    return new Jid(local, domain, resource, unchanged ? s : undefined);
  }

  /**
   * Build a JID from separate parts, preparing each. An empty local or
   * resource means "absent". Throws JidError.
   */
  static of(local: string, domain: string, resource = ''): Jid {
    return new Jid(local === '' ? '' : prepareLocal(local), prepareDomainPart(domain), resource === '' ? '' : prepareResource(resource));
  }

  /** The bare JID (no resource); this object itself when already bare. */
  get bare(): Jid {
    if (this.resource === '') return this;
    return (this.#bare ??= new Jid(this.local, this.domain, ''));
  }

  get isBare(): boolean {
    return this.resource === '';
  }

  /** Same local and domain with the given resource (prepared; must be non-empty). */
  withResource(resource: string): Jid {
    const r = prepareResource(resource);
    if (r === this.resource) return this;
    return new Jid(this.local, this.domain, r);
  }

  equals(other: Jid): boolean {
    return this === other || (this.domain === other.domain && this.local === other.local && this.resource === other.resource);
  }

  toString(): string {
    if (this.#full === undefined) {
      let s = this.local === '' ? this.domain : `${this.local}@${this.domain}`;
      if (this.resource !== '') s += `/${this.resource}`;
      this.#full = s;
    }
    return this.#full;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Parse and prepare a JID string. Throws JidError. */
export function parseJid(s: string): Jid {
  return Jid.parse(s);
}

/** Like parseJid, but returns null instead of throwing. */
export function tryParseJid(s: string): Jid | null {
  try {
    return Jid.parse(s);
  } catch (e) {
    if (e instanceof JidError) return null;
    throw e;
  }
}

/** Build a JID from parts (local/resource '' = absent). Throws JidError. */
export function makeJid(local: string, domain: string, resource?: string): Jid {
  return Jid.of(local, domain, resource ?? '');
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * Whether the address `text` names the bare JID `bare`, without parsing it where text can
 * decide: an ASCII address prepares to its lowercase form without a trailing dot, so only a
 * non-ASCII one needs the PRECIS preparation of parseJid. For hot paths that compare one
 * address against many stanzas (the 'by' of every stanza-id of a room's fan-out).
 */
export function namesBareJid(text: string, bare: Jid): boolean {
  const canonical = bare.toString();
  if (text === canonical) return true;
  if (ASCII.test(text) && ASCII.test(canonical)) return !text.includes('/') && text.toLowerCase().replace(/\.$/, '') === canonical;
  return tryParseJid(text)?.equals(bare) ?? false;
}

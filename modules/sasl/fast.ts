// FAST (XEP-0484, urn:xmpp:fast:0): a client that authenticated (with a password, say) asks
// for a token with <request-token/> and gets it in <success/>; later it authenticates in one
// round trip with the token and a Hashed Token mechanism (draft-schmaus-kitten-sasl-ht), over
// SASL2 only. Tokens are bound to the account, the client (SASL2 <user-agent id/>) and the
// mechanism, expire, rotate, and can be invalidated by the client.
//
// HT-SHA-256-NONE (HT without channel binding):
//   initiator-msg          = authcid NUL initiator-hashed-token
//   initiator-hashed-token = HMAC-SHA-256(key = token, "Initiator" || cb-data)
//   responder-msg          = HMAC-SHA-256(key = token, "Responder" || cb-data)   (the success data)
// with cb-data empty for -NONE.
//
// Storage: a token is 64 random octets in base64url, so 86 octets long. HMAC (RFC 2104 §2)
// replaces a key longer than the hash's 64-octet block by the key's hash, so HMAC(token, m) ==
// HMAC(SHA-256(token), m): the server keeps SHA-256(token) only, and can still verify.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { xml } from '@xmpp/xml';
import { JidError, makeJid, parseJid, type Jid } from '../../src/jid.js';
import type { ModuleContext } from '../../src/module-api/define.js';
import type { ClientStream } from '../../src/sessions/session.js';
import { NS } from '../../src/xml/namespaces.js';
import type { ClientTokens, FastTokenStore, StoredToken } from './fast-store.js';
import { SaslFailure, type SaslStep, type ServerMechanism } from './mechanism.js';
import type { Sasl2Extensions, UserAgent } from './sasl2.js';

/** The FAST mechanisms offered, strongest first. */
export const FAST_MECHANISMS = ['HT-SHA-256-NONE'] as const;
export type FastMechanism = (typeof FAST_MECHANISMS)[number];

export function isFastMechanism(name: string | undefined): name is FastMechanism {
  return (FAST_MECHANISMS as readonly string[]).includes(name ?? '');
}

const TOKEN_OCTETS = 64;
const HMAC_BLOCK_OCTETS = 64;
const HASH_OCTETS = 32;

export type VerifyResult =
  { ok: true; slot: 'current' | 'new'; key: Buffer; expiresAt: number } | { ok: false; condition: 'not-authorized' | 'credentials-expired'; reason?: string };

/** Token issue, verification and invalidation, on top of the store. */
export class FastTokens {
  constructor(
    private readonly store: FastTokenStore,
    /** Token lifetime, ms. */
    readonly ttl: number,
    readonly now: () => number = Date.now,
  ) {}

  /** A new token for the client, in the 'new' slot (replacing one not used yet); the 'current' one stays valid. */
  async issue(user: Jid, client: UserAgent & { id: string }, mechanism: FastMechanism): Promise<{ token: string; expiresAt: number }> {
    const token = randomBytes(TOKEN_OCTETS).toString('base64url');
    if (Buffer.byteLength(token) <= HMAC_BLOCK_OCTETS) throw new Error('FAST tokens must be longer than the HMAC block');
    const issuedAt = this.now();
    const stored: StoredToken = { hash: tokenKey(token).toString('base64'), mechanism, issuedAt, expiresAt: issuedAt + this.ttl };
    await this.store.update(user.domain, user.local, client.id, (tokens) => ({
      current: tokens?.current,
      new: stored,
      software: client.software ?? tokens?.software,
      device: client.device ?? tokens?.device,
    }));
    return { token, expiresAt: stored.expiresAt };
  }

  /**
   * Checks an initiator-hashed-token against the client's tokens (XEP-0484 §5.1: the 'new'
   * slot, then 'current'; a used 'new' token becomes 'current' and the older one is gone).
   * `count` (<fast count/>) must grow from one use of a token to the next.
   */
  async verify(user: Jid, clientId: string, mechanism: string, proof: Buffer, count: number | undefined): Promise<VerifyResult> {
    let result: VerifyResult = { ok: false, condition: 'not-authorized' };
    await this.store.update(user.domain, user.local, clientId, (tokens) => {
      // Both slots are always computed and compared, so timing tells nothing of which matched.
      const matches = (['new', 'current'] as const).map((slot) => {
        const stored = tokens?.[slot];
        const key = stored ? Buffer.from(stored.hash, 'base64') : randomBytes(HASH_OCTETS);
        const expected = hmac(key, 'Initiator');
        return proof.length === expected.length && timingSafeEqual(proof, expected) && stored !== undefined ? slot : undefined;
      });
      const slot = matches.find((m) => m !== undefined);
      if (!slot || !tokens) return tokens;
      const stored = tokens[slot]!;
      if (stored.expiresAt <= this.now()) {
        result = { ok: false, condition: 'credentials-expired', reason: 'the token has expired' };
        return tokens;
      }
      if (stored.mechanism !== mechanism) {
        result = { ok: false, condition: 'not-authorized', reason: `the token was issued for ${stored.mechanism}` };
        return tokens;
      }
      if (count !== undefined && stored.count !== undefined && count <= stored.count) {
        result = { ok: false, condition: 'not-authorized', reason: 'the count was used already with this token' };
        return tokens;
      }
      result = { ok: true, slot, key: Buffer.from(stored.hash, 'base64'), expiresAt: stored.expiresAt };
      const used: StoredToken = { ...stored, count: count ?? stored.count };
      return slot === 'new' ? { current: used, software: tokens.software, device: tokens.device } : { ...tokens, current: used };
    });
    return result;
  }

  /** Forgets the client's tokens (XEP-0484 §5.4 invalidation, or a logout). */
  async invalidate(user: Jid, clientId: string): Promise<void> {
    await this.store.delete(user.domain, user.local, clientId);
  }

  /** The client's live tokens, for inspection. */
  get(user: Jid, clientId: string): Promise<ClientTokens | undefined> {
    return this.store.get(user.domain, user.local, clientId);
  }
}

/** The effective HMAC key of a token (see the top of this file). */
function tokenKey(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function hmac(key: Buffer, message: string): Buffer {
  return createHmac('sha256', key).update(message).digest();
}

/** XEP-0082 DateTime, to the second. */
function dateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** request.state key: how a FAST authentication went, for the success step. */
const STATE = 'fast';

interface FastUse {
  invalidate: boolean;
  verified?: Extract<VerifyResult, { ok: true }>;
}

/** The server side of HT-SHA-256-NONE, for one <authenticate/>. */
class HashedTokenMechanism implements ServerMechanism {
  private finished = false;

  constructor(
    private readonly name: FastMechanism,
    private readonly tokens: FastTokens,
    private readonly stream: ClientStream,
    private readonly clientId: string,
    private readonly count: number | undefined,
    private readonly use: FastUse,
  ) {}

  async start(initial: Buffer | null): Promise<SaslStep> {
    // HT is client-first; a client that sent no initial response gets an empty challenge.
    if (!initial) return { kind: 'challenge', data: Buffer.alloc(0) };
    return this.check(initial);
  }

  next(response: Buffer): Promise<SaslStep> {
    return this.check(response);
  }

  private async check(message: Buffer): Promise<SaslStep> {
    if (this.finished) throw new SaslFailure('malformed-request', 'HT has a single round trip');
    this.finished = true;
    const nul = message.indexOf(0);
    if (nul <= 0) throw new SaslFailure('malformed-request', 'expected authcid NUL initiator-hashed-token');
    const authcid = message.subarray(0, nul).toString('utf8');
    const proof = message.subarray(nul + 1);
    const user = this.userJid(authcid);
    if (!user) return { kind: 'failure', condition: 'not-authorized', user: authcid };
    const result = await this.tokens.verify(user, this.clientId, this.name, proof, this.count);
    if (!result.ok) return { kind: 'failure', condition: result.condition, text: result.reason, user: user.local };
    this.use.verified = result;
    return { kind: 'success', user, additionalData: hmac(result.key, 'Responder') };
  }

  /** The authcid is the username (as with PLAIN and SCRAM); the bare JID is accepted too. */
  private userJid(authcid: string): Jid | undefined {
    try {
      if (!authcid.includes('@')) return makeJid(authcid, this.stream.host);
      const jid = parseJid(authcid);
      return jid.domain === this.stream.host && jid.local && !jid.resource ? jid : undefined;
    } catch (err) {
      if (err instanceof JidError) return undefined;
      throw err;
    }
  }
}

export function registerFast(ctx: ModuleContext<unknown>, extensions: Sasl2Extensions, tokens: FastTokens): void {
  const log = ctx.log;
  const remove = extensions.add({
    name: 'fast',
    // Before Bind 2: the token's database work is done before the session becomes routable.
    order: 50,
    inline: (stream) => (stream.secure ? xml('fast', { xmlns: NS.FAST }, ...FAST_MECHANISMS.map((m) => xml('mechanism', {}, m))) : undefined),

    mechanism: (stream, request) => {
      if (!isFastMechanism(request.mechanism)) return undefined;
      const fast = request.element.getChild('fast', NS.FAST);
      if (!fast) throw new SaslFailure('invalid-mechanism', `${request.mechanism} is for FAST: include <fast xmlns='${NS.FAST}'/>`);
      const clientId = request.userAgent?.id;
      if (!clientId) throw new SaslFailure('malformed-request', 'FAST needs the <user-agent id=...> the token was issued to');
      let count: number | undefined;
      if (fast.attrs.count !== undefined) {
        if (!/^\d{1,15}$/.test(fast.attrs.count)) throw new SaslFailure('malformed-request', 'count must be a non-negative integer');
        count = Number(fast.attrs.count);
      }
      const use: FastUse = { invalidate: fast.attrs.invalidate === 'true' || fast.attrs.invalidate === '1' };
      request.state.set(STATE, use);
      return new HashedTokenMechanism(request.mechanism, tokens, stream, clientId, count, use);
    },

    succeeded: async (stream, request) => {
      const user = stream.user!;
      const use = request.state.get(STATE) as FastUse | undefined;
      const client = request.userAgent;
      if (use?.verified && use.invalidate) {
        await tokens.invalidate(user, client!.id!);
        log.info({ client: client?.software }, 'FAST token invalidated by the client');
      }
      let mechanism: FastMechanism | undefined;
      const ask = request.element.getChild('request-token', NS.FAST);
      if (ask) {
        if (!isFastMechanism(ask.attrs.mechanism)) {
          log.debug({ mechanism: ask.attrs.mechanism }, 'FAST token requested for a mechanism not offered; none issued');
        } else if (!client?.id) {
          log.debug('FAST token requested without a <user-agent id/>; none issued');
        } else {
          mechanism = ask.attrs.mechanism;
        }
      } else if (use?.verified && !use.invalidate && use.verified.expiresAt - tokens.now() < tokens.ttl / 2) {
        // XEP-0484 §5.3: the server rotates a token that is getting old.
        mechanism = request.mechanism as FastMechanism;
      }
      if (!mechanism || !client?.id) return undefined;
      const { token, expiresAt } = await tokens.issue(user, { ...client, id: client.id }, mechanism);
      return xml('token', { xmlns: NS.FAST, expiry: dateTime(expiresAt), token });
    },
  });
  ctx.onUnload(remove);
}

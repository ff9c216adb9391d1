// SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS variants, server side (RFC 5802, RFC 7677).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { makeJid, JidError } from '../../src/jid.js';
import type { AuthBackend } from '../../src/auth/backend.js';
import { SCRAM_HASHES, digest, hmac, type ScramHash } from '../../src/auth/scram.js';
import type { ClientStream } from '../../src/sessions/session.js';
import { channelBindingData, supportedChannelBindings, type ChannelBindingType } from './channel-binding.js';
import { SaslFailure, type MechanismFactory, type SaslStep, type ServerMechanism } from './mechanism.js';

export function scramFactory(base: 'SCRAM-SHA-1' | 'SCRAM-SHA-256', plus: boolean, backend: AuthBackend, plusOffered: (s: ClientStream) => boolean): MechanismFactory {
  const name = plus ? `${base}-PLUS` : base;
  return {
    name,
    available: (stream) => (plus ? supportedChannelBindings(stream.tlsSocket).length > 0 : true),
    create: (stream) => new ScramMechanism(base, plus, backend, stream, plusOffered(stream)),
  };
}

class ScramMechanism implements ServerMechanism {
  private readonly hash: ScramHash;
  private expected?: { nonce: string; gs2Header: string; cbData: Buffer; authBase: string; username: string; storedKey: Buffer; serverKey: Buffer; known: boolean };

  constructor(
    private readonly base: string,
    private readonly plus: boolean,
    private readonly backend: AuthBackend,
    private readonly stream: ClientStream,
    /** Whether we offered -PLUS to this client: then a 'y' flag means a downgrade attack. */
    private readonly plusOffered: boolean,
  ) {
    this.hash = SCRAM_HASHES[base]!;
  }

  async start(initial: Buffer | null): Promise<SaslStep> {
    if (!initial || initial.length === 0) return { kind: 'challenge', data: Buffer.alloc(0) };
    return this.clientFirst(initial.toString('utf8'));
  }

  async next(response: Buffer): Promise<SaslStep> {
    if (!this.expected) return this.clientFirst(response.toString('utf8'));
    return this.clientFinal(response.toString('utf8'));
  }

  private async clientFirst(message: string): Promise<SaslStep> {
    // gs2-header: cbind-flag "," [authzid] ","
    const m = /^(n|y|p=([A-Za-z0-9.-]+)),(a=[^,]*)?,(.*)$/s.exec(message);
    if (!m) throw new SaslFailure('malformed-request', 'bad GS2 header');
    const [, flag, cbName, authzid, bare] = m as unknown as [string, string, string | undefined, string | undefined, string];
    let cbType: ChannelBindingType | undefined;
    if (this.plus) {
      if (!cbName) throw new SaslFailure('malformed-request', `${this.base}-PLUS needs channel binding`);
      if (!supportedChannelBindings(this.stream.tlsSocket).includes(cbName as ChannelBindingType)) {
        throw new SaslFailure('malformed-request', `channel binding type ${cbName} is not supported on this connection`);
      }
      cbType = cbName as ChannelBindingType;
    } else {
      if (cbName) throw new SaslFailure('malformed-request', `channel binding requested with ${this.base}; use ${this.base}-PLUS`);
      if (flag === 'y' && this.plusOffered) throw new SaslFailure('not-authorized', 'channel binding downgrade detected');
    }
    const attrs = parseAttributes(bare);
    if (bare.startsWith('m=')) throw new SaslFailure('malformed-request', 'mandatory extensions are not supported');
    const rawUser = attrs.get('n');
    const clientNonce = attrs.get('r');
    if (rawUser === undefined || !clientNonce) throw new SaslFailure('malformed-request', 'missing username or nonce');
    const user = decodeSaslName(rawUser);
    const jid = this.userJid(user);
    if (authzid && authzid !== `a=${jid.toString()}` && authzid !== `a=${rawUser}`) {
      throw new SaslFailure('invalid-authzid', 'authorization identity must be your own account');
    }

    const credential = await this.backend.scramCredential(jid.domain, jid.local, this.base);
    // An unknown user gets a made-up salt and fails at the end, so accounts cannot be probed.
    const salt = credential ? credential.salt : fakeSalt(jid.toString());
    const iterations = credential ? credential.iterations : 4096;
    const nonce = clientNonce + randomBytes(18).toString('base64');
    const serverFirst = `r=${nonce},s=${salt},i=${iterations}`;
    const gs2Header = message.slice(0, message.length - bare.length);
    const cbData = cbType ? channelBindingData(this.stream.tlsSocket!, cbType) : Buffer.alloc(0);
    if (cbType && !cbData) throw new SaslFailure('malformed-request', 'channel binding data unavailable');
    this.expected = {
      nonce,
      gs2Header,
      cbData: cbData ?? Buffer.alloc(0),
      authBase: `${bare},${serverFirst}`,
      username: jid.local,
      storedKey: credential ? Buffer.from(credential.storedKey, 'base64') : randomBytes(32),
      serverKey: credential ? Buffer.from(credential.serverKey, 'base64') : randomBytes(32),
      known: credential !== undefined,
    };
    return { kind: 'challenge', data: Buffer.from(serverFirst) };
  }

  private async clientFinal(message: string): Promise<SaslStep> {
    const expected = this.expected!;
    const proofAt = message.lastIndexOf(',p=');
    if (proofAt === -1) throw new SaslFailure('malformed-request', 'missing proof');
    const withoutProof = message.slice(0, proofAt);
    const attrs = parseAttributes(withoutProof);
    const channel = Buffer.from(attrs.get('c') ?? '', 'base64');
    const expectedChannel = Buffer.concat([Buffer.from(expected.gs2Header), expected.cbData]);
    if (!channel.equals(expectedChannel)) return { kind: 'failure', condition: 'not-authorized', text: 'channel binding mismatch', user: expected.username };
    if (attrs.get('r') !== expected.nonce) throw new SaslFailure('malformed-request', 'nonce mismatch');

    const authMessage = `${expected.authBase},${withoutProof}`;
    const proof = Buffer.from(message.slice(proofAt + 3), 'base64');
    const signature = hmac(this.hash, expected.storedKey, authMessage);
    if (proof.length !== signature.length) return { kind: 'failure', condition: 'not-authorized', user: expected.username };
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ signature[i]!;
    const ok = timingSafeEqual(digest(this.hash, clientKey), expected.storedKey) && expected.known;
    if (!ok) return { kind: 'failure', condition: 'not-authorized', user: expected.username };
    const serverSignature = hmac(this.hash, expected.serverKey, authMessage);
    return {
      kind: 'success',
      user: this.userJid(expected.username),
      additionalData: Buffer.from(`v=${serverSignature.toString('base64')}`),
    };
  }

  private userJid(username: string) {
    try {
      return makeJid(username, this.stream.host);
    } catch (err) {
      if (err instanceof JidError) throw new SaslFailure('not-authorized', 'no such user');
      throw err;
    }
  }
}

function parseAttributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** saslname: "=2C" is ',' and "=3D" is '='; any other '=' is malformed (RFC 5802 §5.1). */
function decodeSaslName(name: string): string {
  if (/=(?!2C|3D)/.test(name)) throw new SaslFailure('malformed-request', 'bad username encoding');
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

const fakeSaltKey = randomBytes(32);
function fakeSalt(user: string): string {
  return hmac('sha256', fakeSaltKey, user).subarray(0, 16).toString('base64');
}

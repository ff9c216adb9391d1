// A client-side SCRAM (RFC 5802 / 7677) with channel binding, written apart from the server's
// code so a test cannot pass on a bug both sides share.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import type { Element } from '@xmpp/xml';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

export interface ScramOptions {
  mechanism: 'SCRAM-SHA-1' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256-PLUS';
  username: string;
  password: string;
  /** For -PLUS: the channel binding type. */
  binding?: 'tls-exporter' | 'tls-server-end-point';
}

function cbData(socket: tls.TLSSocket, type: string): Buffer {
  if (type === 'tls-exporter') return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  const cert = socket.getPeerCertificate(true) as { raw: Buffer };
  return createHash('sha256').update(cert.raw).digest();
}

export interface ScramClient {
  /** The client-first-message: gs2 header and client-first-message-bare. */
  clientFirst: string;
  /** The client-final-message answering `serverFirst`; `cbData` is the channel binding data for -PLUS. */
  final(serverFirst: string, cbData?: Buffer): string;
  /** Whether the server-final-message carries the server signature expected (v=...). */
  verify(serverFinal: string): boolean;
}

/** The client's side of a SCRAM exchange, the framing (SASL or SASL2) left to the caller. */
export function scramClient(o: ScramOptions): ScramClient {
  const hash = o.mechanism.startsWith('SCRAM-SHA-256') ? 'sha256' : 'sha1';
  const gs2 = o.mechanism.endsWith('-PLUS') ? `p=${o.binding},,` : 'n,,';
  const nonce = randomBytes(16).toString('base64');
  const clientFirstBare = `n=${o.username},r=${nonce}`;
  let salted: Buffer | undefined;
  let authMessage = '';
  return {
    clientFirst: gs2 + clientFirstBare,
    final(serverFirst, cbData = Buffer.alloc(0)) {
      const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
      salted = pbkdf2Sync(o.password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), hash === 'sha256' ? 32 : 20, hash);
      const clientKey = createHmac(hash, salted).update('Client Key').digest();
      const storedKey = createHash(hash).update(clientKey).digest();
      const channel = Buffer.concat([Buffer.from(gs2), cbData]);
      const finalWithoutProof = `c=${channel.toString('base64')},r=${attrs.r}`;
      authMessage = `${clientFirstBare},${serverFirst},${finalWithoutProof}`;
      const signature = createHmac(hash, storedKey).update(authMessage).digest();
      const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
      return `${finalWithoutProof},p=${proof.toString('base64')}`;
    },
    verify(serverFinal) {
      if (!salted) return false;
      const serverKey = createHmac(hash, salted).update('Server Key').digest();
      const expected = createHmac(hash, serverKey).update(authMessage).digest().toString('base64');
      return serverFinal === `v=${expected}`;
    },
  };
}

/** What scramLogin needs of a raw stream (TCP or WebSocket). */
export interface ScramStream {
  readonly elements: Element[];
  readonly tlsSocket?: tls.TLSSocket | undefined;
  write(data: string): unknown;
  until<T>(check: () => T | undefined | false): Promise<T>;
}

/** Runs a SCRAM exchange on the raw stream; resolves with the final element (success or failure). */
export async function scramLogin(stream: ScramStream, o: ScramOptions): Promise<{ result: Element; serverSignatureOk: boolean }> {
  const scram = scramClient(o);
  stream.write(`<auth xmlns='${SASL}' mechanism='${o.mechanism}'>${Buffer.from(scram.clientFirst).toString('base64')}</auth>`);
  const first = await stream.until(() => stream.elements.find((e) => e.attrs.xmlns === SASL));
  stream.elements.splice(stream.elements.indexOf(first), 1);
  if (first.name !== 'challenge') return { result: first, serverSignatureOk: false };
  const serverFirst = Buffer.from(first.getText(), 'base64').toString();
  const cb = o.mechanism.endsWith('-PLUS') ? cbData(stream.tlsSocket!, o.binding!) : undefined;
  stream.write(`<response xmlns='${SASL}'>${Buffer.from(scram.final(serverFirst, cb)).toString('base64')}</response>`);
  const result = await stream.until(() => stream.elements.find((e) => e.attrs.xmlns === SASL));
  stream.elements.splice(stream.elements.indexOf(result), 1);
  const serverSignatureOk = result.name === 'success' && scram.verify(Buffer.from(result.getText(), 'base64').toString());
  return { result, serverSignatureOk };
}

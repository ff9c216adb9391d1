// A client-side SCRAM (RFC 5802 / 7677) with channel binding, written apart from the server's
// code so a test cannot pass on a bug both sides share.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import type { Element } from '@xmpp/xml';
import type { RawStream } from './clients.js';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

export interface ScramOptions {
  mechanism: 'SCRAM-SHA-1' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256-PLUS';
  username: string;
  password: string;
  /** For -PLUS: the channel binding type. */
  binding?: 'tls-exporter' | 'tls-server-end-point';
}

function cbData(socket: tls.TLSSocket, type: string): Buffer {
  if (type === 'tls-exporter') return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding');
  const cert = socket.getPeerCertificate(true) as { raw: Buffer };
  return createHash('sha256').update(cert.raw).digest();
}

/** Runs a SCRAM exchange on the raw stream; resolves with the final element (success or failure). */
export async function scramLogin(stream: RawStream, o: ScramOptions): Promise<{ result: Element; serverSignatureOk: boolean }> {
  const hash = o.mechanism.startsWith('SCRAM-SHA-256') ? 'sha256' : 'sha1';
  const plus = o.mechanism.endsWith('-PLUS');
  const gs2 = plus ? `p=${o.binding},,` : 'n,,';
  const nonce = randomBytes(16).toString('base64');
  const clientFirstBare = `n=${o.username},r=${nonce}`;
  stream.write(`<auth xmlns='${SASL}' mechanism='${o.mechanism}'>${Buffer.from(gs2 + clientFirstBare).toString('base64')}</auth>`);
  const first = await stream.until(() => stream.elements.find((e) => e.attrs.xmlns === SASL));
  stream.elements.splice(stream.elements.indexOf(first), 1);
  if (first.name !== 'challenge') return { result: first, serverSignatureOk: false };
  const serverFirst = Buffer.from(first.getText(), 'base64').toString();
  const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
  const salted = pbkdf2Sync(o.password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), hash === 'sha256' ? 32 : 20, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  const storedKey = createHash(hash).update(clientKey).digest();
  const channel = Buffer.concat([Buffer.from(gs2), plus ? cbData(stream.tlsSocket!, o.binding!) : Buffer.alloc(0)]);
  const finalWithoutProof = `c=${channel.toString('base64')},r=${attrs.r}`;
  const authMessage = `${clientFirstBare},${serverFirst},${finalWithoutProof}`;
  const signature = createHmac(hash, storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
  stream.write(`<response xmlns='${SASL}'>${Buffer.from(`${finalWithoutProof},p=${proof.toString('base64')}`).toString('base64')}</response>`);
  const result = await stream.until(() => stream.elements.find((e) => e.attrs.xmlns === SASL));
  stream.elements.splice(stream.elements.indexOf(result), 1);
  let serverSignatureOk = false;
  if (result.name === 'success') {
    const serverKey = createHmac(hash, salted).update('Server Key').digest();
    const expected = createHmac(hash, serverKey).update(authMessage).digest().toString('base64');
    serverSignatureOk = Buffer.from(result.getText(), 'base64').toString() === `v=${expected}`;
  }
  return { result, serverSignatureOk };
}

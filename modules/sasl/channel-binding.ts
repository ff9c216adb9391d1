// Channel binding data (RFC 5929 tls-server-end-point, RFC 9266 tls-exporter), advertised with
// XEP-0440 so clients can pick a type both sides support.
import { createHash } from 'node:crypto';
import type tls from 'node:tls';

export type ChannelBindingType = 'tls-exporter' | 'tls-server-end-point';

/** The types this TLS connection supports: tls-exporter only over TLS 1.3 (RFC 9266 §3). */
export function supportedChannelBindings(socket: tls.TLSSocket | undefined): ChannelBindingType[] {
  if (!socket) return [];
  const types: ChannelBindingType[] = ['tls-server-end-point'];
  if (socket.getProtocol() === 'TLSv1.3') types.unshift('tls-exporter');
  return types;
}

export function channelBindingData(socket: tls.TLSSocket, type: ChannelBindingType): Buffer | undefined {
  if (type === 'tls-exporter') {
    if (socket.getProtocol() !== 'TLSv1.3') return undefined;
    return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  }
  const raw = socket.getCertificate() as { raw?: Buffer } | null;
  if (!raw?.raw) return undefined;
  return createHash(endPointHash(raw.raw)).update(raw.raw).digest();
}

/** RFC 5929 §4.1: the certificate's signature hash, with MD5 and SHA-1 upgraded to SHA-256. */
export function endPointHash(der: Buffer): 'sha256' | 'sha384' | 'sha512' {
  const oid = signatureAlgorithmOid(der);
  if (oid === '2a864886f70d01010c' || oid === '2a8648ce3d040303') return 'sha384'; // RSA / ECDSA with SHA-384
  if (oid === '2a864886f70d01010d' || oid === '2a8648ce3d040304') return 'sha512'; // RSA / ECDSA with SHA-512
  return 'sha256';
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, ... }: the OID, as hex. */
function signatureAlgorithmOid(der: Buffer): string | undefined {
  try {
    const outer = readTlv(der, 0);
    const tbs = readTlv(der, outer.contentStart);
    const algorithm = readTlv(der, tbs.end);
    const oid = readTlv(der, algorithm.contentStart);
    return der.subarray(oid.contentStart, oid.end).toString('hex');
  } catch {
    return undefined;
  }
}

function readTlv(der: Buffer, at: number): { contentStart: number; end: number } {
  let length = der[at + 1]!;
  let contentStart = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[at + 2 + i]!;
    contentStart += bytes;
  }
  if (contentStart + length > der.length) throw new Error('truncated DER');
  return { contentStart, end: contentStart + length };
}

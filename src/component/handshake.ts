// The XEP-0114 handshake: the component proves it knows the secret by sending the lowercase hex
// SHA-1 of the stream id followed by the secret; compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';

export function handshakeDigest(streamId: string, secret: string): string {
  return createHash('sha1')
    .update(streamId + secret, 'utf8')
    .digest('hex');
}

/** Whether `offered` (the text of <handshake/>) is the digest for this stream id and secret. */
export function handshakeMatches(offered: string, streamId: string, secret: string): boolean {
  const expected = Buffer.from(handshakeDigest(streamId, secret), 'latin1');
  // Hex is case-insensitive; anything of another length cannot match (and is not compared).
  const given = Buffer.from(offered.trim().toLowerCase(), 'latin1');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

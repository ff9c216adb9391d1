// SCRAM (RFC 5802, RFC 7677) key derivation: what we store instead of a password.
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { StoredCredential } from '../storage/accounts.js';

const pbkdf2Async = promisify(pbkdf2);

export type ScramHash = 'sha1' | 'sha256';
export const SCRAM_HASHES: Record<string, ScramHash> = { 'SCRAM-SHA-1': 'sha1', 'SCRAM-SHA-256': 'sha256' };

const HASH_BYTES: Record<ScramHash, number> = { sha1: 20, sha256: 32 };

export function hmac(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(hash, key).update(data).digest();
}

export function digest(hash: ScramHash, data: Buffer): Buffer {
  return createHash(hash).update(data).digest();
}

/** SaltedPassword = Hi(password, salt, i); Hi is PBKDF2 with HMAC. */
export function saltedPassword(hash: ScramHash, password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return pbkdf2Async(Buffer.from(password, 'utf8'), salt, iterations, HASH_BYTES[hash], hash);
}

/** Derives the StoredKey and ServerKey of one SCRAM hash for an (already prepared) password. */
export async function deriveCredential(mechanism: string, password: string, iterations: number, salt = randomBytes(16)): Promise<StoredCredential> {
  const hash = SCRAM_HASHES[mechanism];
  if (!hash) throw new Error(`unknown SCRAM mechanism ${mechanism}`);
  const salted = await saltedPassword(hash, password, salt, iterations);
  const clientKey = hmac(hash, salted, 'Client Key');
  return {
    mechanism,
    salt: salt.toString('base64'),
    iterations,
    storedKey: digest(hash, clientKey).toString('base64'),
    serverKey: hmac(hash, salted, 'Server Key').toString('base64'),
  };
}

/** Credentials for every SCRAM hash we offer. */
export function deriveAllCredentials(password: string, iterations: number): Promise<StoredCredential[]> {
  return Promise.all(Object.keys(SCRAM_HASHES).map((m) => deriveCredential(m, password, iterations)));
}

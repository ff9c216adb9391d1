// Where credentials come from. The internal database is the one backend today; LDAP or an
// external HTTP check would implement the same interface.
import { timingSafeEqual } from 'node:crypto';
import type { AccountStore, StoredCredential } from '../storage/accounts.js';
import { preparePassword } from './accounts.js';
import { SCRAM_HASHES, digest, hmac, saltedPassword } from './scram.js';

export interface AuthBackend {
  /** The stored SCRAM keys of a user for one mechanism ('SCRAM-SHA-1' or 'SCRAM-SHA-256'). */
  scramCredential(host: string, username: string, mechanism: string): Promise<StoredCredential | undefined>;
  /** Checks a plaintext password (SASL PLAIN), in time independent of where it differs. */
  verifyPassword(host: string, username: string, password: string): Promise<boolean>;
}

export class InternalAuthBackend implements AuthBackend {
  constructor(private readonly store: AccountStore) {}

  scramCredential(host: string, username: string, mechanism: string): Promise<StoredCredential | undefined> {
    return this.store.credential(host, username, mechanism);
  }

  async verifyPassword(host: string, username: string, password: string): Promise<boolean> {
    const credential = await this.store.credential(host, username, 'SCRAM-SHA-256');
    if (!credential) return false;
    let prepared: string;
    try {
      prepared = preparePassword(password);
    } catch {
      return false;
    }
    const hash = SCRAM_HASHES[credential.mechanism]!;
    const salted = await saltedPassword(hash, prepared, Buffer.from(credential.salt, 'base64'), credential.iterations);
    const storedKey = digest(hash, hmac(hash, salted, 'Client Key'));
    return timingSafeEqual(storedKey, Buffer.from(credential.storedKey, 'base64'));
  }
}

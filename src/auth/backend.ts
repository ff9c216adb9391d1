// Where credentials come from. The internal database is the one backend today; LDAP or an
// external HTTP check would implement the same interface.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AccountStore, StoredCredential } from '../storage/accounts.js';
import { preparePassword } from './accounts.js';
import { SCRAM_HASHES, digest, hmac, saltedPassword } from './scram.js';

export interface AuthBackend {
  /** The stored SCRAM keys of a user for one mechanism ('SCRAM-SHA-1' or 'SCRAM-SHA-256'). */
  scramCredential(host: string, username: string, mechanism: string): Promise<StoredCredential | undefined>;
  /** Checks a plaintext password (SASL PLAIN), in time independent of where it differs. */
  verifyPassword(host: string, username: string, password: string): Promise<boolean>;
}

/** PBKDF2 (SCRAM's Hi), injectable so tests can observe the work done. */
export type DeriveSaltedPassword = typeof saltedPassword;

export interface InternalAuthOptions {
  /** Iterations of a made-up credential for an unknown user: the host's scram_iterations. */
  iterationsFor?: (host: string) => number;
  derive?: DeriveSaltedPassword;
}

export class InternalAuthBackend implements AuthBackend {
  private readonly derive: DeriveSaltedPassword;

  constructor(
    private readonly store: AccountStore,
    private readonly options: InternalAuthOptions = {},
  ) {
    this.derive = options.derive ?? saltedPassword;
  }

  scramCredential(host: string, username: string, mechanism: string): Promise<StoredCredential | undefined> {
    return this.store.credential(host, username, mechanism);
  }

  /**
   * An unknown user (or a password that cannot be prepared) costs the same PBKDF2 as a known
   * one, against a made-up credential, so the answer time does not tell whether an account
   * exists (SCRAM does the same with a made-up salt).
   */
  async verifyPassword(host: string, username: string, password: string): Promise<boolean> {
    // An account imported with SCRAM-SHA-1 keys only (Prosody's export) is checked against those.
    const credential = (await this.store.credential(host, username, 'SCRAM-SHA-256')) ?? (await this.store.credential(host, username, 'SCRAM-SHA-1'));
    let prepared: string | undefined;
    try {
      prepared = preparePassword(password);
    } catch {
      prepared = undefined;
    }
    const stand = credential ?? this.madeUpCredential(host, username);
    const hash = SCRAM_HASHES[stand.mechanism]!;
    const salted = await this.derive(hash, prepared ?? password, Buffer.from(stand.salt, 'base64'), stand.iterations);
    const storedKey = digest(hash, hmac(hash, salted, 'Client Key'));
    const matches = timingSafeEqual(storedKey, Buffer.from(stand.storedKey, 'base64'));
    return credential !== undefined && prepared !== undefined && matches;
  }

  private madeUpCredential(host: string, username: string): StoredCredential {
    return {
      mechanism: 'SCRAM-SHA-256',
      salt: hmac('sha256', madeUpKey, `${username}@${host}`).subarray(0, 16).toString('base64'),
      iterations: this.options.iterationsFor?.(host) ?? 4096,
      storedKey: randomBytes(32).toString('base64'),
      serverKey: '',
    };
  }
}

const madeUpKey = randomBytes(32);

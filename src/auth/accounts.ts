// Accounts: creating, changing and deleting users with the host's password policy.
// The CLI, in-band registration and the SASL module all go through here.
import { AccountStore, type StoredCredential } from '../storage/accounts.js';
import { deriveAllCredentials } from './scram.js';
import { makeJid, JidError, type Jid } from '../jid.js';
import { prepareOpaqueString, PrecisError } from '../precis.js';

export class AccountError extends Error {
  constructor(
    readonly condition: 'not-acceptable' | 'conflict' | 'item-not-found' | 'host-unknown',
    message: string,
  ) {
    super(message);
    this.name = 'AccountError';
  }
}

export interface PasswordPolicy {
  min_password_length: number;
  scram_iterations: number;
}

export type AccountDeletedListener = (jid: Jid) => Promise<void> | void;

export class Accounts {
  private readonly deletedListeners: AccountDeletedListener[] = [];

  constructor(
    readonly store: AccountStore,
    private readonly policyOf: (host: string) => PasswordPolicy | undefined,
  ) {}

  /** Prepares `user@host` (RFC 7622 / 8265) and checks the host is ours. */
  userJid(address: string): Jid {
    let jid: Jid;
    try {
      const at = address.lastIndexOf('@');
      if (at <= 0) throw new AccountError('not-acceptable', `"${address}" is not of the form user@host`);
      jid = makeJid(address.slice(0, at), address.slice(at + 1));
    } catch (err) {
      if (err instanceof JidError) throw new AccountError('not-acceptable', `"${address}" is not a valid user address: ${err.message}`);
      throw err;
    }
    if (!this.policyOf(jid.domain)) throw new AccountError('host-unknown', `${jid.domain} is not a host of this server`);
    return jid;
  }

  async create(jid: Jid, password: string): Promise<void> {
    const credentials = await this.credentialsFor(jid, password);
    try {
      await this.store.create(jid.domain, jid.local, credentials);
    } catch (err) {
      if ((err as Error).name === 'AccountExistsError') throw new AccountError('conflict', (err as Error).message);
      throw err;
    }
  }

  async setPassword(jid: Jid, password: string): Promise<void> {
    const credentials = await this.credentialsFor(jid, password);
    if (!(await this.store.setCredentials(jid.domain, jid.local, credentials))) {
      throw new AccountError('item-not-found', `there is no account ${jid}`);
    }
  }

  /** Deletes the account and everything it owns; listeners (modules, live sessions) follow. */
  async delete(jid: Jid): Promise<void> {
    if (!(await this.store.delete(jid.domain, jid.local))) throw new AccountError('item-not-found', `there is no account ${jid}`);
    for (const listener of this.deletedListeners) await listener(jid);
  }

  /** Disables (no login until re-enabled; the data stays) or re-enables an account. */
  async setDisabled(jid: Jid, disabled: boolean): Promise<void> {
    if (!(await this.store.setDisabled(jid.domain, jid.local, disabled))) throw new AccountError('item-not-found', `there is no account ${jid}`);
  }

  isDisabled(jid: Jid): Promise<boolean> {
    return this.store.disabled(jid.domain, jid.local);
  }

  exists(jid: Jid): Promise<boolean> {
    return this.store.exists(jid.domain, jid.local);
  }

  list(host: string): Promise<string[]> {
    return this.store.list(host);
  }

  onDeleted(listener: AccountDeletedListener): () => void {
    this.deletedListeners.push(listener);
    return () => this.deletedListeners.splice(this.deletedListeners.indexOf(listener), 1);
  }

  private async credentialsFor(jid: Jid, password: string): Promise<StoredCredential[]> {
    const policy = this.policyOf(jid.domain);
    if (!policy) throw new AccountError('host-unknown', `${jid.domain} is not a host of this server`);
    let prepared: string;
    try {
      prepared = preparePassword(password);
    } catch (err) {
      throw new AccountError('not-acceptable', `the password is not acceptable: ${(err as Error).message}`);
    }
    if ([...prepared].length < policy.min_password_length) {
      throw new AccountError('not-acceptable', `the password must have at least ${policy.min_password_length} characters`);
    }
    return deriveAllCredentials(prepared, policy.scram_iterations);
  }
}

/** Passwords are prepared with the OpaqueString profile (RFC 8265 §4) before hashing. */
export function preparePassword(password: string): string {
  try {
    return prepareOpaqueString(password);
  } catch (err) {
    if (err instanceof PrecisError) throw new Error(err.message);
    throw err;
  }
}

// The account store: who exists on which host, and their SCRAM credentials.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface StoredCredential {
  mechanism: string; // 'SCRAM-SHA-1' | 'SCRAM-SHA-256'
  salt: string; // base64
  iterations: number;
  storedKey: string; // base64
  serverKey: string; // base64
}

export class AccountExistsError extends Error {
  constructor(host: string, username: string) {
    super(`the account ${username}@${host} exists already`);
    this.name = 'AccountExistsError';
  }
}

export class AccountStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(host: string, username: string, credentials: readonly StoredCredential[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('account').select('username').where('host', '=', host).where('username', '=', username).executeTakeFirst();
      if (existing) throw new AccountExistsError(host, username);
      await trx.insertInto('account').values({ host, username, created_at: Date.now() }).execute();
      await insertCredentials(trx, host, username, credentials);
    });
  }

  async exists(host: string, username: string): Promise<boolean> {
    const row = await this.db.selectFrom('account').select('username').where('host', '=', host).where('username', '=', username).executeTakeFirst();
    return row !== undefined;
  }

  async credential(host: string, username: string, mechanism: string): Promise<StoredCredential | undefined> {
    const row = await this.db
      .selectFrom('account_credential')
      .select(['mechanism', 'salt', 'iterations', 'stored_key', 'server_key'])
      .where('host', '=', host)
      .where('username', '=', username)
      .where('mechanism', '=', mechanism)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      mechanism: row.mechanism,
      salt: row.salt,
      iterations: Number(row.iterations),
      storedKey: row.stored_key,
      serverKey: row.server_key,
    };
  }

  /**
   * Replaces every credential of an existing account; false when there is no such account.
   * Secrets that stood for the old password (user_data stores named `credential:*`, such as
   * FAST tokens) go with it, whichever process changes the password.
   */
  async setCredentials(host: string, username: string, credentials: readonly StoredCredential[]): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('account').select('username').where('host', '=', host).where('username', '=', username).executeTakeFirst();
      if (!existing) return false;
      await trx.deleteFrom('account_credential').where('host', '=', host).where('username', '=', username).execute();
      await trx.deleteFrom('user_data').where('host', '=', host).where('username', '=', username).where('store', 'like', 'credential:%').execute();
      await insertCredentials(trx, host, username, credentials);
      return true;
    });
  }

  /** Deletes the account; every row it owns goes with it (foreign keys cascade). */
  async delete(host: string, username: string): Promise<boolean> {
    const result = await this.db.deleteFrom('account').where('host', '=', host).where('username', '=', username).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Disables or re-enables an existing account; false when there is no such account. */
  async setDisabled(host: string, username: string, disabled: boolean): Promise<boolean> {
    const result = await this.db
      .updateTable('account')
      .set({ disabled_at: disabled ? Date.now() : null })
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Whether the account exists and is disabled. */
  async disabled(host: string, username: string): Promise<boolean> {
    const row = await this.db.selectFrom('account').select('disabled_at').where('host', '=', host).where('username', '=', username).executeTakeFirst();
    return row?.disabled_at != null;
  }

  async count(host: string): Promise<number> {
    const row = await this.db
      .selectFrom('account')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('host', '=', host)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async list(host: string): Promise<string[]> {
    const rows = await this.db.selectFrom('account').select('username').where('host', '=', host).orderBy('username').execute();
    return rows.map((r) => r.username);
  }
}

async function insertCredentials(db: Kysely<Database>, host: string, username: string, credentials: readonly StoredCredential[]) {
  if (credentials.length === 0) return;
  await db
    .insertInto('account_credential')
    .values(
      credentials.map((c) => ({
        host,
        username,
        mechanism: c.mechanism,
        salt: c.salt,
        iterations: c.iterations,
        stored_key: c.storedKey,
        server_key: c.serverKey,
      })),
    )
    .execute();
}

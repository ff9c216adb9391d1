// Where FAST tokens (XEP-0484) live: one user_data row per account and client (the SASL2
// <user-agent id/>), holding the two token slots of XEP-0484 §5.1, 'current' and 'new'.
// Tokens are kept as SHA-256 digests only, never as issued. Rows go with the account (the
// foreign key cascades) and are purged once every token in them has expired.
import { createHash } from 'node:crypto';
import type { Storage } from '../../src/storage/database.js';

/** A `credential:` store: the account store drops its rows when the password changes. */
export const STORE = 'credential:fast';

/** One stored token. */
export interface StoredToken {
  /** SHA-256 of the token's UTF-8 octets, base64. */
  hash: string;
  /** The SASL mechanism the token was issued for (XEP-0484: tokens are bound to it). */
  mechanism: string;
  issuedAt: number;
  expiresAt: number;
  /** The highest <fast count=.../> accepted with this token so far (replay protection). */
  count?: number;
}

/** What the server keeps per account and client. */
export interface ClientTokens {
  /** The token the client last authenticated with. */
  current?: StoredToken;
  /** A token issued since, which the client has not used yet. */
  new?: StoredToken;
  /** The client's self-description from its last <user-agent/>, for listing devices. */
  software?: string;
  device?: string;
}

export interface FastTokenStoreOptions {
  now?: () => number;
}

export class FastTokenStore {
  private readonly now: () => number;

  constructor(
    private readonly storage: Storage,
    options: FastTokenStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The row key for a client: a digest of its user-agent id, so any id fits and none is stored as sent. */
  static clientKey(userAgentId: string): string {
    return createHash('sha256').update(userAgentId, 'utf8').digest('base64url');
  }

  /** The client's tokens, without the expired ones; undefined when none is left. */
  async get(host: string, username: string, userAgentId: string): Promise<ClientTokens | undefined> {
    const row = await this.storage.db
      .selectFrom('user_data')
      .select('value')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('store', '=', STORE)
      .where('key', '=', FastTokenStore.clientKey(userAgentId))
      .executeTakeFirst();
    return row ? this.live(parse(row.value)) : undefined;
  }

  /**
   * Reads, changes and writes a client's tokens in one transaction. `change` gets the stored
   * tokens as they are (expired ones included, so it can tell an expired token from a wrong
   * one; undefined when there is no row) and returns what to keep: the same object to leave
   * the row as it is, undefined to delete it. Expired tokens are dropped on writing.
   */
  async update(host: string, username: string, userAgentId: string, change: (tokens: ClientTokens | undefined) => ClientTokens | undefined): Promise<void> {
    const key = FastTokenStore.clientKey(userAgentId);
    return this.storage.db.transaction().execute(async (trx) => {
      let query = trx.selectFrom('user_data').select('value').where('host', '=', host).where('username', '=', username).where('store', '=', STORE).where('key', '=', key);
      if (this.storage.driver === 'postgres') query = query.forUpdate();
      const row = await query.executeTakeFirst();
      const stored = row ? parse(row.value) : undefined;
      const next = change(stored);
      if (next !== undefined && next === stored) return;
      const kept = next ? this.live(next) : undefined;
      if (!kept) {
        if (row) {
          await trx.deleteFrom('user_data').where('host', '=', host).where('username', '=', username).where('store', '=', STORE).where('key', '=', key).execute();
        }
        return;
      }
      const value = JSON.stringify(kept);
      const expires_at = Math.max(kept.current?.expiresAt ?? 0, kept.new?.expiresAt ?? 0);
      await trx
        .insertInto('user_data')
        .values({ host, username, store: STORE, key, value, expires_at })
        .onConflict((oc) => oc.columns(['host', 'username', 'store', 'key']).doUpdateSet({ value, expires_at }))
        .execute();
    });
  }

  /** Forgets every token of one client. */
  async delete(host: string, username: string, userAgentId: string): Promise<void> {
    await this.storage.db
      .deleteFrom('user_data')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('store', '=', STORE)
      .where('key', '=', FastTokenStore.clientKey(userAgentId))
      .execute();
  }

  /** Forgets every token of an account (a password change, say). */
  async deleteAll(host: string, username: string): Promise<void> {
    await this.storage.db.deleteFrom('user_data').where('host', '=', host).where('username', '=', username).where('store', '=', STORE).execute();
  }

  /** Deletes a host's rows whose tokens have all expired; returns how many. */
  async purgeExpired(host: string): Promise<number> {
    const result = await this.storage.db.deleteFrom('user_data').where('host', '=', host).where('store', '=', STORE).where('expires_at', '<=', this.now()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Drops expired slots; undefined when no token is left. */
  private live(tokens: ClientTokens): ClientTokens | undefined {
    const now = this.now();
    const out: ClientTokens = { software: tokens.software, device: tokens.device };
    if (tokens.current && tokens.current.expiresAt > now) out.current = tokens.current;
    if (tokens.new && tokens.new.expiresAt > now) out.new = tokens.new;
    return out.current || out.new ? out : undefined;
  }
}

function parse(value: string): ClientTokens {
  try {
    const parsed = JSON.parse(value) as ClientTokens;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

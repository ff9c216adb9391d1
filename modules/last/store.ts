// Where the time of a user's last logout lives: one row of the core user_data table per
// account (store 'last'), which goes with the account through its foreign key.
import type { Storage } from '../../src/storage/database.js';

export const STORE = 'last';
const KEY = 'logout';

export interface LastLogout {
  /** When the user's last session closed, in milliseconds since the epoch. */
  at: number;
  /** The <status/> of the last unavailable presence the user sent, '' when none. */
  status: string;
}

export class LastActivityStore {
  constructor(private readonly storage: Storage) {}

  async get(host: string, username: string): Promise<LastLogout | undefined> {
    const row = await this.storage.db
      .selectFrom('user_data')
      .select('value')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('store', '=', STORE)
      .where('key', '=', KEY)
      .executeTakeFirst();
    if (!row) return undefined;
    try {
      const parsed = JSON.parse(row.value) as Partial<LastLogout>;
      if (typeof parsed.at !== 'number') return undefined;
      return { at: parsed.at, status: typeof parsed.status === 'string' ? parsed.status : '' };
    } catch {
      return undefined;
    }
  }

  async set(host: string, username: string, value: LastLogout): Promise<void> {
    const json = JSON.stringify(value);
    await this.storage.db
      .insertInto('user_data')
      .values({ host, username, store: STORE, key: KEY, value: json, expires_at: null })
      .onConflict((oc) => oc.columns(['host', 'username', 'store', 'key']).doUpdateSet({ value: json }))
      .execute();
  }
}

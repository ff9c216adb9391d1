// What survives a restart of stream management: the h of each resumable session, so a client
// resuming afterwards learns how many of its stanzas were handled (XEP-0198 <failed h/>).
import type { Jid } from '../../src/jid.js';
import type { Storage } from '../../src/storage/database.js';

const STORE = 'sm';

export class SmStateStore {
  constructor(private readonly storage: Storage) {}

  async save(user: Jid, id: string, h: number, ttlSeconds: number): Promise<void> {
    const row = { host: user.domain, username: user.local, store: STORE, key: id, value: JSON.stringify({ h }), expires_at: Date.now() + ttlSeconds * 1000 };
    await this.storage.db
      .insertInto('user_data')
      .values(row)
      .onConflict((oc) => oc.columns(['host', 'username', 'store', 'key']).doUpdateSet({ value: row.value, expires_at: row.expires_at }))
      .execute();
  }

  /** Reads and deletes the saved state of a session (once; expired state is ignored). */
  async take(user: Jid, id: string): Promise<{ h: number } | undefined> {
    const where = this.storage.db.deleteFrom('user_data').where('host', '=', user.domain).where('username', '=', user.local).where('store', '=', STORE);
    const row = await this.storage.db
      .selectFrom('user_data')
      .select(['value', 'expires_at'])
      .where('host', '=', user.domain)
      .where('username', '=', user.local)
      .where('store', '=', STORE)
      .where('key', '=', id)
      .executeTakeFirst();
    await where.where((eb) => eb.or([eb('key', '=', id), eb('expires_at', '<', Date.now())])).execute();
    if (!row || (row.expires_at !== null && Number(row.expires_at) < Date.now())) return undefined;
    return JSON.parse(row.value) as { h: number };
  }
}

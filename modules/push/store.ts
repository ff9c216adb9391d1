// XEP-0357 push registrations of an account, in a map store ('push'): one entry per push
// service JID and node, keyed by JSON [service, node], with the publish-options form the client
// gave (XML, or null) and when it was last enabled.
import { sql } from 'kysely';
import { movedToStores } from '../../src/storage/migrations.js';
import type { MapStore } from '../../src/storage/stores.js';

export interface Registration {
  /** The XMPP Push Service (the App Server's pubsub service), a JID in its prepared form. */
  service: string;
  /** The pubsub node; '' when the client named none. */
  node: string;
  form: string | undefined;
}

export interface StoredRegistration {
  service: string;
  node: string;
  form: string | null;
  /** When it was last enabled, ms since the epoch. */
  updatedAt: number;
}

export type EnableResult = 'enabled' | 'updated' | 'full';

const keyOf = (service: string, node: string) => JSON.stringify([service, node]);
const toRegistration = (r: StoredRegistration): Registration => ({ service: r.service, node: r.node, form: r.form ?? undefined });

/** The rows of the old table push_registration, copied into the map store. */
export const pushMigrations = movedToStores(['push_registration'], async (db) => {
  const rows = await db.selectFrom('push_registration').selectAll().execute();
  for (const r of rows) {
    const value: StoredRegistration = { service: r.service, node: r.node, form: r.form, updatedAt: Number(r.updated_at) };
    await sql`insert into user_data (host, username, store, key, value, expires_at)
      values (${r.host}, ${r.username}, 'push', ${keyOf(r.service, r.node)}, ${JSON.stringify(value)}, null)`.execute(db);
  }
});

export class PushStore {
  constructor(
    private readonly map: MapStore<StoredRegistration>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Enables (service, node) for the account, or replaces its publish options when enabled
   * already (XEP-0357 §5: the last request's options win). 'full' when the account has `limit`
   * other registrations, and nothing is written.
   */
  enable(host: string, username: string, reg: Registration, limit: number): Promise<EnableResult> {
    return this.map.update(host, username, (regs) => {
      const key = keyOf(reg.service, reg.node);
      const known = regs.has(key);
      if (!known && regs.size >= limit) return 'full';
      regs.set(key, { service: reg.service, node: reg.node, form: reg.form ?? null, updatedAt: this.now() });
      return known ? 'updated' : 'enabled';
    });
  }

  /** Removes (service, node), or every node of the service when `node` is undefined; returns how many. */
  disable(host: string, username: string, service: string, node?: string): Promise<number> {
    return this.map.update(host, username, (regs) => {
      const gone = [...regs].filter(([, r]) => r.service === service && (node === undefined || r.node === node));
      for (const [key] of gone) regs.delete(key);
      return gone.length;
    });
  }

  /** The account's registrations, oldest enabled first. */
  async list(host: string, username: string): Promise<Registration[]> {
    const regs = [...(await this.map.all(host, username)).values()];
    return regs.sort((a, b) => a.updatedAt - b.updatedAt).map(toRegistration);
  }

  async get(host: string, username: string, service: string, node: string): Promise<Registration | undefined> {
    const r = await this.map.get(host, username, keyOf(service, node));
    return r && toRegistration(r);
  }
}

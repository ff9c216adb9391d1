// Invitation tokens for in-band registration (XEP-0401 / XEP-0445): a host-level table, owned
// by no account. A token is stored as its SHA-256 digest only, with how often it may be used
// and until when; `starling invite` creates them, registration uses them up.
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import { millis, type Migration } from '../../src/storage/migrations.js';

interface RegisterInviteTable {
  host: string;
  /** SHA-256 of the token's UTF-8 octets, base64url. */
  token_hash: string;
  created_at: number;
  /** Null: never expires. */
  expires_at: number | null;
  max_uses: number;
  uses: number;
}

export interface RegisterTables {
  register_invite: RegisterInviteTable;
}

export const registerMigrations: Migration[] = [
  {
    version: 1,
    name: 'invites',
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('register_invite')
        .addColumn('host', 'varchar(1023)', (c) => c.notNull())
        .addColumn('token_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', millis, (c) => c.notNull())
        .addColumn('expires_at', millis)
        .addColumn('max_uses', 'integer', (c) => c.notNull())
        .addColumn('uses', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('register_invite_pk', ['host', 'token_hash'])
        .execute();
    },
  },
];

export interface InviteInfo {
  maxUses: number;
  uses: number;
  createdAt: number;
  expiresAt: number | null;
}

export interface InviteStoreOptions {
  now?: () => number;
}

export class InviteStore {
  private readonly db: Kysely<RegisterTables>;
  private readonly now: () => number;

  private constructor(storage: Storage, options: InviteStoreOptions) {
    this.db = storage.tables<RegisterTables>() as unknown as Kysely<RegisterTables>;
    this.now = options.now ?? Date.now;
  }

  /** The store, its table brought up to date. */
  static async open(storage: Storage, options: InviteStoreOptions = {}): Promise<InviteStore> {
    await storage.migrate('register', registerMigrations);
    return new InviteStore(storage, options);
  }

  static digest(token: string): string {
    return createHash('sha256').update(token, 'utf8').digest('base64url');
  }

  /** Creates a token for `uses` registrations, valid for `expiresInSeconds` (0: no expiry). */
  async create(host: string, { uses, expiresInSeconds }: { uses: number; expiresInSeconds: number }): Promise<{ token: string; expiresAt: number | null }> {
    const token = randomBytes(18).toString('base64url');
    const now = this.now();
    const expiresAt = expiresInSeconds > 0 ? now + expiresInSeconds * 1000 : null;
    await this.db
      .insertInto('register_invite')
      .values({ host, token_hash: InviteStore.digest(token), created_at: now, expires_at: expiresAt, max_uses: uses, uses: 0 })
      .execute();
    return { token, expiresAt };
  }

  async info(host: string, token: string): Promise<InviteInfo | undefined> {
    const row = await this.db.selectFrom('register_invite').selectAll().where('host', '=', host).where('token_hash', '=', InviteStore.digest(token)).executeTakeFirst();
    if (!row) return undefined;
    return { maxUses: Number(row.max_uses), uses: Number(row.uses), createdAt: Number(row.created_at), expiresAt: row.expires_at === null ? null : Number(row.expires_at) };
  }

  /** Whether the token could register an account now (known, not used up, not expired). */
  async usable(host: string, token: string): Promise<boolean> {
    const info = await this.info(host, token);
    return info !== undefined && info.uses < info.maxUses && (info.expiresAt === null || info.expiresAt > this.now());
  }

  /**
   * Counts one use of the token if it has one left (and, unless `ignoreExpiry`, has not
   * expired), in one statement so two registrations cannot share the last use. False when
   * the token cannot be used.
   */
  async take(host: string, token: string, { ignoreExpiry = false } = {}): Promise<boolean> {
    let query = this.db
      .updateTable('register_invite')
      .set((eb) => ({ uses: eb('uses', '+', 1) }))
      .where('host', '=', host)
      .where('token_hash', '=', InviteStore.digest(token))
      .whereRef('uses', '<', 'max_uses');
    if (!ignoreExpiry) query = query.where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', this.now())]));
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Gives back a use taken for a registration that then failed. */
  async giveBack(host: string, token: string): Promise<void> {
    await this.db
      .updateTable('register_invite')
      .set((eb) => ({ uses: eb('uses', '-', 1) }))
      .where('host', '=', host)
      .where('token_hash', '=', InviteStore.digest(token))
      .where('uses', '>', 0)
      .execute();
  }

  /** Deletes a host's tokens that are used up or expired; returns how many. */
  async purge(host: string): Promise<number> {
    const result = await this.db
      .deleteFrom('register_invite')
      .where('host', '=', host)
      .where((eb) => eb.or([eb('uses', '>=', eb.ref('max_uses')), eb('expires_at', '<=', this.now())]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

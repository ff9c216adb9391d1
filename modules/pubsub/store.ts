// PubSub nodes in the database: each node with its configuration, its items (ordered by a
// sequence number that a publish moves to the top), explicit subscriptions and affiliations.
// A PEP node carries its account (host, username): the foreign key deletes it with the account,
// and its items, subscriptions and affiliations go with the node (ON DELETE CASCADE). A node
// of a service without an account (null host and username) is not tied to one.
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import type { Database } from '../../src/storage/schema.js';
import { millis, type Migration } from '../../src/storage/migrations.js';
import type { RsmRequest } from '../../src/xml/rsm.js';
import type { NodeConfig } from './node-config.js';

interface NodeTable {
  /** The service's address: an account's bare JID (PEP), or the general service's domain. */
  service: string;
  node: string;
  host: string | null;
  username: string | null;
  /** The NodeConfig as JSON. */
  config: string;
  created_at: number;
}

interface ItemTable {
  service: string;
  node: string;
  id: string;
  /** Higher = published later; the last published item has the highest. */
  seq: number;
  publisher: string;
  /** The item's payload element, serialised. */
  payload: string;
  published_at: number;
}

interface SubscriptionTable {
  service: string;
  node: string;
  jid: string;
  subid: string;
}

interface AffiliationTable {
  service: string;
  node: string;
  jid: string;
  affiliation: string;
}

export interface PubsubTables {
  pubsub_node: NodeTable;
  pubsub_item: ItemTable;
  pubsub_subscription: SubscriptionTable;
  pubsub_affiliation: AffiliationTable;
}

/** CREATE TABLE for rows a node owns, deleted with it. */
function createNodeTable(db: Kysely<any>, name: string) {
  return db.schema
    .createTable(name)
    .addColumn('service', 'varchar(3071)', (c) => c.notNull())
    .addColumn('node', 'varchar(1023)', (c) => c.notNull())
    .addForeignKeyConstraint(`${name}_node_fk`, ['service', 'node'], 'pubsub_node', ['service', 'node'], (fk) => fk.onDelete('cascade'));
}

export const pubsubMigrations: Migration[] = [
  {
    version: 1,
    name: 'pubsub_nodes',
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('pubsub_node')
        .addColumn('service', 'varchar(3071)', (c) => c.notNull())
        .addColumn('node', 'varchar(1023)', (c) => c.notNull())
        .addColumn('host', 'varchar(1023)')
        .addColumn('username', 'varchar(1023)')
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('created_at', millis, (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_node_pk', ['service', 'node'])
        .addForeignKeyConstraint('pubsub_node_account_fk', ['host', 'username'], 'account', ['host', 'username'], (fk) => fk.onDelete('cascade'))
        .execute();
      await createNodeTable(db, 'pubsub_item')
        .addColumn('id', 'varchar(1023)', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('publisher', 'varchar(3071)', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('published_at', millis, (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_item_pk', ['service', 'node', 'id'])
        .execute();
      await db.schema.createIndex('pubsub_item_seq').on('pubsub_item').columns(['service', 'node', 'seq']).execute();
      await createNodeTable(db, 'pubsub_subscription')
        .addColumn('jid', 'varchar(3071)', (c) => c.notNull())
        .addColumn('subid', 'varchar(64)', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_subscription_pk', ['service', 'node', 'jid'])
        .execute();
      await createNodeTable(db, 'pubsub_affiliation')
        .addColumn('jid', 'varchar(3071)', (c) => c.notNull())
        .addColumn('affiliation', 'varchar(16)', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_affiliation_pk', ['service', 'node', 'jid'])
        .execute();
    },
  },
];

export interface StoredItem {
  id: string;
  publisher: string;
  payload: string;
}

/** A page of items (XEP-0059): the first one's position among all, and how many there are. */
export interface ItemPage {
  items: StoredItem[];
  index: number | undefined;
  count: number;
}

export type Affiliation = 'owner' | 'publisher' | 'member' | 'outcast';

/** The account a PEP service belongs to, for the foreign key. */
export interface NodeAccount {
  host: string;
  username: string;
}

export class PubsubStore {
  private readonly db: Kysely<Database & PubsubTables>;

  constructor(private readonly storage: Storage) {
    this.db = storage.tables<PubsubTables>();
  }

  async config(service: string, node: string): Promise<NodeConfig | undefined> {
    const row = await this.db.selectFrom('pubsub_node').select('config').where('service', '=', service).where('node', '=', node).executeTakeFirst();
    return row && (JSON.parse(row.config) as NodeConfig);
  }

  /** The service's nodes with their configurations, by name. */
  async nodes(service: string): Promise<Map<string, NodeConfig>> {
    const rows = await this.db.selectFrom('pubsub_node').select(['node', 'config']).where('service', '=', service).orderBy('node').execute();
    return new Map(rows.map((r) => [r.node, JSON.parse(r.config) as NodeConfig]));
  }

  /** Creates a node (with `owner` affiliated as its owner, if given); 'exists' or 'full' when the service has it or `maxNodes` nodes. */
  async create(service: string, node: string, config: NodeConfig, account: NodeAccount | undefined, maxNodes: number, owner?: string): Promise<'created' | 'exists' | 'full'> {
    return this.db.transaction().execute(async (trx) => {
      if (account && this.storage.driver === 'postgres') {
        await trx.selectFrom('account').select('host').where('host', '=', account.host).where('username', '=', account.username).forUpdate().execute();
      }
      const have = await trx.selectFrom('pubsub_node').select('node').where('service', '=', service).execute();
      if (have.some((r) => r.node === node)) return 'exists';
      if (have.length >= maxNodes) return 'full';
      await trx
        .insertInto('pubsub_node')
        .values({ service, node, host: account?.host ?? null, username: account?.username ?? null, config: JSON.stringify(config), created_at: Date.now() })
        .execute();
      if (owner !== undefined) await trx.insertInto('pubsub_affiliation').values({ service, node, jid: owner, affiliation: 'owner' }).execute();
      return 'created';
    });
  }

  async configure(service: string, node: string, config: NodeConfig, keep: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('pubsub_node')
        .set({ config: JSON.stringify(config) })
        .where('service', '=', service)
        .where('node', '=', node)
        .execute();
      await this.trim(trx, service, node, keep);
    });
  }

  /** Deletes a node with everything in it; false when there was none. */
  async delete(service: string, node: string): Promise<boolean> {
    const result = await this.db.deleteFrom('pubsub_node').where('service', '=', service).where('node', '=', node).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /**
   * Stores an item (replacing one with its id) as the node's newest, then keeps the newest
   * `keep` items. Node rows are locked on PostgreSQL, so concurrent publishes get distinct seqs.
   */
  async publish(service: string, node: string, item: StoredItem, keep: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      if (this.storage.driver === 'postgres') {
        await trx.selectFrom('pubsub_node').select('node').where('service', '=', service).where('node', '=', node).forUpdate().execute();
      }
      const top = await trx
        .selectFrom('pubsub_item')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .where('service', '=', service)
        .where('node', '=', node)
        .executeTakeFirst();
      const seq = Number(top?.seq ?? 0) + 1;
      await trx
        .insertInto('pubsub_item')
        .values({ service, node, ...item, seq, published_at: Date.now() })
        .onConflict((oc) => oc.columns(['service', 'node', 'id']).doUpdateSet({ seq, publisher: item.publisher, payload: item.payload, published_at: Date.now() }))
        .execute();
      await this.trim(trx, service, node, keep);
    });
  }

  private async trim(db: Kysely<Database & PubsubTables>, service: string, node: string, keep: number): Promise<void> {
    const old = await db
      .selectFrom('pubsub_item')
      .select('id')
      .where('service', '=', service)
      .where('node', '=', node)
      .orderBy('seq', 'desc')
      .offset(keep)
      .limit(1_000_000)
      .execute();
    if (old.length === 0) return;
    await db
      .deleteFrom('pubsub_item')
      .where('service', '=', service)
      .where('node', '=', node)
      .where(
        'id',
        'in',
        old.map((r) => r.id),
      )
      .execute();
  }

  /** Items, oldest first: those with `ids`, or the newest `max`, or all. */
  /** One page of a node's items, oldest first (XEP-0059); undefined when `after`/`before` names no item. */
  async page(service: string, node: string, rsm: RsmRequest, pageSize: number): Promise<ItemPage | undefined> {
    const ofNode = () => this.db.selectFrom('pubsub_item').where('service', '=', service).where('node', '=', node);
    const countBelow = async (seq?: number) => {
      const query = seq === undefined ? ofNode() : ofNode().where('seq', '<', seq);
      return Number((await query.select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);
    };
    const seqOf = async (id: string) => (await ofNode().select('seq').where('id', '=', id).executeTakeFirst())?.seq;
    const max = rsm.max ?? pageSize;
    const columns = ofNode().select(['id', 'publisher', 'payload', 'seq']);
    let rows: { id: string; publisher: string; payload: string; seq: number }[];
    if (rsm.after !== undefined) {
      const after = await seqOf(rsm.after);
      if (after === undefined) return undefined;
      rows = await columns.where('seq', '>', after).orderBy('seq', 'asc').limit(max).execute();
    } else if (rsm.before !== undefined) {
      const before = rsm.before === '' ? undefined : await seqOf(rsm.before);
      if (rsm.before !== '' && before === undefined) return undefined;
      const query = before === undefined ? columns : columns.where('seq', '<', before);
      rows = (await query.orderBy('seq', 'desc').limit(max).execute()).reverse();
    } else {
      rows = await columns.orderBy('seq', 'asc').limit(max).execute();
    }
    const first = rows[0];
    return {
      items: rows.map(({ id, publisher, payload }) => ({ id, publisher, payload })),
      index: first === undefined ? undefined : await countBelow(first.seq),
      count: await countBelow(),
    };
  }

  async items(service: string, node: string, options: { ids?: string[]; max?: number } = {}): Promise<StoredItem[]> {
    let query = this.db.selectFrom('pubsub_item').select(['id', 'publisher', 'payload', 'seq']).where('service', '=', service).where('node', '=', node);
    if (options.ids) {
      if (options.ids.length === 0) return [];
      query = query.where('id', 'in', options.ids);
    }
    const rows = await query
      .orderBy('seq', 'desc')
      .limit(options.max ?? 1_000_000)
      .execute();
    return rows.reverse().map(({ id, publisher, payload }) => ({ id, publisher, payload }));
  }

  /** Removes one item; false when there was none. */
  async retract(service: string, node: string, id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('pubsub_item').where('service', '=', service).where('node', '=', node).where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async purge(service: string, node: string): Promise<void> {
    await this.db.deleteFrom('pubsub_item').where('service', '=', service).where('node', '=', node).execute();
  }

  async subscribe(service: string, node: string, jid: string, subid: string): Promise<string> {
    const existing = await this.subscription(service, node, jid);
    if (existing) return existing;
    await this.db.insertInto('pubsub_subscription').values({ service, node, jid, subid }).execute();
    return subid;
  }

  async subscription(service: string, node: string, jid: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('pubsub_subscription').select('subid').where('service', '=', service).where('node', '=', node).where('jid', '=', jid).executeTakeFirst();
    return row?.subid;
  }

  async unsubscribe(service: string, node: string, jid: string): Promise<boolean> {
    const result = await this.db.deleteFrom('pubsub_subscription').where('service', '=', service).where('node', '=', node).where('jid', '=', jid).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Explicit subscriptions: of a node, or (node undefined) of every node of the service. */
  async subscriptions(service: string, node?: string): Promise<{ node: string; jid: string; subid: string }[]> {
    let query = this.db.selectFrom('pubsub_subscription').select(['node', 'jid', 'subid']).where('service', '=', service);
    if (node !== undefined) query = query.where('node', '=', node);
    return query.orderBy('node').orderBy('jid').execute();
  }

  /** Stored affiliations (the PEP owner's is implicit): of a node, or of every node. */
  async affiliations(service: string, node?: string): Promise<{ node: string; jid: string; affiliation: Affiliation }[]> {
    let query = this.db.selectFrom('pubsub_affiliation').select(['node', 'jid', 'affiliation']).where('service', '=', service);
    if (node !== undefined) query = query.where('node', '=', node);
    const rows = await query.orderBy('node').orderBy('jid').execute();
    return rows.map((r) => ({ ...r, affiliation: r.affiliation as Affiliation }));
  }

  /** Sets (or with 'none', removes) affiliations of a node, in one transaction. */
  async setAffiliations(service: string, node: string, changes: [jid: string, affiliation: Affiliation | 'none'][]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const [jid, affiliation] of changes) {
        await trx.deleteFrom('pubsub_affiliation').where('service', '=', service).where('node', '=', node).where('jid', '=', jid).execute();
        if (affiliation !== 'none') await trx.insertInto('pubsub_affiliation').values({ service, node, jid, affiliation }).execute();
        if (affiliation === 'outcast') await trx.deleteFrom('pubsub_subscription').where('service', '=', service).where('node', '=', node).where('jid', '=', jid).execute();
      }
    });
  }
}

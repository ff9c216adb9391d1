// Storage contract: the same cases on SQLite and PostgreSQL.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { sql } from 'kysely';
import { openStorage, type Storage, type StorageOptions } from '../../src/storage/database.js';
import { AccountStore, AccountExistsError, type StoredCredential } from '../../src/storage/accounts.js';
import { SchemaTooNewError } from '../../src/storage/migrations.js';
import { coreMigrations } from '../../src/storage/core-migrations.js';
import { POSTGRES_URL, postgresReachable, useService } from '../helpers/services.js';

const credential = (mechanism: string, tag: string): StoredCredential => ({
  mechanism,
  salt: Buffer.from(`salt-${tag}`).toString('base64'),
  iterations: 4096,
  storedKey: Buffer.from(`stored-${tag}`).toString('base64'),
  serverKey: Buffer.from(`server-${tag}`).toString('base64'),
});

type Backend = { name: string; options: () => StorageOptions; cleanup: () => Promise<void> };

function sqliteBackend(): Backend {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-contract-'));
  return {
    name: 'sqlite',
    options: () => ({ driver: 'sqlite', sqlitePath: path.join(dir, 'db.sqlite'), sqliteSynchronous: 'normal', postgresUrl: '', postgresSchema: 'public', poolSize: 1 }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function postgresBackend(): Backend {
  // Each run gets its own schema, so runs never see each other's rows.
  const schema = `starling_test_${randomBytes(4).toString('hex')}`;
  const options = (): StorageOptions => ({ driver: 'postgres', sqlitePath: '', sqliteSynchronous: 'full', postgresUrl: POSTGRES_URL, postgresSchema: schema, poolSize: 4 });
  return {
    name: 'postgres',
    options,
    cleanup: async () => {
      const s = await openStorage({ ...options(), postgresSchema: 'public' }, { migrate: false });
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(s.db);
      await s.close();
    },
  };
}

/** Rows anywhere that belong to (host, username): what deleting an account must leave at zero. */
async function rowsOwnedBy(storage: Storage, host: string, username: string): Promise<number> {
  let total = 0;
  for (const table of ['account', 'account_credential', 'user_data'] as const) {
    const row = await storage.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirstOrThrow();
    total += Number(row.n);
  }
  return total;
}

async function contract(t: Test, backend: Backend) {
  const storage = await openStorage(backend.options());
  t.teardown(async () => {
    await storage.close();
    await backend.cleanup();
  });
  const accounts = new AccountStore(storage.db);

  t.test('migrations are recorded and not run twice', async (t) => {
    const rows = await storage.db.selectFrom('schema_migration').select(['component', 'version', 'name']).orderBy('version').execute();
    t.same(
      rows.map((r) => `${r.component}/${r.version}/${r.name}`),
      coreMigrations.map((m) => `core/${m.version}/${m.name}`),
    );
    t.same(await storage.migrate('core', coreMigrations), [], 'nothing applied the second time');
  });

  t.test('a database newer than the code refuses to start', async (t) => {
    await storage.db.insertInto('schema_migration').values({ component: 'core', version: 999, name: 'future', applied_at: Date.now() }).execute();
    await t.rejects(openStorage(backend.options()), SchemaTooNewError);
    await storage.db.deleteFrom('schema_migration').where('version', '=', 999).execute();
  });

  t.test('create, exists, list per host', async (t) => {
    await accounts.create('a.example', 'zed', [credential('SCRAM-SHA-1', '1'), credential('SCRAM-SHA-256', '256')]);
    await accounts.create('a.example', 'amy', []);
    await accounts.create('b.example', 'zed', []);
    t.ok(await accounts.exists('a.example', 'zed'));
    t.notOk(await accounts.exists('a.example', 'nobody'));
    t.same(await accounts.list('a.example'), ['amy', 'zed'], 'sorted, only that host');
    t.same(await accounts.list('b.example'), ['zed']);
  });

  t.test('disabling and re-enabling an account, counting a host', async (t) => {
    t.notOk(await accounts.disabled('a.example', 'amy'), 'enabled when created');
    t.ok(await accounts.setDisabled('a.example', 'amy', true));
    t.ok(await accounts.disabled('a.example', 'amy'));
    t.notOk(await accounts.disabled('b.example', 'zed'), 'only that account');
    t.ok(await accounts.setDisabled('a.example', 'amy', false));
    t.notOk(await accounts.disabled('a.example', 'amy'));
    t.notOk(await accounts.setDisabled('a.example', 'nobody', true), 'no such account');
    t.notOk(await accounts.disabled('a.example', 'nobody'));
    t.equal(await accounts.count('a.example'), 2);
    t.equal(await accounts.count('c.example'), 0);
  });

  t.test('a second account with the same name is refused', async (t) => {
    await t.rejects(accounts.create('a.example', 'zed', []), AccountExistsError);
  });

  t.test('credentials round-trip and are replaced whole', async (t) => {
    t.same(await accounts.credential('a.example', 'zed', 'SCRAM-SHA-256'), credential('SCRAM-SHA-256', '256'));
    t.equal(await accounts.credential('a.example', 'zed', 'SCRAM-SHA-512'), undefined);
    t.ok(await accounts.setCredentials('a.example', 'zed', [credential('SCRAM-SHA-256', 'new')]));
    t.same(await accounts.credential('a.example', 'zed', 'SCRAM-SHA-256'), credential('SCRAM-SHA-256', 'new'));
    t.equal(await accounts.credential('a.example', 'zed', 'SCRAM-SHA-1'), undefined, 'the old SHA-1 row is gone');
    t.notOk(await accounts.setCredentials('a.example', 'nobody', []), 'no such account');
  });

  t.test('a password change drops credential-bound data (FAST tokens) and nothing else', async (t) => {
    await accounts.create('a.example', 'tok', []);
    const row = (store: string) => ({ host: 'a.example', username: 'tok', store, key: 'k', value: 'v', expires_at: null });
    await storage.db
      .insertInto('user_data')
      .values([row('credential:fast'), row('settings')])
      .execute();
    await accounts.setCredentials('a.example', 'tok', [credential('SCRAM-SHA-256', 'x')]);
    const left = await storage.db.selectFrom('user_data').select('store').where('username', '=', 'tok').execute();
    t.same(
      left.map((r) => r.store),
      ['settings'],
    );
    await accounts.delete('a.example', 'tok');
  });

  t.test('deleting an account removes every row it owns, and nobody else’s', async (t) => {
    await storage.db.insertInto('user_data').values({ host: 'a.example', username: 'zed', store: 'test', key: 'k', value: 'v', expires_at: null }).execute();
    await storage.db.insertInto('user_data').values({ host: 'b.example', username: 'zed', store: 'test', key: 'k', value: 'v', expires_at: null }).execute();
    t.ok((await rowsOwnedBy(storage, 'a.example', 'zed')) > 0);
    t.ok(await accounts.delete('a.example', 'zed'));
    t.equal(await rowsOwnedBy(storage, 'a.example', 'zed'), 0, 'no row left');
    t.ok((await rowsOwnedBy(storage, 'b.example', 'zed')) >= 2, "the other host's zed is untouched");
    t.notOk(await accounts.delete('a.example', 'zed'), 'deleting twice says there was nothing');
  });

  t.test('user_data rows need an account', async (t) => {
    await t.rejects(
      storage.db.insertInto('user_data').values({ host: 'a.example', username: 'ghost', store: 's', key: 'k', value: 'v', expires_at: null }).execute(),
      'foreign key enforced',
    );
  });

  t.test('unicode usernames and large timestamps', async (t) => {
    await accounts.create('a.example', 'fußball', []);
    t.ok(await accounts.exists('a.example', 'fußball'));
    const big = 4_102_444_800_000; // 2100-01-01, beyond 32 bits
    await storage.db.insertInto('user_data').values({ host: 'a.example', username: 'fußball', store: 's', key: 'k', value: 'v', expires_at: big }).execute();
    const row = await storage.db.selectFrom('user_data').select('expires_at').where('username', '=', 'fußball').executeTakeFirstOrThrow();
    t.equal(row.expires_at, big, 'bigint read back as a number');
  });
}

t.test('sqlite', (t) => contract(t, sqliteBackend()));

t.test('postgres', async (t) => {
  if (!(await useService(t, 'PostgreSQL', postgresReachable, POSTGRES_URL))) return;
  await contract(t, postgresBackend());
});

t.test('postgres: the nodes of a cluster starting together on a fresh schema migrate it once', async (t) => {
  if (!(await useService(t, 'PostgreSQL', postgresReachable, POSTGRES_URL))) return;
  const backend = postgresBackend();
  t.teardown(() => backend.cleanup());
  const nodes = await Promise.all([1, 2, 3].map(() => openStorage(backend.options())));
  t.teardown(() => Promise.all(nodes.map((s) => s.close())));
  const extra = [
    {
      version: 1,
      name: 'table',
      up: (db: Storage['db']) =>
        db.schema
          .createTable('race_probe')
          .addColumn('x', 'integer')
          .execute()
          .then(() => {}),
    },
  ];
  const applied = await Promise.all(nodes.map((s) => s.migrate('race', extra)));
  t.same(applied.flat(), ['race/001_table'], 'a module migration too: one node applied it, the others found it done');
  const rows = await nodes[0]!.db.selectFrom('schema_migration').select('component').where('component', '=', 'core').execute();
  t.equal(rows.length, coreMigrations.length, 'each core migration recorded once');
});

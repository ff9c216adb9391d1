// The archive store kind (src/storage/archive/store.ts): the same cases on SQLite and PostgreSQL.
// Keyset paging both ways over 1,000 messages (with ties on the millisecond), the filters of
// XEP-0313 (with, start, end, after-id, before-id, ids), unknown ids, bounded counts, metadata,
// retention purge, and the cascade on account deletion. More of the kind (group commit, queues,
// service archives) in store-kinds.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { sql } from 'kysely';
import { openStorage, type StorageOptions } from '../../src/storage/database.js';
import { AccountStore } from '../../src/storage/accounts.js';
import { IdGenerator, idTime } from '../../src/storage/archive/ids.js';
import { ArchiveItemNotFound, ArchiveStore, type ArchivedMessage, type PageRequest } from '../../src/storage/archive/store.js';
import { POSTGRES_URL, postgresReachable, useService } from '../helpers/services.js';

const HOST = 'a.example';
const T0 = Date.UTC(2024, 0, 1);
const N = 1000;
const CONTACTS = ['bob@b.example', 'carol@c.example', 'dave@a.example'];

type Backend = { name: string; options: StorageOptions; cleanup: () => Promise<void> };

function sqliteBackend(): Backend {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-mam-'));
  return {
    name: 'sqlite',
    options: { driver: 'sqlite', sqlitePath: path.join(dir, 'db.sqlite'), sqliteSynchronous: 'normal', postgresUrl: '', postgresSchema: 'public', poolSize: 1 },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function postgresBackend(): Backend {
  const schema = `starling_mam_${randomBytes(4).toString('hex')}`;
  const options: StorageOptions = { driver: 'postgres', sqlitePath: '', sqliteSynchronous: 'full', postgresUrl: POSTGRES_URL, postgresSchema: schema, poolSize: 4 };
  return {
    name: 'postgres',
    options,
    cleanup: async () => {
      const s = await openStorage({ ...options, postgresSchema: 'public' }, { migrate: false });
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(s.db);
      await s.close();
    },
  };
}

interface Fixture {
  id: string;
  ts: number;
  with: string;
  resource: string;
}

async function contract(t: Test, backend: Backend) {
  const storage = await openStorage(backend.options);
  t.teardown(async () => {
    await storage.close();
    await backend.cleanup();
  });
  const store = new ArchiveStore(storage, 'mam');
  const accounts = new AccountStore(storage.db);
  await accounts.create(HOST, 'alice', []);
  await accounts.create(HOST, 'bob', []);
  await accounts.create('other.example', 'alice', []);

  // 1,000 messages, three per millisecond (ties ordered by id), with three contacts and two
  // of bob's resources.
  let clock = T0;
  const gen = new IdGenerator(() => clock);
  const all: Fixture[] = [];
  const rows: Omit<ArchivedMessage, 'ts'>[] = [];
  for (let i = 0; i < N; i++) {
    clock = T0 + Math.floor(i / 3) * 1000;
    const id = gen.next();
    const contact = CONTACTS[i % CONTACTS.length]!;
    const resource = contact.startsWith('bob') ? (i % 2 === 0 ? 'phone' : 'laptop') : '';
    all.push({ id, ts: clock, with: contact, resource });
    rows.push({ id, withBare: contact, withResource: resource, direction: i % 2 === 0 ? 'in' : 'out', stanza: `<message id='m${i}'><body>${i}</body></message>` });
  }
  await store.appendMany(HOST, 'alice', rows, 128);
  // Someone else's archive, and the same username on another host: never in alice's results.
  clock = T0 + 500_000;
  await store.append(HOST, 'bob', { id: gen.next(), withBare: 'alice@a.example', withResource: '', direction: 'in', stanza: '<message/>' });
  await store.append('other.example', 'alice', { id: gen.next(), withBare: 'bob@b.example', withResource: '', direction: 'in', stanza: '<message/>' });

  const page = (req: Partial<PageRequest>) => store.page(HOST, 'alice', { max: 100, countLimit: 10_000, ...req });
  const ids = (items: { id: string }[]) => items.map((m) => m.id);

  t.test('ids are time-ordered and carry their time', async (t) => {
    t.same(
      all.map((m) => idTime(m.id)),
      all.map((m) => m.ts),
    );
    const sorted = [...all].map((m) => m.id).sort();
    t.same(
      sorted,
      all.map((m) => m.id),
      'ids sort in the order they were issued, ties included',
    );
    t.equal(idTime('not-an-id'), undefined);
  });

  t.test('one message round-trips', async (t) => {
    const m = await store.get(HOST, 'alice', all[5]!.id);
    t.same(m, { id: all[5]!.id, ts: all[5]!.ts, withBare: CONTACTS[2], withResource: '', direction: 'out', stanza: "<message id='m5'><body>5</body></message>" });
    t.equal(await store.get(HOST, 'alice', 'nope'), undefined);
    t.equal(await store.get(HOST, 'bob', all[5]!.id), undefined, "not in bob's archive");
  });

  t.test('paging forwards over the whole archive', async (t) => {
    const seen: string[] = [];
    let after: string | undefined;
    for (let n = 0; ; n++) {
      const p = await page({ after });
      t.equal(p.count, N, 'exact count');
      t.equal(p.index, n * 100, 'index of the first item');
      seen.push(...ids(p.items));
      if (p.complete) {
        t.equal(n, 9, 'ten pages');
        break;
      }
      t.equal(p.items.length, 100);
      after = p.items[p.items.length - 1]!.id;
    }
    t.same(seen, ids(all), 'every message once, in order');
  });

  t.test('paging backwards from the last page', async (t) => {
    const seen: string[] = [];
    let before = '';
    for (let n = 0; ; n++) {
      const p = await page({ before });
      t.equal(p.count, N);
      t.equal(p.index, N - (n + 1) * 100);
      seen.unshift(...ids(p.items));
      if (p.complete) break;
      before = p.items[0]!.id;
    }
    t.same(seen, ids(all), 'every message once; each page in chronological order');
    const last = await page({ before: '', max: 7 });
    t.same(ids(last.items), ids(all.slice(-7)), 'the last page is the newest');
    t.equal(last.index, N - 7);
    t.notOk(last.complete);
  });

  t.test('with: a bare JID matches every resource, a full JID only its own', async (t) => {
    const bob = all.filter((m) => m.with === 'bob@b.example');
    const p = await page({ with: { bare: 'bob@b.example' }, max: 1000 });
    t.same(ids(p.items), ids(bob));
    t.ok(p.complete);
    t.equal(p.count, bob.length);
    const phone = await page({ with: { bare: 'bob@b.example', resource: 'phone' }, max: 1000 });
    t.same(ids(phone.items), ids(bob.filter((m) => m.resource === 'phone')));
    t.equal((await page({ with: { bare: 'nobody@x.example' } })).items.length, 0);
    // Paging inside a conversation.
    const second = await page({ with: { bare: 'bob@b.example' }, max: 10, after: bob[9]!.id });
    t.same(ids(second.items), ids(bob.slice(10, 20)));
    t.equal(second.index, 10);
    const back = await page({ with: { bare: 'bob@b.example' }, max: 10, before: bob[30]!.id });
    t.same(ids(back.items), ids(bob.slice(20, 30)));
    t.equal(back.index, 20);
  });

  t.test('start and end are inclusive', async (t) => {
    const start = T0 + 10_000;
    const end = T0 + 20_000;
    const inRange = all.filter((m) => m.ts >= start && m.ts <= end);
    const p = await page({ start, end, max: 1000 });
    t.same(ids(p.items), ids(inRange));
    t.equal(inRange.length, 33, '11 milliseconds of 3');
    const paged = await page({ start, end, max: 5, after: inRange[2]!.id });
    t.same(ids(paged.items), ids(inRange.slice(3, 8)), 'RSM inside a time range');
    t.equal(paged.index, 3);
    // An RSM after before the start: the start wins.
    const early = await page({ start, end, max: 5, after: all[0]!.id });
    t.same(ids(early.items), ids(inRange.slice(0, 5)));
    const lastOfRange = await page({ start, end, max: 5, before: '' });
    t.same(ids(lastOfRange.items), ids(inRange.slice(-5)));
  });

  t.test('after-id and before-id bound the result set', async (t) => {
    const p = await page({ afterId: all[100]!.id, beforeId: all[110]!.id });
    t.same(ids(p.items), ids(all.slice(101, 110)), 'strictly between');
    t.equal(p.count, 9);
    t.ok(p.complete);
    const last = await page({ afterId: all[100]!.id, beforeId: all[200]!.id, before: '', max: 10 });
    t.same(ids(last.items), ids(all.slice(190, 200)), 'the last page of that set');
    t.equal(last.index, 89);
  });

  t.test('ids: just those messages, in archive order', async (t) => {
    const wanted = [all[500]!.id, all[3]!.id, all[999]!.id];
    const p = await page({ ids: wanted });
    t.same(ids(p.items), [all[3]!.id, all[500]!.id, all[999]!.id]);
    t.equal(p.count, 3);
    const filtered = await page({ ids: wanted, end: all[500]!.ts });
    t.same(ids(filtered.items), [all[3]!.id, all[500]!.id], 'with the other filters');
  });

  t.test('unknown ids are item-not-found', async (t) => {
    const bobs = await store.page(HOST, 'bob', { max: 1, countLimit: 0 });
    const foreign = bobs.items[0]!.id;
    for (const req of [{ after: foreign }, { before: foreign }, { afterId: foreign }, { beforeId: foreign }, { ids: [all[0]!.id, foreign] }, { after: 'garbage' }]) {
      await t.rejects(page(req), ArchiveItemNotFound, JSON.stringify(Object.keys(req)));
    }
  });

  t.test('counts are bounded', async (t) => {
    const capped = await store.page(HOST, 'alice', { max: 10, countLimit: 50, after: all[10]!.id });
    t.equal(capped.count, undefined, 'more than the limit: no count');
    t.equal(capped.index, undefined, 'and no index');
    t.same(ids(capped.items), ids(all.slice(11, 21)));
    const small = await store.page(HOST, 'alice', { max: 10, countLimit: 50, start: T0, end: T0 + 9_000 });
    t.equal(small.count, 30, 'a small set is still counted');
    const none = await store.page(HOST, 'alice', { max: 10, countLimit: 0 });
    t.equal(none.count, undefined, 'countLimit 0: never');
  });

  t.test('max 0: the count alone', async (t) => {
    const p = await page({ max: 0 });
    t.same(p.items, []);
    t.equal(p.count, N);
    t.notOk(p.complete);
    const empty = await page({ max: 0, with: { bare: 'nobody@x.example' } });
    t.equal(empty.count, 0);
    t.ok(empty.complete);
  });

  t.test('metadata: the first and last messages', async (t) => {
    t.same(await store.ends(HOST, 'alice'), { first: { ts: all[0]!.ts, id: all[0]!.id }, last: { ts: all[N - 1]!.ts, id: all[N - 1]!.id } });
    await accounts.create(HOST, 'empty', []);
    t.equal(await store.ends(HOST, 'empty'), undefined);
  });

  t.test('the query plans use the indexes', { skip: backend.name !== 'sqlite' && 'SQLite plans only' }, async (t) => {
    // The shapes of the store's queries, literals in place of parameters.
    const plan = async (q: string) => {
      const rows = await sql.raw<{ detail: string }>(`explain query plan ${q}`).execute(storage.db);
      return rows.rows.map((r) => r.detail).join(' | ');
    };
    const main = await plan(`select * from archive where host = 'a' and username = 'b' and store = 'm' and (ts, id) > (1, 'x') order by ts, id limit 51`);
    t.match(main, /USING INDEX sqlite_autoindex_archive_1 \(host=\? AND username=\? AND store=\? AND \(ts,id\)>\(\?,\?\)\)/, main);
    t.notMatch(main, /TEMP B-TREE/, 'no sort');
    const back = await plan(`select * from archive where host = 'a' and username = 'b' and store = 'm' and (ts, id) < (1, 'x') order by ts desc, id desc limit 51`);
    t.match(back, /USING INDEX sqlite_autoindex_archive_1/, back);
    t.notMatch(back, /TEMP B-TREE/);
    const conv = await plan(`select * from archive where host = 'a' and username = 'b' and store = 'm' and with_bare = 'c' and (ts, id) > (1, 'x') order by ts, id limit 51`);
    t.match(conv, /USING INDEX archive_with_idx \(host=\? AND username=\? AND store=\? AND with_bare=\? AND \(ts,id\)>\(\?,\?\)\)/, conv);
    t.notMatch(conv, /TEMP B-TREE/);
  });

  t.test('retention: the oldest messages go, in batches, nobody else’s', async (t) => {
    const cutoff = all[250]!.ts; // strictly older: messages 0..248 (ts < cutoff)
    const older = all.filter((m) => m.ts < cutoff).length;
    const deleted = await store.purgeBefore(HOST, cutoff, 40);
    t.equal(deleted, older);
    const first = await page({ max: 1 });
    t.equal(first.items[0]!.id, all[older]!.id, 'the archive now starts at the cutoff');
    t.equal(first.count, N - older);
    t.equal((await store.page('other.example', 'alice', { max: 10, countLimit: 100 })).count, 1, 'another host untouched');
    t.equal((await store.page(HOST, 'bob', { max: 10, countLimit: 100 })).count, 1, 'bob (newer) untouched');
    t.equal(await store.purgeBefore(HOST, cutoff), 0, 'nothing left to purge');
  });

  t.test('group commit: of writes queued together a bad one fails alone, the rest commit in order', async (t) => {
    const store2 = new ArchiveStore(storage, 'group');
    clock = T0 + 600_000;
    const item = (n: number) => ({ id: gen.next(), withBare: 'carol@c.example', withResource: '', direction: 'in' as const, stanza: `<message id='g${n}'/>` });
    const writes = [
      store2.append(HOST, 'bob', item(1)),
      store2.append(HOST, 'nobody', item(2)),
      store2.appendWithin(HOST, 'bob', item(3), 10),
      store2.append(HOST, 'bob', item(4)),
      store2.append('other.example', 'alice', item(5)),
    ];
    const results = await Promise.allSettled(writes);
    t.same(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
      'only the write for an account that does not exist fails',
    );
    const bobs = await store2.page(HOST, 'bob', { max: 10, countLimit: 100 });
    t.same(
      bobs.items.map((m) => m.stanza),
      ["<message id='g1'/>", "<message id='g3'/>", "<message id='g4'/>"],
      'in the order queued, a bounded append among the plain ones',
    );
    t.equal((await store2.page('other.example', 'alice', { max: 10, countLimit: 100 })).count, 1);
  });

  t.test('deleting the account deletes its archive', async (t) => {
    t.ok(await accounts.delete(HOST, 'alice'));
    const left = await storage
      .tables<{ archive: { host: string; username: string } }>()
      .selectFrom('archive')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('host', '=', HOST)
      .where('username', '=', 'alice')
      .executeTakeFirstOrThrow();
    t.equal(Number(left.n), 0);
    t.equal((await store.page('other.example', 'alice', { max: 10, countLimit: 100 })).count, 1, 'the other host’s alice keeps hers');
    await t.rejects(store.append(HOST, 'alice', { id: gen.next(), withBare: 'x@y', withResource: '', direction: 'in', stanza: '<message/>' }), 'rows need an account');
  });
}

t.test('sqlite', (t) => contract(t, sqliteBackend()));

t.test('postgres', async (t) => {
  if (!(await useService(t, 'PostgreSQL', postgresReachable, POSTGRES_URL))) return;
  await contract(t, postgresBackend());
});

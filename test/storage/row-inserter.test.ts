// The group commit's PostgreSQL inserter (src/storage/archive/row-inserter.ts): rows go in as
// one array per column (INSERT ... SELECT FROM unnest), and come back exactly as written, the
// values that need quoting in an array literal included; a batch it cannot type takes the
// VALUES way, with the same result.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { sql } from 'kysely';
import { openStorage, type StorageOptions } from '../../src/storage/database.js';
import { unnestInserter, valuesInserter } from '../../src/storage/archive/row-inserter.js';
import { POSTGRES_URL, postgresReachable, useService } from '../helpers/services.js';

interface Row {
  n: number;
  label: string | null;
  score?: number | null;
  flag?: boolean;
  note?: string;
}

const AWKWARD = [
  '',
  'NULL',
  'null',
  '"quoted"',
  'back\\slash',
  '{braces}',
  'a,b',
  "it's",
  ' spaced ',
  'line\nbreak',
  'tab\there',
  'é ü 中文 😀',
  '<message xmlns="jabber:client"><body>&amp; &lt;</body></message>',
  'x'.repeat(20_000),
];

t.test('postgres', async (t) => {
  if (!(await useService(t, 'PostgreSQL', postgresReachable, POSTGRES_URL))) return;
  const schema = `starling_rows_${randomBytes(4).toString('hex')}`;
  const options: StorageOptions = { driver: 'postgres', sqlitePath: '', sqliteSynchronous: 'full', postgresUrl: POSTGRES_URL, postgresSchema: schema, poolSize: 2 };
  const storage = await openStorage(options, { migrate: false });
  const db = storage.tables<{ rows: Row }>();
  t.teardown(async () => {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db);
    await storage.close();
  });
  await db.schema
    .createTable('rows')
    .addColumn('n', 'bigint', (c) => c.primaryKey())
    .addColumn('label', 'text')
    .addColumn('score', 'double precision')
    .addColumn('flag', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('note', 'varchar(20)', (c) => c.notNull().defaultTo('default'))
    .execute();
  const read = (from: number, to: number) => db.selectFrom('rows').selectAll().where('n', '>=', from).where('n', '<', to).orderBy('n').execute();

  t.test('strings, nulls, integers, fractions and booleans round-trip', async (t) => {
    const rows: Row[] = AWKWARD.map((label, i) => ({ n: i, label, score: i % 3 === 0 ? null : i + 0.25, flag: i % 2 === 0, note: `note ${i}` }));
    rows.push({ n: 1_000, label: null, score: 7, flag: true, note: '' });
    await unnestInserter.insert(db, 'rows', rows);
    t.same(await read(0, 2_000), rows);
  });

  t.test('more rows in one statement than VALUES could take', async (t) => {
    const rows: Row[] = Array.from({ length: 3_000 }, (_, i) => ({ n: 10_000 + i, label: `row ${i}`, score: i, flag: false, note: 'many' }));
    t.ok(rows.length > valuesInserter.maxRows && rows.length <= unnestInserter.maxRows);
    await unnestInserter.insert(db, 'rows', rows);
    t.same(await read(10_000, 20_000), rows);
  });

  t.test('rows without a column get its default (the VALUES way)', async (t) => {
    await unnestInserter.insert(db, 'rows', [
      { n: 30_000, label: 'all', score: 1, flag: true, note: 'given' },
      { n: 30_001, label: 'some' },
    ]);
    t.same(await read(30_000, 30_001 + 1), [
      { n: 30_000, label: 'all', score: 1, flag: true, note: 'given' },
      { n: 30_001, label: 'some', score: null, flag: false, note: 'default' },
    ]);
  });

  t.test('a column of mixed or unknown types, or of nulls only, takes the VALUES way', async (t) => {
    await unnestInserter.insert(db, 'rows', [
      { n: 40_000, label: null, score: null },
      { n: 40_001, label: null, score: null },
    ]);
    await unnestInserter.insert(db, 'rows', [
      { n: 40_002, label: 'x', score: 2 },
      { n: 40_003, label: 'y', score: '3.5' as unknown as number },
    ]);
    t.same(
      (await read(40_000, 40_004)).map((r) => [r.n, r.label, r.score]),
      [
        [40_000, null, null],
        [40_001, null, null],
        [40_002, 'x', 2],
        [40_003, 'y', 3.5],
      ],
    );
  });

  t.test('a bad row fails the whole statement, which writes nothing', async (t) => {
    await t.rejects(
      unnestInserter.insert(db, 'rows', [
        { n: 50_000, label: 'fine', note: 'short' },
        { n: 50_001, label: 'too long', note: 'x'.repeat(21) },
      ]),
      { code: '22001' },
    );
    await t.rejects(
      unnestInserter.insert(db, 'rows', [
        { n: 50_002, label: 'new' },
        { n: 0, label: 'a duplicate key' },
      ]),
      { code: '23505' },
    );
    t.same(await read(50_000, 60_000), []);
  });
});

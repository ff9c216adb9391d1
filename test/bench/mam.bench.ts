// Message archive (XEP-0313) at scale: one account with a large archive, then the latency of
// the pages clients ask for, through the store the server uses (ArchiveStore.page, with the
// module's default count_limit) plus the building of the result stanzas.
//
//   npx tsx test/bench/mam.bench.ts --db sqlite|postgres [--messages 1000000] [--contacts 50]
//                                   [--queries 200] [--page 50] [--keep] [--existing WHERE]
//
// SQLite: a fresh file under the system temp directory, deleted afterwards. PostgreSQL:
// STARLING_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test), in a schema of
// its own, dropped afterwards. --keep leaves the database (its file or schema is printed) and
// --existing FILE|SCHEMA measures the queries again on one kept earlier, without loading. The archive spans about two years, the messages spread over the
// contacts (a few talk a lot, most a little), ~350-byte stanzas. Loaded in transactions of
// 10,000 messages, multi-row INSERTs of 500, then ANALYZE.
//
// Measured (p50 / p99 / max wall time over --queries runs, each a different page; and the CPU
// time of this process per query, which on SQLite is nearly all the work, so a wall time far
// above it is time spent waiting for a CPU on a busy machine):
//   last page      RSM <before/> empty, max=page: what every client asks at login
//   after-id       RSM <after/> a random id: a page anywhere in the archive, paging forwards
//   before-id      RSM <before/> a random id: scrolling back from anywhere
//   with           'with' a random contact, RSM <after/> a random id of that conversation
//   with, last     'with' a random contact, its last page
//   time range     'start' a random time, 'end' a day later: the first page of that day
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { openStorage, type StorageOptions } from '../../src/storage/database.js';
import { AccountStore } from '../../src/storage/accounts.js';
import { MamConfig } from '../../modules/mam/index.js';
import { IdGenerator } from '../../src/storage/archive/ids.js';
import { resultMessage } from '../../src/storage/archive/query.js';
import { ArchiveStore, type ArchivedMessage, type PageRequest } from '../../src/storage/archive/store.js';
import { POSTGRES_URL } from '../helpers/services.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i !== -1 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const DB = arg('db', 'sqlite');
const MESSAGES = Number(arg('messages', '1000000'));
const CONTACTS = Number(arg('contacts', '50'));
const QUERIES = Number(arg('queries', '200'));
const PAGE = Number(arg('page', '50'));
const HOST = 'bench.example';
const USER = 'user';
const TX_SIZE = 10_000;
const INSERT_ROWS = 500;
const SPAN_MS = 2 * 365 * 86_400_000;
const T0 = Date.UTC(2023, 0, 1);
const COUNT_LIMIT = MamConfig.parse({}).count_limit;
const KEEP = process.argv.includes('--keep');
const EXISTING = arg('existing', '');

if (DB !== 'sqlite' && DB !== 'postgres') throw new Error('--db sqlite|postgres');

/** Small seeded PRNG (mulberry32): the same archive and the same queries every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = 'the a meeting build release lunch tomorrow link document parser test ok thanks sure maybe later tonight coffee train late see you soon 👍 ça marche привет'.split(
  ' ',
);

function stanza(rand: () => number, n: number, contact: string, out: boolean, resource: string): string {
  const words = Array.from({ length: 6 + Math.floor(rand() * 20) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ');
  const me = `${USER}@${HOST}/phone`;
  const them = `${contact}/${resource}`;
  const [from, to] = out ? [me, contact] : [them, `${USER}@${HOST}`];
  return (
    `<message from='${from}' to='${to}' type='chat' id='m${n.toString(36)}'>` +
    `<body>${words}</body><origin-id xmlns='urn:xmpp:sid:0' id='${randomBytes(8).toString('hex')}'/>` +
    `<markable xmlns='urn:xmpp:chat-markers:0'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>`
  );
}

/** Loads the archive; returns a line saying how long it took. */
async function load(store: ArchiveStore): Promise<string> {
  const rand = prng(42);
  const contacts = Array.from({ length: CONTACTS }, (_, i) => `contact${i}@example${i % 7}.org`);
  // Zipf-like weights: the first contacts get most of the traffic.
  const weights = contacts.map((_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const pickContact = () => {
    let r = rand() * total;
    for (let i = 0; i < weights.length; i++) if ((r -= weights[i]!) <= 0) return i;
    return weights.length - 1;
  };
  let clock = T0;
  const gen = new IdGenerator(() => clock);
  const step = SPAN_MS / MESSAGES;
  const started = Date.now();
  let batch: Omit<ArchivedMessage, 'ts'>[] = [];
  for (let n = 0; n < MESSAGES; n++) {
    // Bursts: some messages in the same millisecond as the previous one (ties), some far apart.
    clock += rand() < 0.3 ? 0 : Math.floor(rand() * step * 2);
    const c = pickContact();
    const out = rand() < 0.5;
    const resource = ['phone', 'laptop', 'tablet'][Math.floor(rand() * 3)]!;
    batch.push({ id: gen.next(), withBare: contacts[c]!, withResource: out ? '' : resource, direction: out ? 'out' : 'in', stanza: stanza(rand, n, contacts[c]!, out, resource) });
    if (batch.length === TX_SIZE || n === MESSAGES - 1) {
      await store.appendMany(HOST, USER, batch, INSERT_ROWS);
      batch = [];
      if ((n + 1) % 100_000 === 0) process.stderr.write(`  loaded ${n + 1} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    }
  }
  const ms = Date.now() - started;
  return `load: ${(ms / 1000).toFixed(1)} s (${Math.round(MESSAGES / (ms / 1000)).toLocaleString('en')} messages/s, transactions of ${TX_SIZE}, INSERTs of ${INSERT_ROWS} rows)`;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main() {
  let sqliteDir: string | undefined;
  const schema = DB === 'postgres' && EXISTING ? EXISTING : `starling_mam_bench_${randomBytes(4).toString('hex')}`;
  const sqlitePath = (): string => {
    if (EXISTING) return EXISTING;
    sqliteDir = mkdtempSync(path.join(os.tmpdir(), 'starling-mam-bench-'));
    return path.join(sqliteDir, 'bench.sqlite');
  };
  const options: StorageOptions =
    DB === 'sqlite'
      ? { driver: 'sqlite', sqlitePath: sqlitePath(), sqliteSynchronous: 'normal', postgresUrl: '', postgresSchema: 'public', poolSize: 1 }
      : { driver: 'postgres', sqlitePath: '', sqliteSynchronous: 'full', postgresUrl: POSTGRES_URL, postgresSchema: schema, poolSize: 4 };

  const storage = await openStorage(options);
  const cleanup = async () => {
    await storage.close();
    if (KEEP || EXISTING) {
      console.log(`\nkept: --existing ${DB === 'sqlite' ? options.sqlitePath : schema}`);
      return;
    }
    if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
    if (DB === 'postgres') {
      const admin = await openStorage({ ...options, postgresSchema: 'public' }, { migrate: false });
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin.db);
      await admin.close();
    }
  };
  try {
    const store = new ArchiveStore(storage, 'mam');
    let loadLine = `existing archive ${EXISTING}`;
    if (!EXISTING) {
      await new AccountStore(storage.db).create(HOST, USER, []);
      loadLine = await load(store);
      const analyzeStart = Date.now();
      await sql`analyze`.execute(storage.db);
      loadLine += `, analyze ${((Date.now() - analyzeStart) / 1000).toFixed(1)} s`;
    }
    const size =
      DB === 'sqlite'
        ? `${(statSync(options.sqlitePath).size / 1e6).toFixed(0)} MB file`
        : `${(Number((await sql<{ s: string }>`select pg_total_relation_size('archive') as s`.execute(storage.db)).rows[0]!.s) / 1e6).toFixed(0)} MB table+indexes`;

    // Random ids (over the whole archive, and per conversation) for the queries; not measured.
    const rows = (
      await sql<{
        id: string;
        with_bare: string;
      }>`select id, with_bare from archive where store = 'mam' and host = ${HOST} and username = ${USER} order by random() limit 4000`.execute(storage.db)
    ).rows;
    const sample = rows.map((r) => r.id);
    const byContact = new Map<string, string[]>();
    for (const r of rows) byContact.set(r.with_bare, [...(byContact.get(r.with_bare) ?? []), r.id]);
    const ends = (await store.ends(HOST, USER))!;
    const archived = Number(
      (await sql<{ n: string }>`select count(*) as n from archive where store = 'mam' and host = ${HOST} and username = ${USER}`.execute(storage.db)).rows[0]!.n,
    );

    // --- queries ------------------------------------------------------------------------------
    const qrand = prng(7);
    const any = <T>(list: T[]) => list[Math.floor(qrand() * list.length)]!;
    // Contacts picked in proportion to their traffic (their share of the sample).
    const contactOfSample = rows.map((r) => r.with_bare);
    const start0 = ends.first.ts;
    const end = ends.last.ts;
    const cases: [string, () => Partial<PageRequest>][] = [
      ['last page (before empty)', () => ({ before: '' })],
      ['page after a random id', () => ({ after: any(sample) })],
      ['page before a random id', () => ({ before: any(sample) })],
      [
        'with: page after an id',
        () => {
          const contact = any(contactOfSample);
          return { with: { bare: contact }, after: any(byContact.get(contact)!) };
        },
      ],
      ['with: last page', () => ({ with: { bare: any(contactOfSample) }, before: '' })],
      [
        'time range (1 day)',
        () => {
          const start = start0 + Math.floor(qrand() * (end - start0));
          return { start, end: start + 86_400_000 };
        },
      ],
    ];
    const results: { name: string; p50: number; p99: number; max: number; cpu50: number; cpu99: number; items: number; counted: number }[] = [];
    for (const [name, make] of cases) {
      // Warm-up (connections, statement caches): not measured.
      for (let i = 0; i < 5; i++) await store.page(HOST, USER, { max: PAGE, countLimit: COUNT_LIMIT, ...make() });
      const times: number[] = [];
      const cpu: number[] = [];
      let items = 0;
      let counted = 0;
      for (let i = 0; i < QUERIES; i++) {
        const req = { max: PAGE, countLimit: COUNT_LIMIT, ...make() };
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        const page = await store.page(HOST, USER, req);
        for (const m of page.items) resultMessage(`${USER}@${HOST}`, `${USER}@${HOST}/phone`, 'q', m, 'r');
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        const c = process.cpuUsage(c0);
        cpu.push((c.user + c.system) / 1000);
        items += page.items.length;
        if (page.count !== undefined) counted++;
      }
      times.sort((a, b) => a - b);
      cpu.sort((a, b) => a - b);
      results.push({
        name,
        p50: percentile(times, 50),
        p99: percentile(times, 99),
        max: times[times.length - 1]!,
        cpu50: percentile(cpu, 50),
        cpu99: percentile(cpu, 99),
        items: items / QUERIES,
        counted,
      });
    }

    const fmt = (ms: number) => ms.toFixed(2).padStart(8);
    console.log(
      `\nMAM archive bench: ${DB}, ${archived.toLocaleString('en')} messages, ${byContact.size} contacts sampled, ${QUERIES} queries per case, page ${PAGE}, count_limit ${COUNT_LIMIT}`,
    );
    console.log(
      `node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log(`${loadLine}; ${size}`);
    console.log(`\n| query | p50 ms | p99 ms | max ms | bench CPU p50 / p99 ms | items/page | with count |`);
    console.log(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |`);
    for (const r of results) {
      console.log(
        `| ${r.name} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${r.cpu50.toFixed(2)} / ${r.cpu99.toFixed(2)} | ${r.items.toFixed(1)} | ${r.counted}/${QUERIES} |`,
      );
    }
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

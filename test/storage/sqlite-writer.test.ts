// The SQLite writer thread (src/storage/sqlite-writer.ts) under a steady stream of batches: the
// checkpointer copies the log beside it, and the write-ahead log still starts over (its header's
// checkpoint sequence number grows at each start) although the writer never pauses, and every
// row is there in the end.
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteWriter } from '../../src/storage/sqlite-writer.js';

const PAGE = 4096;
const RESET_FRAMES = 64;

t.test('the log starts over under a steady load', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-writer-'));
  const file = path.join(dir, 'db.sqlite');
  const main = new BetterSqlite3(file);
  main.pragma('journal_mode = WAL');
  main.exec('create table item (n integer primary key, body text not null)');
  const writer = new SqliteWriter(file, 'NORMAL', RESET_FRAMES);
  t.teardown(async () => {
    await writer.close();
    main.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // Batches back to back (each awaited, as the group commit does) for 3 s: a dozen checkpoints
  // (one per 16 commits, 250 ms apart at most often), each finding a long log.
  const body = 'x'.repeat(3000);
  let n = 0;
  /** The WAL header's checkpoint sequence number (bytes 12-15): one more each time the log starts over. */
  const restarts = () => {
    const fd = openSync(`${file}-wal`, 'r');
    const header = Buffer.alloc(16);
    readSync(fd, header, 0, 16, 0);
    closeSync(fd);
    return header.readUInt32BE(12);
  };
  await writer.insert([{ table: 'item', rows: [{ n: n++, body }] }]);
  const first = restarts();
  const until = performance.now() + 3000;
  while (performance.now() < until) {
    const rows = Array.from({ length: 4 }, () => ({ n: n++, body }));
    await writer.insert([{ table: 'item', rows }]);
  }
  const written = n * body.length;
  t.ok(written > RESET_FRAMES * PAGE * 20, `wrote ${written} bytes, many times the log's limit`);
  // Without the catch-up the log never starts over: it holds every page written.
  t.ok(restarts() - first >= 2, `the log started over ${restarts() - first} times`);
  t.equal((main.prepare('select count(*) as c from item').get() as { c: number }).c, n, 'every row committed');
});

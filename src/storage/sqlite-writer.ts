// Bulk inserts into an SQLite file from a worker thread, with a connection of its own: the
// archive's group commit hands it the rows of a batch, and the worker's transaction (its inserts
// and its sync) runs while the event loop goes on serving sessions. The promise of a batch
// resolves once the worker has committed it, so durability is the main connection's own (the
// same file, the same `synchronous` setting). WAL mode lets the main connection read meanwhile.
//
// The worker is started on first use, so a CLI command that never archives never starts one. Its
// code is a plain script (no TypeScript loader is needed in the worker, under tsx or not). One
// prepared single-row INSERT per table, run per row: in SQLite that beats a multi-row statement
// (10.5 against 17.6 ms for 400 archive rows, measured here).
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

/** Rows of one table, in the order they are to be inserted. */
export interface InsertGroup {
  table: string;
  rows: object[];
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = ' + workerData.synchronous);
db.pragma('foreign_keys = ON');
db.pragma('busy_timeout = 5000');
// No checkpoint in this thread: the checkpointer thread does them (CHECKPOINTER_SOURCE), but
// for a catch-up (see WAL_RESET_FRAMES), after which the log starts over, no bigger than this.
db.pragma('wal_autocheckpoint = 0');
db.pragma('journal_size_limit = ' + workerData.walBytes);
const statements = new Map();
function statement(table, columns) {
  const key = table + '|' + columns.join(',');
  let st = statements.get(key);
  if (!st) {
    const names = columns.map((c) => '"' + c + '"').join(', ');
    st = db.prepare('insert into "' + table + '" (' + names + ') values (' + columns.map(() => '?').join(', ') + ')');
    if (statements.size > 100) statements.clear();
    statements.set(key, st);
  }
  return st;
}
const insertAll = db.transaction((groups) => {
  for (const { table, columns, values } of groups) {
    const st = statement(table, columns);
    const n = columns.length;
    const row = new Array(n);
    for (let at = 0; at < values.length; at += n) {
      for (let i = 0; i < n; i++) row[i] = values[at + i];
      st.run(row);
    }
  }
});
parentPort.on('message', ({ id, groups, catchUp }) => {
  try {
    if (catchUp) {
      try {
        db.pragma('wal_checkpoint(PASSIVE)');
      } catch {
        // Busy: a later batch catches up.
      }
    }
    insertAll(groups);
    parentPort.postMessage({ id });
  } catch (err) {
    parentPort.postMessage({ id, error: { message: String(err && err.message), code: err && err.code } });
  }
});
`;

// WAL checkpoints, in a thread and a connection of their own: a passive checkpoint runs beside
// the writer's transactions and the main connection's reads without blocking them, so its
// writes to the database file and its syncs (the only ones in synchronous=NORMAL) stay off the
// commit path (inside a commit, SQLite's automatic checkpoint delayed that batch and every
// session waiting on it). A longer log between checkpoints writes the pages hot in every batch
// (the ends of the indexes) back to the file fewer times: with 400-row batches over 200
// archives, 23-26 against 34.5 µs of CPU per archive row with SQLite's default (a checkpoint
// each 1,000 pages of log). So one checkpoint per CHECKPOINT_EVERY commits, and no sooner than
// CHECKPOINT_MIN_INTERVAL_MS after the one before: a server that commits small batches often
// (an open loop of a few thousand messages per second: hundreds of commits per second) would
// else checkpoint every few dozen milliseconds. With batches of 4 rows over 200 archives, a
// checkpoint every 16 commits cost 16-19 µs per row, one every 200 commits 6-9 (measured here).
// At 2,000 messages per second, 250 ms of log is ~1,000 rows, ~3,500 pages: well under the
// main connection's own checkpoint threshold (database.ts).
const CHECKPOINTER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
db.pragma('wal_autocheckpoint = 0');
parentPort.on('message', () => {
  let log = 0;
  try {
    log = db.pragma('wal_checkpoint(PASSIVE)')[0].log;
  } catch {
    // Busy or failed: the next one (or the main connection's own) will do.
  }
  parentPort.postMessage({ log });
});
`;
const CHECKPOINT_EVERY = 16;
const CHECKPOINT_MIN_INTERVAL_MS = 250;

// The log starts over from its beginning only when a write transaction begins with every frame
// of it checkpointed. Under a steady load the writer commits again while the checkpointer copies,
// so that never happened: in the open-loop bench (2,000 msgs/s) the log grew by ~30 MB a second,
// past 600 MB within a run, unbounded on a busy server (and past the main connection's
// threshold, every commit of that connection checkpointed on the event loop). So once the
// checkpointer reports a log of WAL_RESET_FRAMES or more, it makes more passes at once, each over
// what was written during the one before, until one takes under CATCH_UP_PASS_MS (or after
// CATCH_UP_PASSES); then the writer checkpoints before its next batch, with only the frames of
// that last pass left to copy and sync, and that batch starts the log over (the file truncated
// back to WAL_RESET_FRAMES pages). In the open-loop bench the catch-up delays one commit by
// 25-35 ms every ~3 s (mostly the syncs of the log and the database file); p99 12.8-23.6 ms
// over four runs, against 17.5-78.7 ms with the catch-up right after the first pass.
const WAL_RESET_FRAMES = 32768;
const CATCH_UP_PASSES = 4;
const CATCH_UP_PASS_MS = 10;

/**
 * A group as posted to the worker: its rows' values in one flat array, the column names once
 * (a structured clone of an array of strings and numbers costs a fraction of one of objects).
 */
interface PackedGroup {
  table: string;
  columns: string[];
  values: unknown[];
}

function packed({ table, rows }: InsertGroup): PackedGroup {
  const columns = Object.keys(rows[0]!);
  const n = columns.length;
  const values = new Array<unknown>(rows.length * n);
  let at = 0;
  for (const row of rows as Record<string, unknown>[]) {
    for (let i = 0; i < n; i++) values[at++] = row[columns[i]!] ?? null;
  }
  return { table, columns, values };
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

export class SqliteWriter {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private checkpointer: Worker | undefined;
  private checkpointing = false;
  private commits = 0;
  private lastCheckpoint = 0;
  /** The checkpointer found a long log: the writer's next batch starts with a catch-up checkpoint. */
  private catchUp = false;
  /** Passes in a row over a log past WAL_RESET_FRAMES. */
  private passes = 0;

  constructor(
    private readonly path: string,
    private readonly synchronous: 'FULL' | 'NORMAL',
    /** WAL_RESET_FRAMES (tests make it small). */
    private readonly walResetFrames = WAL_RESET_FRAMES,
  ) {}

  /** Inserts the groups' rows in one transaction; resolves once it has committed. */
  insert(groups: InsertGroup[]): Promise<void> {
    const worker = (this.worker ??= this.start());
    const id = this.nextId++;
    // Only a worker with work keeps the process alive.
    if (this.pending.size === 0) worker.ref();
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, groups: groups.map(packed), catchUp: this.catchUp });
      this.catchUp = false;
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    const checkpointer = this.checkpointer;
    this.worker = this.checkpointer = undefined;
    if (worker) await worker.terminate();
    if (checkpointer) await checkpointer.terminate();
  }

  /** A batch committed: every CHECKPOINT_EVERY of them, a checkpoint (unless one still runs, or ran too recently). */
  private committed(): void {
    if (++this.commits < CHECKPOINT_EVERY || this.checkpointing) return;
    if (performance.now() - this.lastCheckpoint < CHECKPOINT_MIN_INTERVAL_MS) return;
    this.checkpoint();
  }

  private checkpoint(): void {
    this.lastCheckpoint = performance.now();
    this.commits = 0;
    this.checkpointing = true;
    (this.checkpointer ??= this.startCheckpointer()).postMessage('checkpoint');
  }

  /**
   * A checkpoint done, over a log of `log` frames. Past WAL_RESET_FRAMES the log is to start
   * over: another pass at once, over what was written during this one, until a pass is short
   * (or after CATCH_UP_PASSES), then the writer's catch-up, with little left to copy and sync.
   */
  private checkpointed(log: number): void {
    this.checkpointing = false;
    if (log < this.walResetFrames) {
      this.passes = 0;
      return;
    }
    if (++this.passes < CATCH_UP_PASSES && performance.now() - this.lastCheckpoint > CATCH_UP_PASS_MS) return this.checkpoint();
    this.passes = 0;
    this.catchUp = true;
  }

  private startCheckpointer(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const checkpointer = new Worker(CHECKPOINTER_SOURCE, { eval: true, workerData: { driver, path: this.path } });
    // It never keeps the process alive; were it to die, the next checkpoint starts another.
    checkpointer.unref();
    checkpointer.on('message', ({ log }: { log: number }) => this.checkpointed(log));
    const gone = () => {
      if (this.checkpointer === checkpointer) this.checkpointer = undefined;
      this.checkpointing = false;
    };
    checkpointer.on('error', gone);
    checkpointer.on('exit', gone);
    return checkpointer;
  }

  private start(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, path: this.path, synchronous: this.synchronous, walBytes: this.walResetFrames * 4096 } });
    worker.on('message', ({ id, error }: { id: number; error?: { message: string; code?: string } }) => {
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      if (!error) {
        this.committed();
        return p.resolve();
      }
      p.reject(Object.assign(new Error(error.message), { code: error.code }));
    });
    // A worker that dies (it could not open the file, say) fails what it held; the next batch
    // starts a new one.
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(Object.assign(new Error(`the SQLite writer thread exited (code ${code})`), { code: 'SQLITE_IOERR' })));
    return worker;
  }
}

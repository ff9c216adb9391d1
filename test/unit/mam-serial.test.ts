// The archive's per-key job queue: jobs start in order as soon as the one before has started
// (so the writes of one archive can share a transaction), and finish in order.
import t from 'tap';
import { Serial } from '../../modules/mam/serial.js';

/** A promise with its resolve and reject at hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

t.test('the next job starts while the work of the one before goes on, and finishes after it', async (t) => {
  const serial = new Serial();
  const events: string[] = [];
  const slow = deferred<string>();
  const second = deferred<void>();
  const a = serial.pipeline('k', async () => (events.push('start a'), { work: slow.promise }));
  const b = serial.pipeline('k', async () => {
    events.push('start b');
    second.resolve();
    return { work: Promise.resolve('b') };
  });
  void a.then((v) => events.push(`done ${v}`));
  void b.then((v) => events.push(`done ${v}`));
  await second.promise;
  t.same(events, ['start a', 'start b'], 'b started before the work of a was done');
  slow.resolve('a');
  await b;
  t.same(events, ['start a', 'start b', 'done a', 'done b'], 'b is done after a, though its work was done first');
});

t.test('a failed job neither stops the ones after it nor goes unhandled', async (t) => {
  const serial = new Serial();
  const failing = deferred<string>();
  const a = serial.pipeline('k', async () => ({ work: failing.promise }));
  const b = serial.pipeline('k', async () => ({ work: Promise.resolve('b') }));
  failing.reject(new Error('commit failed'));
  await t.rejects(a, /commit failed/);
  t.equal(await b, 'b');
  const c = serial.run('k', async () => {
    throw new Error('start failed');
  });
  await t.rejects(c, /start failed/);
  t.equal(await serial.run('k', async () => 'd'), 'd');
});

t.test('drained and idle wait for the work, not only the start', async (t) => {
  const serial = new Serial();
  const slow = deferred<string>();
  let done = false;
  void serial.pipeline('k', async () => ({ work: slow.promise })).then(() => (done = true));
  const drained = serial.drained('k').then(() => done);
  const idle = serial.idle().then(() => done);
  slow.resolve('x');
  t.equal(await drained, true);
  t.equal(await idle, true);
  await serial.drained('other');
});

// The idle collector (a full collection once the server is idle after its heap grew) and the V8
// flags every launcher starts the server with.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { IdleCollector, LAUNCH_FLAGS, missingLaunchFlags } from '../../src/idle-collector.js';

const ROOT = path.join(new URL('../..', import.meta.url).pathname);
const MB = 1024 * 1024;

t.test('the launch flags are found on the command line or in NODE_OPTIONS', async (t) => {
  t.same(missingLaunchFlags([], ''), [...LAUNCH_FLAGS], 'plain node: both missing');
  t.same(missingLaunchFlags([...LAUNCH_FLAGS], ''), [], 'on the command line');
  t.same(missingLaunchFlags([], LAUNCH_FLAGS.join(' ')), [], 'in NODE_OPTIONS');
  t.same(missingLaunchFlags(['--max-semi-space-size=32'], ''), ['--expose-gc'], 'another semi-space size is the operator’s choice');
});

t.test('every launcher passes the launch flags', async (t) => {
  const launchers: [string, (text: string) => string | undefined][] = [
    ['package.json', (s) => (JSON.parse(s) as { scripts: Record<string, string> }).scripts.start],
    ['src/cli.ts', (s) => s.split('\n')[0]],
    ['contrib/starling.service', (s) => s.split('\n').find((l) => l.startsWith('ExecStart='))],
    ['contrib/Dockerfile', (s) => s.split('\n').find((l) => l.startsWith('ENTRYPOINT'))],
    ['test/bench/bench-lib.sh', (s) => s.split('\n').find((l) => l.startsWith('STARLING_NODE='))],
  ];
  for (const [file, line] of launchers) {
    const found = line(readFileSync(path.join(ROOT, file), 'utf8')) ?? '';
    for (const flag of LAUNCH_FLAGS) t.ok(found.includes(flag), `${file}: ${flag}`);
  }
});

/** A collector over a fake heap and loop: set `heap` and `busy`, then check(). */
function fake() {
  const state = { heap: 100 * MB, busy: 0, collected: 0 };
  const collector = new IdleCollector({
    gc: () => {
      state.collected++;
      state.heap = 60 * MB;
    },
    heapBytes: () => state.heap,
    utilization: () => state.busy,
    checkMs: 3_600_000,
    idleMs: 2 * 3_600_000,
  });
  return { state, collector };
}

t.test('it collects once the loop is idle and the heap has grown, and only then', async (t) => {
  const { state, collector } = fake();
  t.teardown(() => collector.stop());
  t.notOk(collector.check(), 'nothing grew: no collection');
  state.heap = 140 * MB;
  state.busy = 0.6;
  t.notOk(collector.check(), 'grown, but busy: no collection');
  state.busy = 0.01;
  t.notOk(collector.check(), 'grown, idle for one check: not long enough');
  t.ok(collector.check(), 'grown and idle for two checks: collected');
  t.equal(state.collected, 1);
  t.notOk(collector.check(), 'idle, the heap as it was after the collection: none again');
  state.heap = 65 * MB;
  t.notOk(collector.check(), 'grown by less than the threshold: none');
  state.heap = 80 * MB;
  t.ok(collector.check(), 'grown again past the threshold: collected');
  t.equal(state.collected, 2);
});

t.test('a heap that shrank by itself is the new baseline', async (t) => {
  const { state, collector } = fake();
  t.teardown(() => collector.stop());
  state.heap = 20 * MB;
  t.notOk(collector.check(), 'shrank: nothing to do');
  state.heap = 30 * MB;
  t.ok(collector.check(), 'grown 10 MB from the smaller heap, idle for two checks: collected');
});

// A real process started with the launch flags: it grows its young generation, goes idle, and
// the collector (its own timer, the real loop utilization and heap) gives the memory back.
const CHILD = `
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { IdleCollector } from ${JSON.stringify(path.join(ROOT, 'src/idle-collector.ts'))};
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
const report = { gc: typeof globalThis.gc };
const collector = new IdleCollector({
  checkMs: 250,
  idleMs: 7000,
  log: {
    debug() {
      report.after = { newSpace: newSpace(), heap: getHeapStatistics().total_heap_size };
      console.log(JSON.stringify(report));
      process.exit(0);
    },
  },
});
// Objects that live a while, as messages waiting for their commit do: V8 grows the young generation.
let kept = [];
for (let i = 0; i < 3e6; i++) {
  kept.push({ i, s: 'x' + i });
  if (kept.length > 400000) kept.splice(0, 200000);
}
kept = null;
report.before = { newSpace: newSpace(), heap: getHeapStatistics().total_heap_size };
setTimeout(() => { console.log(JSON.stringify(report)); process.exit(1); }, 20000);
`;

t.test('a process started with the launch flags gives its grown heap back when idle', async (t) => {
  const child = spawn(process.execPath, [...LAUNCH_FLAGS, '--import', 'tsx', '--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const report = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { gc: string; before?: { newSpace: number; heap: number }; after?: { newSpace: number; heap: number } };
  t.equal(report.gc, 'function', 'gc() is exposed');
  t.equal(code, 0, 'the collector ran once the process was idle');
  t.ok(report.before && report.before.newSpace > 16 * MB, `the young generation grew (${Math.round((report.before?.newSpace ?? 0) / MB)} MB)`);
  t.ok(report.after && report.after.newSpace < 8 * MB, `and was given back (${Math.round((report.after?.newSpace ?? 0) / MB)} MB)`);
  t.ok(report.before && report.after && report.after.heap < report.before.heap - 16 * MB, 'the heap shrank');
});

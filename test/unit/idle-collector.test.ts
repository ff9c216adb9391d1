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

/** A collector over a fake heap and loop: set `heap`, `young` and `busy`, then check(). */
function fake() {
  const state = { heap: 100 * MB, young: 2 * MB, busy: 0, collected: [] as string[] };
  const collector = new IdleCollector({
    gc: (type) => {
      state.collected.push(type);
      if (type === 'major') state.heap = 60 * MB;
    },
    heap: () => ({ total: state.heap, young: state.young }),
    utilization: () => state.busy,
    checkMs: 3_600_000,
    idleMs: 2 * 3_600_000,
  });
  return { state, collector };
}

t.test('a full collection once the loop is idle and the heap has grown, and only then', async (t) => {
  const { state, collector } = fake();
  t.teardown(() => collector.stop());
  t.equal(collector.check(), undefined, 'idle for one check: not long enough');
  t.equal(collector.check(), 'major', 'the first idle spell collects what the start left');
  t.equal(collector.check(), undefined, 'nothing grew since: no collection');
  state.heap = 140 * MB;
  state.busy = 0.6;
  t.equal(collector.check(), undefined, 'grown, but busy: no collection');
  state.busy = 0.01;
  t.equal(collector.check(), undefined, 'grown, idle for one check: not long enough');
  t.equal(collector.check(), 'major', 'grown and idle for two checks: collected');
  t.equal(collector.check(), undefined, 'idle, the heap as it was after the collection: none again');
  state.heap = 65 * MB;
  t.equal(collector.check(), undefined, 'grown by less than the threshold: none');
  state.heap = 80 * MB;
  t.equal(collector.check(), 'major', 'grown again past the threshold: collected');
  t.same(state.collected, ['major', 'major', 'major']);
});

t.test('a heap that shrank by itself is the new baseline', async (t) => {
  const { state, collector } = fake();
  t.teardown(() => collector.stop());
  collector.check();
  collector.check();
  state.heap = 20 * MB;
  t.equal(collector.check(), undefined, 'shrank: nothing to do');
  state.heap = 30 * MB;
  t.equal(collector.check(), 'major', 'grown 10 MB from the smaller heap: collected');
});

t.test('a large young generation gets a few scavenges per idle spell', async (t) => {
  const { state, collector } = fake();
  t.teardown(() => collector.stop());
  collector.check();
  collector.check();
  state.young = 128 * MB;
  const checks = Array.from({ length: 7 }, () => collector.check());
  t.same(checks, ['minor', 'minor', 'minor', 'minor', 'minor', undefined, undefined], 'five tries, then it leaves it');
  state.busy = 0.5;
  t.equal(collector.check(), undefined, 'busy again');
  state.busy = 0;
  collector.check();
  t.equal(collector.check(), 'minor', 'the next idle spell tries again');
  state.young = 1 * MB;
  t.equal(collector.check(), undefined, 'shrunk: nothing more to do');
});

// A real process started with the launch flags: it grows its young generation, goes idle, and
// the collector (its own timer, the real loop utilization and heap) gives the memory back.
const CHILD = `
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { IdleCollector } from ${JSON.stringify(path.join(ROOT, 'src/idle-collector.ts'))};
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
const report = { gc: typeof globalThis.gc, collections: [] };
const collector = new IdleCollector({
  checkMs: 250,
  idleMs: 5000,
  log: {
    debug({ type }) {
      report.collections.push(type);
      report.after = { newSpace: newSpace(), heap: getHeapStatistics().total_heap_size };
      if (report.after.newSpace > 8 * 1024 * 1024) return;
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
  const report = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
    gc: string;
    collections: string[];
    before?: { newSpace: number; heap: number };
    after?: { newSpace: number; heap: number };
  };
  t.equal(report.gc, 'function', 'gc() is exposed');
  t.equal(code, 0, `the collector gave the young generation back once the process was idle (${report.collections.join(', ')})`);
  t.ok(report.before && report.before.newSpace > 16 * MB, `the young generation grew (${Math.round((report.before?.newSpace ?? 0) / MB)} MB)`);
  t.ok(report.after && report.after.newSpace < 8 * MB, `and was given back (${Math.round((report.after?.newSpace ?? 0) / MB)} MB)`);
  t.ok(report.before && report.after && report.after.heap < report.before.heap - 16 * MB, 'the heap shrank');
});

// Memory after a flood of half-open connections: is what stays retained garbage or a leak?
//
//   node --expose-gc --import tsx test/bench/preauth-memory.ts [--connections 5000] [--rounds 3] [--auth-timeout 2] [--snapshot DIR]
//
// A server in this process (SQLite in a temporary directory). A child process opens
// --connections TCP connections that send a stream header and nothing more; the server closes
// each at its pre-authentication timeout (c2s.auth_timeout). After every round, once the
// server holds no connection any more, the script prints RSS and V8's heap before and after a
// forced GC, against the baseline taken before the first round. Several rounds tell a leak
// (heap after GC grows round after round) from memory the process keeps but does not use (RSS
// stays up after the first round; the heap after GC comes back to the baseline). With
// --snapshot, heap snapshots (node:v8) of the baseline and after the last round go to DIR.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    'auth-timeout': { type: 'string', default: '2' },
    snapshot: { type: 'string' },
    client: { type: 'string' },
  },
});

if (args.client) {
  // The child: opens the connections (200 at a time being set up), each sends a stream header
  // and waits to be closed; reports when all are closed.
  const port = Number(args.client);
  const n = Number(args.connections);
  let closed = 0;
  let opened = 0;
  const header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
  const openOne = () =>
    new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.write(header), resolve()));
      s.on('data', () => {});
      s.on('error', () => resolve());
      s.on('close', () => {
        if (++closed === n) process.send!({ closed });
      });
    });
  for (let i = 0; i < n; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, n - i) }, openOne));
    opened += Math.min(200, n - i);
  }
  process.send!({ opened });
  await new Promise(() => {});
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const { startTestServer } = await import('../helpers/harness.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-preauth-'));
const teardowns: (() => unknown)[] = [];
const ts = await startTestServer(
  { teardown: (fn) => teardowns.push(fn) },
  {
    data_dir: dir,
    modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm', 'mam', 'blocking'],
    c2s: { auth_timeout: Number(args['auth-timeout']), max_unauthenticated_per_ip: 1_000_000, require_encryption: false },
  },
);

const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;
const sample = () => {
  const m = process.memoryUsage();
  return { rss: mb(m.rss), heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) };
};
const collect = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
};

// A warm-up connection, so that code loaded on the first connection is not charged to the flood.
await round(20);
await collect();
const baseline = sample();
console.log('baseline (after GC)', JSON.stringify(baseline));
if (args.snapshot) console.log('snapshot', v8.writeHeapSnapshot(path.join(args.snapshot, 'baseline.heapsnapshot')));

for (let r = 1; r <= Number(args.rounds); r++) {
  const peak = await round(Number(args.connections));
  const before = sample();
  await collect();
  const after = sample();
  const delta = (s: ReturnType<typeof sample>) =>
    `rss +${(s.rss - baseline.rss).toFixed(1)} MB, heapUsed +${(s.heapUsed - baseline.heapUsed).toFixed(1)} MB, heapTotal +${(s.heapTotal - baseline.heapTotal).toFixed(1)} MB, external +${(s.external - baseline.external).toFixed(1)} MB`;
  console.log(`round ${r}: ${args.connections} connections closed by the pre-auth timeout; peak rss ${peak.rss} MB`);
  console.log(`  before GC: ${delta(before)}`);
  console.log(`  after GC:  ${delta(after)}`);
  console.log(
    `  heap spaces: ${v8
      .getHeapSpaceStatistics()
      .filter((s) => s.space_used_size > 1048576)
      .map((s) => `${s.space_name} ${mb(s.space_used_size)}/${mb(s.space_size)}`)
      .join(', ')}`,
  );
}
if (args.snapshot) console.log('snapshot', v8.writeHeapSnapshot(path.join(args.snapshot, 'after.heapsnapshot')));

for (const fn of teardowns.reverse()) await fn();
rmSync(dir, { recursive: true, force: true });

/** One flood of `n` half-open connections; resolves once the server has closed them all, with the peak memory seen. */
async function round(n: number): Promise<ReturnType<typeof sample>> {
  const child = fork(new URL(import.meta.url).pathname, ['--client', String(ts.port), '--connections', String(n)], {
    execArgv: ['--import', 'tsx'],
  });
  let peak = sample();
  const timer = setInterval(() => {
    const s = sample();
    if (s.rss > peak.rss) peak = s;
  }, 200);
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: { closed?: number }) => m.closed !== undefined && resolve());
    child.on('exit', (code) => reject(new Error(`the client exited (${code}) before all its connections were closed`)));
  });
  clearInterval(timer);
  child.removeAllListeners('exit');
  child.kill();
  // Past the close grace period (xml-stream.ts, 2 s) and the timers of the last connections.
  await new Promise((r) => setTimeout(r, 3000));
  return peak;
}

// HTTP File Upload bench: one upload and one download of a big file over HTTPS on loopback, then
// many uploads at once, with the server's peak RSS (the clients are curl processes).
//
//   npx tsx test/bench/http-upload.bench.ts [--size-mib 100] [--parallel 20] [--parallel-mib 20]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { connect, xml, type TestClient } from '../helpers/clients.js';
import { startTestServer } from '../helpers/harness.js';

const { values } = parseArgs({
  options: { 'size-mib': { type: 'string', default: '100' }, parallel: { type: 'string', default: '20' }, 'parallel-mib': { type: 'string', default: '20' } },
});
const run = promisify(execFile);
const MiB = 1024 * 1024;
const size = Number(values['size-mib']) * MiB;
const parallel = Number(values.parallel);
const parallelSize = Number(values['parallel-mib']) * MiB;

const teardowns: (() => unknown)[] = [];
const ts = await startTestServer(
  { teardown: (fn) => teardowns.push(fn) },
  { modules_enabled: ['sasl', 'ping', 'disco', 'http_upload'], modules: { http_upload: { max_file_size: Math.max(size, parallelSize), quota: 0 } } },
);
await ts.addUser('bench');
const client = await connect(ts, 'bench');
const dir = mkdtempSync(path.join(os.tmpdir(), 'upload-bench-'));

function makeFile(name: string, bytes: number): string {
  const file = path.join(dir, name);
  const chunk = randomBytes(MiB);
  writeFileSync(file, '');
  for (let i = 0; i < bytes / MiB; i++) writeFileSync(file, chunk, { flag: 'a' });
  return file;
}

let n = 0;
async function slot(c: TestClient, bytes: number): Promise<{ put: string; get: string }> {
  const id = `s${n++}`;
  await c.send(xml('iq', { type: 'get', id, to: 'upload.localhost' }, xml('request', { xmlns: 'urn:xmpp:http:upload:0', filename: `${id}.bin`, size: String(bytes) })));
  const reply = await c.next((el) => el.attrs.id === id, 10_000);
  const s = reply.getChild('slot', 'urn:xmpp:http:upload:0')!;
  return { put: s.getChild('put')!.attrs.url as string, get: s.getChild('get')!.attrs.url as string };
}

/** A PUT by curl in a process of its own, so this process's RSS is the server's. */
async function upload(file: string, url: string): Promise<void> {
  const { stdout } = await run('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', '-T', file, '-H', 'Content-Type: application/octet-stream', url]);
  if (stdout !== '201') throw new Error(`PUT: ${stdout}`);
}

async function download(url: string): Promise<number> {
  const { stdout } = await run('curl', ['-sk', '-o', '/dev/null', '-w', '%{size_download}', url]);
  return Number(stdout);
}

let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const mib = (b: number) => (b / MiB).toFixed(0);
const rate = (bytes: number, ms: number) => `${((bytes / MiB) * (1000 / ms)).toFixed(0)} MiB/s`;
try {
  const big = makeFile('big.bin', size);
  const urls = await slot(client, size);
  const baseline = process.memoryUsage().rss;
  let t0 = performance.now();
  await upload(big, urls.put);
  const up = performance.now() - t0;
  t0 = performance.now();
  const got = await download(urls.get);
  const down = performance.now() - t0;
  if (got !== size) throw new Error(`GET: ${got} bytes`);
  console.log(`one file of ${mib(size)} MiB over HTTPS: upload ${rate(size, up)}, download ${rate(size, down)}; RSS ${mib(baseline)} MiB before, peak ${mib(peak)} MiB`);

  peak = 0;
  const small = makeFile('part.bin', parallelSize);
  const slots = await Promise.all(Array.from({ length: parallel }, () => slot(client, parallelSize)));
  t0 = performance.now();
  await Promise.all(slots.map((s) => upload(small, s.put)));
  const all = performance.now() - t0;
  console.log(`${parallel} uploads of ${mib(parallelSize)} MiB at once: ${rate(parallel * parallelSize, all)} together; peak RSS ${mib(peak)} MiB`);
} finally {
  clearInterval(sampler);
  await client.stop();
  for (const fn of teardowns.reverse()) await fn();
  rmSync(dir, { recursive: true, force: true });
}

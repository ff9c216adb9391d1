// HTTP File Upload bench: one upload and one download of a big file over HTTPS on loopback, then
// many uploads at once, with the server's memory. The server is a `starling start` process of
// its own (the built CLI, `npm run build` first), a fresh one for each run, pinned to core 0;
// this process and the clients (curl processes) run on core 1. Memory is read from
// /proc/<server pid>/status: VmRSS sampled every 20 ms, VmHWM (the kernel's peak) at the end.
//
//   npx tsx test/bench/http-upload.bench.ts [--size-mib 100] [--parallel 20] [--parallel-mib 20]
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { startClient, xml, xmppClient, type TestClient } from '../helpers/clients.js';
import { loopbackServerToml, runStarling, startStarling, type RunningStarling } from '../helpers/cli.js';

const { values } = parseArgs({
  options: { 'size-mib': { type: 'string', default: '100' }, parallel: { type: 'string', default: '20' }, 'parallel-mib': { type: 'string', default: '20' } },
});
const run = promisify(execFile);
const MiB = 1024 * 1024;
const size = Number(values['size-mib']) * MiB;
const parallel = Number(values.parallel);
const parallelSize = Number(values['parallel-mib']) * MiB;
const PASSWORD = 'bench password';
const SERVER_CORE = '0';
const LOAD_CORE = '1';

// The self-signed certificate of the server, for the XMPP client (curl gets -k).
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
execFileSync('taskset', ['-a', '-pc', LOAD_CORE, String(process.pid)], { stdio: 'ignore' });

const dir = mkdtempSync(path.join(os.tmpdir(), 'upload-bench-'));
const mib = (b: number) => (b / MiB).toFixed(0);
const rate = (bytes: number, ms: number) => `${((bytes / MiB) * (1000 / ms)).toFixed(0)} MiB/s`;

function makeFile(name: string, bytes: number): string {
  const file = path.join(dir, name);
  const chunk = randomBytes(MiB);
  writeFileSync(file, '');
  for (let i = 0; i < bytes / MiB; i++) writeFileSync(file, chunk, { flag: 'a' });
  return file;
}

/** VmRSS and VmHWM of a process, in bytes. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

interface Server {
  server: RunningStarling;
  pid: number;
  client: TestClient;
  stop(): Promise<void>;
}

/** A fresh server with its own data directory, pinned to SERVER_CORE, and the bench user online. */
async function freshServer(name: string): Promise<Server> {
  const runDir = path.join(dir, name);
  const config = path.join(dir, `${name}.toml`);
  const maxFile = Math.max(size, parallelSize);
  writeFileSync(config, `${loopbackServerToml(runDir)}[modules.http_upload]\nmax_file_size = ${maxFile}\nquota = 0\n`);
  const add = runStarling(['adduser', 'bench@localhost', '--config', config], { input: `${PASSWORD}\n` });
  if (add.code !== 0) throw new Error(`adduser: ${add.err}`);
  const server = await startStarling(config);
  const pid = server.child.pid!;
  execFileSync('taskset', ['-a', '-pc', SERVER_CORE, String(pid)], { stdio: 'ignore' });
  const client = await startClient(xmppClient({ service: `xmpp://127.0.0.1:${server.port}`, domain: 'localhost', username: 'bench', password: PASSWORD }));
  return {
    server,
    pid,
    client,
    async stop() {
      await client.stop();
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
    },
  };
}

let n = 0;
async function slot(c: TestClient, bytes: number): Promise<{ put: string; get: string }> {
  const id = `s${n++}`;
  await c.send(xml('iq', { type: 'get', id, to: 'upload.localhost' }, xml('request', { xmlns: 'urn:xmpp:http:upload:0', filename: `${id}.bin`, size: String(bytes) })));
  const reply = await c.next((el) => el.attrs.id === id, 10_000);
  const s = reply.getChild('slot', 'urn:xmpp:http:upload:0');
  if (!s) throw new Error(`no slot: ${reply.toString()}`);
  return { put: s.getChild('put')!.attrs.url as string, get: s.getChild('get')!.attrs.url as string };
}

/** curl on the load core, so the server's core does only the server's work. */
const curl = (args: string[]) => run('taskset', ['-c', LOAD_CORE, 'curl', '-sk', ...args]);

async function upload(file: string, url: string): Promise<void> {
  const { stdout } = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-T', file, '-H', 'Content-Type: application/octet-stream', url]);
  if (stdout !== '201') throw new Error(`PUT: ${stdout}`);
}

async function download(url: string): Promise<number> {
  const { stdout } = await curl(['-o', '/dev/null', '-w', '%{size_download}', url]);
  return Number(stdout);
}

/** Samples the server's VmRSS while `work` runs; returns the peak sample and VmHWM after it. */
async function watched(pid: number, work: () => Promise<void>): Promise<{ before: number; peakRss: number; hwm: number }> {
  const before = memory(pid).rss;
  let peakRss = before;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, memory(pid).rss)), 20);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  return { before, peakRss, hwm: memory(pid).hwm };
}

try {
  const big = makeFile('big.bin', size);
  const small = makeFile('part.bin', parallelSize);

  const one = await freshServer('one');
  try {
    const urls = await slot(one.client, size);
    let up = 0;
    let down = 0;
    const mem = await watched(one.pid, async () => {
      let t0 = performance.now();
      await upload(big, urls.put);
      up = performance.now() - t0;
      t0 = performance.now();
      const got = await download(urls.get);
      down = performance.now() - t0;
      if (got !== size) throw new Error(`GET: ${got} bytes`);
    });
    console.log(
      `one file of ${mib(size)} MiB over HTTPS: upload ${rate(size, up)} (${(up / 1000).toFixed(2)} s), download ${rate(size, down)} (${(down / 1000).toFixed(2)} s); ` +
        `server VmRSS ${mib(mem.before)} MiB before, peak ${mib(mem.peakRss)} MiB, VmHWM ${mib(mem.hwm)} MiB`,
    );
  } finally {
    await one.stop();
  }

  const many = await freshServer('many');
  try {
    const slots = await Promise.all(Array.from({ length: parallel }, () => slot(many.client, parallelSize)));
    let all = 0;
    const mem = await watched(many.pid, async () => {
      const t0 = performance.now();
      await Promise.all(slots.map((s) => upload(small, s.put)));
      all = performance.now() - t0;
    });
    console.log(
      `${parallel} uploads of ${mib(parallelSize)} MiB at once: ${rate(parallel * parallelSize, all)} together (${(all / 1000).toFixed(2)} s); ` +
        `server VmRSS ${mib(mem.before)} MiB before, peak ${mib(mem.peakRss)} MiB, VmHWM ${mib(mem.hwm)} MiB`,
    );
  } finally {
    await many.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Node's floor for an idle TLS connection: what a bare echo server costs per connection, with
// no XMPP at all, to compare Starling's RSS per idle STARTTLS session against.
//
//   node --expose-gc --import tsx test/bench/tls-floor.ts --cert C.crt --key C.key [--connections 2000] [--mode starttls|tls|tcp]
//
// The server runs in this process, the clients in a child process (pin both with taskset for
// steadier figures). `starttls`: a plain TCP server that reads one line and then wraps the
// socket in a server-side tls.TLSSocket with one shared SecureContext (what Starling's STARTTLS
// does); `tls`: tls.createServer (direct TLS); `tcp`: no TLS. Each client sends one line through
// the connection once it is up and waits for the echo, then stays idle. Printed: RSS and V8's
// heap, before the first connection and with every connection idle (after a settle time and a
// forced GC), per connection.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    connections: { type: 'string', default: '2000' },
    mode: { type: 'string', default: 'starttls' },
    settle: { type: 'string', default: '3' },
    'reply-bytes': { type: 'string', default: '0' },
    'max-fragment': { type: 'string', default: '0' },
    client: { type: 'string' },
  },
});
const n = Number(args.connections);
const mode = args.mode!;

if (args.client) {
  // The child: n connections, 100 being set up at a time; each echoes one line, then idles.
  const port = Number(args.client);
  const openOne = () =>
    new Promise<void>((resolve, reject) => {
      const raw = net.connect(port, '127.0.0.1');
      const echo = (s: net.Socket) => {
        s.write('hello\n');
        s.once('data', () => resolve());
      };
      raw.on('error', reject);
      if (mode === 'tcp') return void raw.once('connect', () => echo(raw));
      if (mode === 'tls') {
        raw.destroy();
        const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => echo(s));
        return void s.on('error', reject);
      }
      raw.once('connect', () => {
        raw.write('STARTTLS\n');
        raw.once('data', () => {
          const s = tls.connect({ socket: raw, rejectUnauthorized: false }, () => echo(s));
          s.on('error', reject);
        });
      });
    });
  for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, openOne));
  process.send!('up');
  await new Promise(() => {});
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
if (mode !== 'tcp' && (!args.cert || !args.key)) throw new Error('--cert and --key are needed for TLS');
const tlsOptions = mode === 'tcp' ? {} : { cert: readFileSync(args.cert!), key: readFileSync(args.key!) };
const context = mode === 'tcp' ? undefined : tls.createSecureContext(tlsOptions);
const sockets = new Set<net.Socket>();
const reply = Number(args['reply-bytes']) > 0 ? 'x'.repeat(Number(args['reply-bytes'])) : undefined;
const echo = (s: net.Socket) => {
  sockets.add(s);
  s.on('data', (d) => s.write(reply ?? d));
  s.on('error', () => {});
};
const server =
  mode === 'tls'
    ? tls.createServer(tlsOptions, echo)
    : net.createServer((raw) => {
        if (mode === 'tcp') return echo(raw);
        raw.once('data', () => {
          raw.write('PROCEED\n');
          const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
          if (Number(args['max-fragment']) > 0) secure.setMaxSendFragment(Number(args['max-fragment']));
          echo(secure);
        });
      });
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as net.AddressInfo).port;

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const sample = () => {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
};
const before = sample();
const child = fork(new URL(import.meta.url), ['--client', String(port), '--connections', String(n), '--mode', mode], { execArgv: ['--import', 'tsx'] });
await new Promise<void>((resolve) => child.once('message', () => resolve()));
await new Promise((r) => setTimeout(r, Number(args.settle) * 1000));
const idle = sample();
console.log(`${mode}, node ${process.version}, ${sockets.size} idle connections`);
for (const k of ['rss', 'heapTotal', 'heapUsed', 'external'] as const) {
  console.log(`  ${k.padEnd(9)} ${mib(before[k])} -> ${mib(idle[k])}: ${((idle[k] - before[k]) / 1024 / n).toFixed(2)} KiB per connection`);
}
child.kill();
server.close();
for (const s of sockets) s.destroy();

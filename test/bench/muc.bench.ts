// MUC fan-out bench: one room of N occupants (500 by default) on a Starling in its own process,
// N raw-socket sessions spread over client worker processes.
//
//   npx tsx test/bench/muc.bench.ts [--occupants 500] [--samples 50] [--duration 10] [--workers 4]
//                                   [--senders 4] [--window 16] [--body-bytes 100] [--modules LIST] [--json FILE]
//                                   [--profile DIR]   (a V8 CPU profile of the server process)
//                                   [--server-cpu N]  (pin the server process, all its threads, to CPU N)
//                                   [--port P --server-pid PID]  (against a server already running, any
//                                   XMPP server with a MUC service at conference.localhost: users m0..m<N-1>
//                                   with password bench-password must exist; CPU and RSS from /proc/PID)
//
// Phases, each bounded in time:
//   1. setup: the server process starts (SQLite in a temp directory, plain TCP, PLAIN allowed on
//      loopback), creates the users; the workers log their sessions in (PLAIN, bind) and enter
//      the room (no history); the first occupant creates it.
//   2. latency: --samples messages, one at a time: the time from the send to the moment the
//      last of the N occupants' sockets has it (and to the first, and the median occupant).
//   3. sustained: --senders occupants send for --duration seconds, each keeping --window messages
//      in flight (a message is "in flight" until its sender gets the room's reflection of it);
//      messages/s is the rate at which messages reached every occupant, deliveries/s = x N.
//      After the senders stop, every occupant must have every message (counted, not assumed).
//   4. the server's CPU time and RSS over the sustained phase (from /proc), then everything stops.
// The clients do not parse XML: they find the bench bodies (<body>B:seq:...) in the byte stream,
// so a client process can keep up with hundreds of thousands of deliveries a second.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startBenchServer } from './bench-server.js';

const FILE = fileURLToPath(import.meta.url);
const DOMAIN = 'localhost';
const ROOM = `bench@conference.${DOMAIN}`;
const PASSWORD = 'bench-password';
const now = () => performance.timeOrigin + performance.now(); // ms, comparable across processes

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    occupants: { type: 'string', default: '500' },
    samples: { type: 'string', default: '50' },
    duration: { type: 'string', default: '10' },
    workers: { type: 'string', default: '4' },
    senders: { type: 'string', default: '4' },
    window: { type: 'string', default: '16' },
    'body-bytes': { type: 'string', default: '100' },
    modules: { type: 'string', default: 'sasl,ping,disco,roster,presence,muc' },
    json: { type: 'string', default: '' },
    /** Write a V8 CPU profile of the server process into this directory. */
    profile: { type: 'string', default: '' },
    'server-cpu': { type: 'string', default: '' },
    port: { type: 'string', default: '' },
    'server-pid': { type: 'string', default: '' },
    role: { type: 'string', default: 'main' },
    help: { type: 'boolean', default: false, short: 'h' },
  },
});

// --- the server process ------------------------------------------------------------------------

type ToServer = { kind: 'stop' } | { kind: 'stats' };
type FromServer = { kind: 'ready'; port: number; pid: number } | { kind: 'stats'; cpuMs: number; rssMb: number };

async function serverMain(): Promise<void> {
  const { makeJid } = await import('../../src/jid.js');
  const occupants = Number(opts.occupants);
  const bench = await startBenchServer('muc-bench', {
    modules: opts.modules.split(','),
    // No flood control (message_rate 0): the senders are plain occupants sending as fast as the room reflects.
    config: { storage: { sqlite_synchronous: 'normal' }, modules: { muc: { max_occupants: Math.max(1000, occupants + 10), message_rate: 0 } } },
  });
  const server = bench.server;
  const batch: Promise<void>[] = [];
  for (let i = 0; i < occupants; i++) {
    batch.push(server.core.accounts.create(makeJid(`m${i}`, DOMAIN), PASSWORD));
    if (batch.length === 50) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  const port = bench.port;
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  process.on('message', (m: ToServer) => {
    if (m.kind === 'stats') process.send!({ kind: 'stats', cpuMs: cpu(), rssMb: process.memoryUsage().rss / 2 ** 20 } satisfies FromServer);
    if (m.kind === 'stop') {
      bench.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(err);
          process.exit(1);
        },
      );
    }
  });
  process.send!({ kind: 'ready', port, pid: process.pid } satisfies FromServer);
}

// --- the client workers ------------------------------------------------------------------------

type ToWorker =
  | { kind: 'login'; port: number; first: number; count: number; creator: boolean }
  | { kind: 'send'; index: number; seq: number; at: number }
  | { kind: 'pump'; senders: number[]; window: number; until: number; seqBase: number; seqStride: number }
  | { kind: 'count' }
  | { kind: 'quit' };
type FromWorker =
  | { kind: 'joined'; count: number }
  | { kind: 'arrived'; seq: number; first: number; last: number; median: number; count: number }
  | { kind: 'pumped'; sent: number }
  | { kind: 'counts'; received: number; sessions: number; perSeqMissing: number }
  | { kind: 'error'; message: string };

const BODY_RE = /<body>B:(\d+):/g;

class Session {
  socket!: net.Socket;
  private login = '';
  private tail = '';
  private scanning = false;
  /** Bench messages seen: seq -> arrival time. */
  readonly seen = new Map<number, number>();
  received = 0;
  onMessage: ((seq: number, at: number) => void) | undefined;

  constructor(readonly index: number) {}

  async connect(port: number, creator: boolean): Promise<void> {
    const user = `m${this.index}`;
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.setNoDelay(true);
    this.socket.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.on('data', (d: string) => this.onData(d));
    this.socket.on('error', () => {});
    const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${DOMAIN}' version='1.0'>`;
    this.socket.write(header + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${PASSWORD}`).toString('base64')}</auth>`);
    await this.waitFor(/<success/);
    this.login = '';
    this.socket.write(header + `<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>`);
    await this.waitFor(/<\/jid>/);
    this.login = '';
    this.socket.write(`<presence to='${ROOM}/n${this.index}'><x xmlns='http://jabber.org/protocol/muc'><history maxchars='0'/></x></presence>`);
    // The room's subject ends the join sequence (a creator gets 201 first and configures).
    if (creator) {
      await this.waitFor(/code=["']201["']/);
      this.socket.write(`<iq type='set' id='cfg' to='${ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
      await this.waitFor(/id=["']cfg["']/);
    }
    await this.waitFor(/<subject/);
    this.login = '';
    this.scanning = true;
  }

  private waiter: { text: RegExp; resolve: () => void } | undefined;

  /** Waits for `text` in what arrived since the last step (a pattern: servers quote attributes either way). */
  private waitFor(text: RegExp): Promise<void> {
    if (text.test(this.login)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`session ${this.index}: no ${text} within 60 s: ${this.login.slice(-300)}`)), 60_000);
      this.waiter = { text, resolve: () => (clearTimeout(timer), resolve()) };
    });
  }

  private onData(d: string): void {
    if (!this.scanning) {
      this.login += d;
      if (this.waiter && this.waiter.text.test(this.login)) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve();
      }
      return;
    }
    const at = now();
    const buf = this.tail + d;
    BODY_RE.lastIndex = 0;
    let end = 0;
    for (let m = BODY_RE.exec(buf); m; m = BODY_RE.exec(buf)) {
      const seq = Number(m[1]);
      end = BODY_RE.lastIndex;
      this.received++;
      if (!this.seen.has(seq)) this.seen.set(seq, at);
      this.onMessage?.(seq, at);
    }
    this.tail = buf.slice(Math.max(end, buf.length - 64));
  }

  send(seq: number, bodyBytes: number): void {
    this.socket.write(`<message to='${ROOM}' type='groupchat'><body>B:${seq}:${'x'.repeat(bodyBytes)}</body></message>`);
  }
}

async function workerMain(): Promise<void> {
  const sessions: Session[] = [];
  const send = (m: FromWorker) => process.send!(m);
  const bodyBytes = Number(opts['body-bytes']);
  // Errors are caught inside and reported to the parent.
  process.on('message', (m: ToWorker) => void onMessage(m));
  async function onMessage(m: ToWorker): Promise<void> {
    try {
      switch (m.kind) {
        case 'login': {
          const pending: Promise<void>[] = [];
          for (let i = 0; i < m.count; i++) {
            const s = new Session(m.first + i);
            sessions.push(s);
            if (m.creator && i === 0) await s.connect(m.port, true);
            else pending.push(s.connect(m.port, false));
            if (pending.length >= 50) await Promise.all(pending.splice(0));
          }
          await Promise.all(pending);
          send({ kind: 'joined', count: sessions.length });
          break;
        }
        case 'send': {
          // Latency sample: report when every local session has it.
          const watch = () => {
            const times = sessions.map((s) => s.seen.get(m.seq)).filter((x): x is number => x !== undefined);
            if (times.length < sessions.length) return false;
            times.sort((a, b) => a - b);
            send({ kind: 'arrived', seq: m.seq, first: times[0]!, last: times.at(-1)!, median: times[Math.floor(times.length / 2)]!, count: times.length });
            return true;
          };
          const sender = sessions.find((s) => s.index === m.index);
          if (sender) sender.send(m.seq, bodyBytes);
          const poll = () => (watch() ? undefined : setTimeout(poll, 1));
          poll();
          break;
        }
        case 'pump': {
          // Closed loop per sender: a new message each time one of its own comes back.
          let sent = 0;
          const mine = sessions.filter((s) => m.senders.includes(s.index));
          await Promise.all(
            mine.map(
              (s, k) =>
                new Promise<void>((resolve) => {
                  let next = m.seqBase + k;
                  const inFlight = new Set<number>();
                  const fire = () => {
                    while (inFlight.size < m.window && now() < m.until) {
                      inFlight.add(next);
                      s.send(next, bodyBytes);
                      sent++;
                      next += m.seqStride;
                    }
                    if (inFlight.size === 0) {
                      s.onMessage = undefined;
                      resolve();
                    }
                  };
                  s.onMessage = (seq) => {
                    if (inFlight.delete(seq)) fire();
                  };
                  fire();
                }),
            ),
          );
          send({ kind: 'pumped', sent });
          break;
        }
        case 'count': {
          const all = new Set<number>();
          for (const s of sessions) for (const seq of s.seen.keys()) all.add(seq);
          let missing = 0;
          for (const s of sessions) for (const seq of all) if (!s.seen.has(seq)) missing++;
          send({ kind: 'counts', received: sessions.reduce((n, s) => n + s.received, 0), sessions: sessions.length, perSeqMissing: missing });
          break;
        }
        case 'quit':
          for (const s of sessions) s.socket.destroy();
          process.exit(0);
      }
    } catch (err) {
      send({ kind: 'error', message: (err as Error).message });
    }
  }
}

// --- the main process ----------------------------------------------------------------------------

function child(role: string): ChildProcess {
  const profile = role === 'server' && opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${opts.profile}`] : [];
  return fork(FILE, [...process.argv.slice(2), '--role', role], { execArgv: [...process.execArgv, ...profile], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function next<T>(p: ChildProcess, kind: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (p.off('message', on), reject(new Error(`no ${kind} within ${timeoutMs} ms`))), timeoutMs);
    const on = (m: { kind: string; message?: string }) => {
      if (m.kind === 'error') return (clearTimeout(timer), p.off('message', on), reject(new Error(m.message)));
      if (m.kind !== kind) return;
      clearTimeout(timer);
      p.off('message', on);
      resolve(m as T);
    };
    p.on('message', on);
  });
}

/**
 * A server already running (--port, --server-pid) behind the same messages as the server child:
 * 'ready' at once, 'stats' from /proc/PID (CPU time in clock ticks of 10 ms, VmRSS).
 */
function externalServer(port: number, pid: number): ChildProcess {
  const emitter = new EventEmitter();
  const stats = (): FromServer => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return { kind: 'stats', cpuMs: (Number(fields[11]) + Number(fields[12])) * 10, rssMb: rssKiB / 1024 };
  };
  const fake = Object.assign(emitter, {
    send: (m: ToServer) => (m.kind === 'stats' ? setImmediate(() => emitter.emit('message', stats())) : undefined, true),
    exitCode: 0,
  });
  setImmediate(() => emitter.emit('message', { kind: 'ready', port, pid } satisfies FromServer));
  return fake as unknown as ChildProcess;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function main(): Promise<void> {
  if (opts.help) {
    console.log(
      readFileSync(FILE, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('//'))
        .slice(0, 25)
        .join('\n'),
    );
    return;
  }
  const occupants = Number(opts.occupants);
  const nWorkers = Math.max(1, Number(opts.workers));
  const samples = Number(opts.samples);
  const duration = Number(opts.duration);
  const senders = Math.min(Number(opts.senders), occupants);
  const window = Number(opts.window);
  const children: ChildProcess[] = [];
  const hardStop = setTimeout(
    () => {
      console.error('bench: overall time limit reached');
      for (const c of children) c.kill('SIGKILL');
      process.exit(2);
    },
    (300 + duration) * 1000,
  );
  hardStop.unref();
  try {
    const server = opts.port ? externalServer(Number(opts.port), Number(opts['server-pid'])) : child('server');
    if (!opts.port) children.push(server);
    const ready = await next<Extract<FromServer, { kind: 'ready' }>>(server, 'ready', 120_000);
    if (opts['server-cpu'] && !opts.port) execFileSync('taskset', ['-a', '-p', '-c', opts['server-cpu'], String(ready.pid)], { stdio: 'ignore' });
    console.log(
      opts.port ? `server pid ${ready.pid}, port ${ready.port}` : `server up (pid ${ready.pid}, port ${ready.port}, modules ${opts.modules}); ${occupants} users created`,
    );

    const workers = Array.from({ length: nWorkers }, () => child('client'));
    children.push(...workers);
    const per = Math.ceil(occupants / nWorkers);
    const ranges = workers.map((_, w) => ({ first: w * per, count: Math.max(0, Math.min(per, occupants - w * per)) }));
    const workerOf = (index: number) => Math.floor(index / per);
    const t0 = now();
    // The first worker's first session creates the room, then everyone enters.
    workers[0]!.send({ kind: 'login', port: ready.port, first: 0, count: ranges[0]!.count, creator: true } satisfies ToWorker);
    await next(workers[0]!, 'joined', 300_000);
    await Promise.all(
      workers.slice(1).map((w, i) => {
        w.send({ kind: 'login', port: ready.port, first: ranges[i + 1]!.first, count: ranges[i + 1]!.count, creator: false } satisfies ToWorker);
        return next(w, 'joined', 300_000);
      }),
    );
    console.log(`${occupants} occupants in ${ROOM} after ${((now() - t0) / 1000).toFixed(1)} s (${nWorkers} client processes)`);

    // Phase 2: one message at a time, from occupant 0.
    const lastTimes: number[] = [];
    const firstTimes: number[] = [];
    const medianTimes: number[] = [];
    for (let seq = 1; seq <= samples; seq++) {
      const at = now();
      const arrivals = workers.map((w) => next<Extract<FromWorker, { kind: 'arrived' }>>(w, 'arrived', 30_000));
      workers.forEach((w) => w.send({ kind: 'send', index: 0, seq, at } satisfies ToWorker));
      const got = await Promise.all(arrivals);
      lastTimes.push(Math.max(...got.map((g) => g.last)) - at);
      firstTimes.push(Math.min(...got.map((g) => g.first)) - at);
      medianTimes.push(got.map((g) => g.median).sort((a, b) => a - b)[Math.floor(got.length / 2)]! - at);
      await new Promise((r) => setTimeout(r, 20));
    }
    const sortedLast = [...lastTimes].sort((a, b) => a - b);
    const sortedFirst = [...firstTimes].sort((a, b) => a - b);
    console.log(
      `one message to all ${occupants} occupants (${samples} samples): median ${pct(sortedLast, 50).toFixed(2)} ms, p90 ${pct(sortedLast, 90).toFixed(2)} ms, ` +
        `max ${sortedLast.at(-1)!.toFixed(2)} ms; first occupant ${pct(sortedFirst, 50).toFixed(2)} ms`,
    );

    // Phase 3: sustained.
    server.send({ kind: 'stats' } satisfies ToServer);
    const before = await next<Extract<FromServer, { kind: 'stats' }>>(server, 'stats', 10_000);
    const senderIndexes = Array.from({ length: senders }, (_, k) => Math.floor((k * occupants) / senders));
    const start = now();
    const until = start + duration * 1000;
    const seqBase = 1_000_000;
    const pumped = workers.map((w, wi) => {
      const mine = senderIndexes.filter((i) => workerOf(i) === wi);
      if (mine.length === 0) return Promise.resolve({ kind: 'pumped', sent: 0 } as Extract<FromWorker, { kind: 'pumped' }>);
      // Each sender k of this worker numbers its messages seqBase + globalK + j * senders.
      const p = next<Extract<FromWorker, { kind: 'pumped' }>>(w, 'pumped', (duration + 60) * 1000);
      w.send({ kind: 'pump', senders: mine, window, until, seqBase: seqBase + senderIndexes.indexOf(mine[0]!), seqStride: senders } satisfies ToWorker);
      return p;
    });
    const sent = (await Promise.all(pumped)).reduce((n, p) => n + p.sent, 0);
    const elapsed = (now() - start) / 1000;
    server.send({ kind: 'stats' } satisfies ToServer);
    const after = await next<Extract<FromServer, { kind: 'stats' }>>(server, 'stats', 10_000);
    await new Promise((r) => setTimeout(r, 1000)); // drain
    const counts = await Promise.all(
      workers.map((w) => {
        const p = next<Extract<FromWorker, { kind: 'counts' }>>(w, 'counts', 30_000);
        w.send({ kind: 'count' } satisfies ToWorker);
        return p;
      }),
    );
    const received = counts.reduce((n, c) => n + c.received, 0) - samples * occupants;
    const missing = counts.reduce((n, c) => n + c.perSeqMissing, 0);
    const rate = sent / elapsed;
    const cpu = (after.cpuMs - before.cpuMs) / 1000 / elapsed;
    console.log(
      `sustained: ${senders} senders x window ${window}, ${elapsed.toFixed(1)} s: ${sent} messages = ${rate.toFixed(0)} messages/s to ${occupants} occupants ` +
        `= ${((rate * occupants) / 1000).toFixed(0)}k deliveries/s; received ${received} of ${sent * occupants} expected, ${missing} missing; ` +
        `server CPU ${(cpu * 100).toFixed(0)}% of a core, RSS ${after.rssMb.toFixed(0)} MB`,
    );
    if (opts.json) {
      writeFileSync(
        opts.json,
        JSON.stringify(
          {
            occupants,
            modules: opts.port ? undefined : opts.modules,
            latencyMs: {
              median: pct(sortedLast, 50),
              p90: pct(sortedLast, 90),
              max: sortedLast.at(-1),
              firstMedian: pct(sortedFirst, 50),
              medianOccupant: pct(
                [...medianTimes].sort((a, b) => a - b),
                50,
              ),
            },
            sustained: { seconds: elapsed, messages: sent, messagesPerSecond: rate, deliveriesPerSecond: rate * occupants, missing, serverCpu: cpu, rssMb: after.rssMb },
          },
          null,
          2,
        ),
      );
    }
    if (missing > 0 || received < sent * occupants) process.exitCode = 1;
    for (const w of workers) w.send({ kind: 'quit' } satisfies ToWorker);
    if (!opts.port) {
      server.send({ kind: 'stop' } satisfies ToServer);
      await new Promise<void>((resolve) => server.once('exit', () => resolve()));
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill();
  }
}

if (opts.role === 'server') await serverMain();
else if (opts.role === 'client') await workerMain();
else await main();

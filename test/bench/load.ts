// XMPP load tool: N authenticated c2s sessions, messages pumped between pairs of them.
//
//   npx tsx test/bench/load.ts --help
//
// A lean raw-socket client (one XmlStreamParser and one socket per session, no client library),
// run in one or more worker processes (child processes of this one, same file) so the client is
// not the bottleneck. Works against any XMPP server (Starling, Prosody, ...).
//
// Phases, each bounded in time:
//   1. logins: connect, [STARTTLS], SASL PLAIN, stream restart, bind, initial presence.
//      Pipelined: the stream header and <auth/> (or <starttls/>) go in one write without waiting
//      for the features; after <success/> the new header, the bind IQ and the initial presence
//      go in one write. So a plain login is two round trips, a STARTTLS one three and a handshake.
//   2. idle: wait --idle-settle seconds, read the server's VmRSS: RSS per idle session (against
//      its RSS read after as long a wait before the logins).
//   3. load: sessions (2i, 2i+1), i < --pairs, send each other chat messages to the full JID,
//      either closed-loop (--rate 0: a window of --window messages in flight per sender) or
//      open-loop (--rate R: R messages/s in total, paced every few ms). A message's id carries
//      its send time; latency is measured when it arrives at the receiving socket (both ends
//      of a pair live in the same worker process, so one clock).
//   4. close: </stream:stream> on every session.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Element } from '@xmpp/xml';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { XmlStreamParser } from '../../src/xml/parser.js';

// --- options -----------------------------------------------------------------------------------

const OPTIONS = {
  host: { type: 'string', default: '127.0.0.1', help: 'server address (IPv4 loopback by default)' },
  port: { type: 'string', default: '5222', help: 'c2s port (plain TCP, STARTTLS offered or not); several, comma-separated: the nodes of a cluster (see --spread)' },
  spread: {
    type: 'string',
    default: 'sessions',
    help: 'with several ports: "sessions" (session k on port k mod P: the two ends of a pair on different ports) or "pairs" (pair i on port i mod P, both ends)',
  },
  domain: { type: 'string', default: 'localhost', help: 'XMPP domain (stream "to", user JIDs)' },
  sessions: { type: 'string', default: '200', help: 'number of sessions to log in (users PREFIX0 .. PREFIX<N-1>)' },
  pairs: { type: 'string', default: '100', help: 'pairs that pump messages (sessions 2i and 2i+1); 0: no load phase' },
  duration: { type: 'string', default: '20', help: 'seconds of message pumping (warm-up included)' },
  warmup: { type: 'string', default: '2', help: 'first seconds of pumping left out of the figures' },
  rate: { type: 'string', default: '0', help: 'total messages/s to send, paced; 0 or "unlimited": closed loop with --window' },
  window: { type: 'string', default: '10', help: 'closed loop: messages in flight per sender (each pair has two senders)' },
  'body-bytes': { type: 'string', default: '100', help: 'size of the message body text' },
  tls: { type: 'boolean', default: false, help: 'STARTTLS before authenticating (certificate not checked)' },
  websocket: { type: 'string', default: '', help: 'XMPP over WebSocket (RFC 7395) to this ws:// URL instead of TCP' },
  'server-pid': { type: 'string', default: '', help: 'server process id: VmRSS and CPU time read from /proc/PID; several, comma-separated: summed' },
  'redis-stats': { type: 'string', default: '', help: 'redis:// URL: the commands that Redis processed while measuring, per delivered message (a cluster)' },
  'user-prefix': { type: 'string', default: 'bench', help: 'user names are PREFIX<index>' },
  password: { type: 'string', default: 'bench-password', help: 'password of every user' },
  resource: { type: 'string', default: 'load', help: 'resource to bind' },
  workers: { type: 'string', default: '1', help: 'client worker processes' },
  'login-concurrency': { type: 'string', default: '100', help: 'logins in flight at once (over all workers)' },
  'source-ips': { type: 'string', default: '1', help: 'spread connections over 127.0.0.1 .. 127.0.0.K (per-IP limits)' },
  'idle-settle': { type: 'string', default: '5', help: 'seconds to wait before reading the server RSS, before the logins and after them' },
  'idle-hold': { type: 'string', default: '0', help: 'seconds to keep the sessions idle after reading the RSS (time to inspect the server)' },
  'login-timeout': { type: 'string', default: '60', help: 'seconds one login may take before it counts as failed' },
  'max-failures': { type: 'string', default: '0', help: 'stop logging in after this many failed logins (0: N/10 + 10)' },
  'wait-quiet': { type: 'string', default: '0', help: 'first wait (at most this many seconds) until the CPUs are < 25% busy' },
  label: { type: 'string', default: '', help: 'name of the server under test, for the report' },
  json: { type: 'string', default: '', help: 'also write the results as JSON to this file' },
  help: { type: 'boolean', default: false, short: 'h', help: 'this text' },
} as const;

type OptionName = keyof typeof OPTIONS;
type Values = { [K in OptionName]: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

function usage(): string {
  const lines = ['usage: npx tsx test/bench/load.ts [options]', '', 'options:'];
  for (const [name, o] of Object.entries(OPTIONS)) {
    const arg = o.type === 'boolean' ? '' : ' X';
    const def = o.type === 'boolean' || o.default === '' ? '' : ` (default ${o.default})`;
    lines.push(`  --${(name + arg).padEnd(22)} ${o.help}${def}`);
  }
  lines.push('', 'Example: 5,000 idle sessions and 100 pairs pumping for 20 s against a server on 5222:');
  lines.push('  npx tsx test/bench/load.ts --port 5222 --sessions 5000 --pairs 100 --server-pid $(pidof node)');
  return lines.join('\n');
}

// --- latency histogram (log-linear, ~0.2% resolution, microseconds) -----------------------------

const HIST_SIZE = 1024 + 22 * 512;

function bucketOf(us: number): number {
  const v = Math.max(0, Math.min(0x7fffffff, Math.round(us)));
  if (v < 1024) return v;
  const e = 31 - Math.clz32(v); // >= 10
  const sub = v >>> (e - 9); // 512 .. 1023
  return 1024 + (e - 10) * 512 + (sub - 512);
}

function valueOf(bucket: number): number {
  if (bucket < 1024) return bucket;
  const e = 10 + Math.floor((bucket - 1024) / 512);
  const sub = 512 + ((bucket - 1024) % 512);
  return (sub + 0.5) * 2 ** (e - 9);
}

class Histogram {
  readonly counts = new Float64Array(HIST_SIZE);
  total = 0;
  max = 0;
  sum = 0;
  record(us: number): void {
    this.counts[bucketOf(us)]!++;
    this.total++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }
  toJSON(): SparseHist {
    const pairs: [number, number][] = [];
    for (let i = 0; i < HIST_SIZE; i++) if (this.counts[i]) pairs.push([i, this.counts[i]!]);
    return { pairs, total: this.total, max: this.max, sum: this.sum };
  }
  add(s: SparseHist): void {
    for (const [i, c] of s.pairs) this.counts[i]! += c;
    this.total += s.total;
    this.sum += s.sum;
    this.max = Math.max(this.max, s.max);
  }
  percentile(p: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.ceil((p / 100) * this.total);
    let seen = 0;
    for (let i = 0; i < HIST_SIZE; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }
}

interface SparseHist {
  pairs: [number, number][];
  total: number;
  max: number;
  sum: number;
}

// --- the protocol between the coordinator and its workers ---------------------------------------

interface WorkerInit {
  host: string;
  /** The ports sessions spread over (by `spread`). */
  ports: number[];
  spread: 'sessions' | 'pairs';
  domain: string;
  tls: boolean;
  /** ws:// URL: XMPP over WebSocket instead of TCP. */
  websocket: string;
  userPrefix: string;
  password: string;
  resource: string;
  sourceIps: number;
  loginTimeoutMs: number;
  maxFailures: number;
  bodyBytes: number;
  /** Global indexes of this worker's sessions. */
  indexes: number[];
}

interface PumpOrder {
  /** Pairs (global indexes of their two sessions) this worker pumps. */
  pairs: [number, number][];
  durationMs: number;
  warmupMs: number;
  /** Messages/s per sender, 0 for the closed loop. */
  perSenderRate: number;
  window: number;
}

type ToWorker = { kind: 'init'; init: WorkerInit; concurrency: number } | { kind: 'pump'; order: PumpOrder } | { kind: 'close' };

interface LoginReport {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  loginHist: SparseHist;
  /** Sessions that closed (by the server or on error) after logging in. */
  droppedAfterLogin: number;
}

interface PumpReport {
  sent: number;
  sentInWindow: number;
  delivered: number;
  deliveredInWindow: number;
  bounced: number;
  /** Delivered with a 'from' that is not the partner's full JID. */
  misrouted: number;
  /** Sent but neither delivered nor bounced 5 s after the end. */
  lost: number;
  latency: SparseHist;
  windowMs: number;
  streamErrors: Record<string, number>;
  droppedDuringLoad: number;
  clientCpuMs: number;
}

type FromWorker =
  | { kind: 'ready' }
  | { kind: 'progress'; ok: number; failed: number }
  | { kind: 'logged-in'; report: LoginReport; cpuMs: number; rssKiB: number }
  | { kind: 'pumped'; report: PumpReport }
  | { kind: 'closed' }
  | { kind: 'fatal'; message: string };

// --- worker side: the sessions ------------------------------------------------------------------

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
/** Each WebSocket message is parsed inside this root (the stanzas' namespace as on TCP). */
const WS_ROOT = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

type State = 'connecting' | 'starttls' | 'auth' | 'bind' | 'online' | 'closing' | 'closed';

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** Writes queued in the current tick go out as one socket write per session. */
const dirty = new Set<Session>();
let flushScheduled = false;
function scheduleFlush(s: Session): void {
  dirty.add(s);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}
function flushAll(): void {
  flushScheduled = false;
  for (const s of dirty) s.flush();
  dirty.clear();
}

interface SessionEvents {
  online(s: Session): void;
  failed(s: Session, reason: string): void;
  message(s: Session, el: Element): void;
  closed(s: Session, reason: string): void;
}

class Session {
  state: State = 'connecting';
  jid = '';
  partner: Session | undefined;
  startedAt = 0;
  /** Error condition seen on the stream, if any. */
  streamError = '';
  private socket!: net.Socket;
  private ws: WebSocket | undefined;
  private parser!: XmlStreamParser;
  /** Queued writes: one string for TCP, one message per element for WebSocket. */
  private out: string[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly index: number,
    private readonly init: WorkerInit,
    private readonly events: SessionEvents,
  ) {}

  get user(): string {
    return `${this.init.userPrefix}${this.index}`;
  }

  private header(): string {
    if (this.init.websocket) return `<open xmlns='${NS_FRAMING}' to='${xmlEscape(this.init.domain)}' version='1.0'/>`;
    return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${xmlEscape(this.init.domain)}' version='1.0'>`;
  }

  private auth(): string {
    const token = Buffer.from(`\0${this.user}\0${this.init.password}`).toString('base64');
    return `<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${token}</auth>`;
  }

  start(): void {
    this.startedAt = performance.now();
    const init = this.init;
    const slot = init.spread === 'pairs' ? Math.floor(this.index / 2) : this.index;
    const options: net.NetConnectOpts = { host: init.host, port: init.ports[slot % init.ports.length]! };
    if (init.sourceIps > 1) options.localAddress = `127.0.0.${1 + (this.index % init.sourceIps)}`;
    this.timer = setTimeout(() => this.fail(`timeout (${this.state})`), init.loginTimeoutMs);
    if (init.websocket) return this.startWebSocket();
    const socket = net.connect(options);
    socket.setNoDelay(true);
    this.attach(socket);
    socket.once('connect', () => {
      this.state = init.tls ? 'starttls' : 'auth';
      this.queue(this.header(), init.tls ? `<starttls xmlns='${NS_TLS}'/>` : this.auth());
    });
  }

  /** The same session over a WebSocket: each message is parsed inside a stream root of our own. */
  private startWebSocket(): void {
    const ws = new WebSocket(this.init.websocket, ['xmpp'], { perMessageDeflate: false });
    this.ws = ws;
    this.socket = undefined as unknown as net.Socket;
    this.parser = this.newParser();
    this.parser.write(WS_ROOT);
    ws.on('message', (data: Buffer) => this.parser.write(data));
    ws.on('error', (err) => this.fail(`${err.message} (${this.state})`));
    ws.on('close', () => this.onSocketClosed());
    ws.once('open', () => {
      this.state = 'auth';
      this.queue(this.header(), this.auth());
    });
  }

  private newParser(): XmlStreamParser {
    return new XmlStreamParser(
      { maxStanzaBytes: 1 << 20, maxDepth: 64, maxAttributes: 64 },
      {
        streamStart: () => {},
        stanza: (el) => this.onElement(el),
        streamEnd: () => this.onStreamEnd(),
        error: (err) => this.fail(`client parser: ${err.message}`),
      },
    );
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    this.parser = this.newParser();
    socket.on('data', (chunk: Buffer) => this.parser.write(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(`${err.code ?? err.message} (${this.state})`));
    socket.on('close', () => this.onSocketClosed());
  }

  queue(...elements: string[]): void {
    if (this.state === 'closed') return;
    this.out.push(...elements);
    scheduleFlush(this);
  }

  flush(): void {
    if (this.out.length === 0 || this.state === 'closed') return;
    const out = this.out;
    this.out = [];
    if (this.ws) {
      if (this.ws.readyState === WebSocket.OPEN) for (const element of out) this.ws.send(element);
    } else if (!this.socket.destroyed) this.socket.write(out.join(''));
  }

  private onElement(el: Element): void {
    switch (el.name) {
      case 'message':
        if (this.state === 'online') this.events.message(this, el);
        return;
      case 'presence':
        return;
      case 'iq':
        if (this.state === 'bind' && el.attrs.id === 'bind') {
          if (el.attrs.type !== 'result') return this.fail(`bind: ${condition(el)}`);
          this.jid = el.getChild('bind', NS_BIND)?.getChildText('jid') ?? '';
          this.state = 'online';
          clearTimeout(this.timer);
          this.events.online(this);
        } else if (el.attrs.type === 'get' || el.attrs.type === 'set') {
          // Server pings (XEP-0199) and anything else: answer (an empty result is fine for a ping).
          const to = el.attrs.from ? ` to='${xmlEscape(el.attrs.from)}'` : '';
          this.queue(`<iq type='result' id='${xmlEscape(el.attrs.id ?? '')}'${to}/>`);
        }
        return;
      case 'proceed':
        if (this.state === 'starttls') return this.upgrade();
        return;
      case 'success':
        if (this.state !== 'auth') return;
        this.state = 'bind';
        this.parser = this.newParser();
        if (this.ws) this.parser.write(WS_ROOT);
        this.queue(this.header(), `<iq type='set' id='bind'><bind xmlns='${NS_BIND}'><resource>${xmlEscape(this.init.resource)}</resource></bind></iq>`, '<presence/>');
        return;
      case 'failure':
        return this.fail(`${el.attrs.xmlns === NS_TLS ? 'starttls' : 'sasl'} failure: ${condition(el)}`);
      case 'stream:error':
        this.streamError = condition(el);
        return;
      case 'close':
        if (el.attrs.xmlns === NS_FRAMING) this.onStreamEnd();
        return;
      default:
        return; // stream:features and the rest
    }
  }

  private upgrade(): void {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    const secure = tls.connect({ socket: raw, servername: this.init.domain, rejectUnauthorized: false });
    this.attach(secure);
    secure.once('secureConnect', () => {
      this.state = 'auth';
      this.queue(this.header(), this.auth());
    });
  }

  private onStreamEnd(): void {
    if (this.state !== 'closing') this.fail(`stream closed by the server${this.streamError ? `: ${this.streamError}` : ''} (${this.state})`);
    this.end();
  }

  private onSocketClosed(): void {
    if (this.state === 'closed') return;
    const was = this.state;
    this.state = 'closed';
    clearTimeout(this.timer);
    const reason = this.streamError ? `stream error ${this.streamError} (${was})` : `connection closed (${was})`;
    if (was === 'closing') return this.events.closed(this, 'closing');
    if (was === 'online') return this.events.closed(this, reason);
    this.events.failed(this, reason);
  }

  fail(reason: string): void {
    if (this.state === 'closed') return;
    const was = this.state;
    this.state = 'closed';
    clearTimeout(this.timer);
    this.destroy();
    if (was === 'online' || was === 'closing') this.events.closed(this, reason);
    else this.events.failed(this, reason);
  }

  close(): void {
    if (this.state === 'closed') return;
    this.queue(this.ws ? `<close xmlns='${NS_FRAMING}'/>` : '</stream:stream>');
    this.flush();
    this.state = 'closing';
    if (!this.ws) this.end();
    this.timer = setTimeout(() => this.destroy(), 3000);
    this.timer.unref();
  }

  private end(): void {
    if (this.ws) this.ws.close(1000);
    else this.socket.end();
  }

  private destroy(): void {
    if (this.ws) this.ws.terminate();
    else this.socket?.destroy();
  }
}

function condition(el: Element): string {
  const child = el.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text');
  const text = el.getChildText('text');
  return (child?.name ?? el.attrs.type ?? el.name) + (text ? ` "${text}"` : '');
}

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

async function runWorker(): Promise<void> {
  const send = (m: FromWorker) => process.send!(m);
  let init!: WorkerInit;
  const sessions = new Map<number, Session>();
  let droppedAfterLogin = 0;
  let loadPhase: Pumper | undefined;
  const streamErrors: Record<string, number> = {};

  const events: SessionEvents = {
    online: () => {},
    failed: () => {},
    message: (s, el) => loadPhase?.received(s, el),
    closed: (_s, reason) => {
      if (reason === 'closing') return;
      droppedAfterLogin++;
      bump(streamErrors, reason);
      loadPhase?.dropped();
    },
  };

  const login = async (concurrency: number): Promise<LoginReport> => {
    const errors: Record<string, number> = {};
    const hist = new Histogram();
    let ok = 0;
    let failed = 0;
    let next = 0;
    let lastProgress = Date.now();
    await new Promise<void>((resolve) => {
      let inFlight = 0;
      const pump = () => {
        while (inFlight < concurrency && next < init.indexes.length && (init.maxFailures <= 0 || failed < init.maxFailures)) {
          const s = new Session(init.indexes[next++]!, init, events);
          inFlight++;
          sessions.set(s.index, s);
          s.start();
        }
        if (inFlight === 0) resolve();
      };
      events.online = (s) => {
        inFlight--;
        ok++;
        hist.record((performance.now() - s.startedAt) * 1000);
        progress();
        pump();
      };
      events.failed = (s, reason) => {
        inFlight--;
        failed++;
        sessions.delete(s.index);
        bump(errors, reason);
        progress();
        pump();
      };
      const progress = () => {
        const now = Date.now();
        if (now - lastProgress > 1000) {
          lastProgress = now;
          send({ kind: 'progress', ok, failed });
        }
      };
      pump();
    });
    events.online = () => {};
    events.failed = () => {};
    return { ok, failed, errors, loginHist: hist.toJSON(), droppedAfterLogin };
  };

  // Errors are caught inside and reported to the parent.
  process.on('message', (m: ToWorker) => void onMessage(m));
  async function onMessage(m: ToWorker): Promise<void> {
    try {
      if (m.kind === 'init') {
        init = m.init;
        const cpu0 = process.cpuUsage();
        const report = await login(m.concurrency);
        const cpu = process.cpuUsage(cpu0);
        send({ kind: 'logged-in', report, cpuMs: (cpu.user + cpu.system) / 1000, rssKiB: Math.round(process.memoryUsage.rss() / 1024) });
      } else if (m.kind === 'pump') {
        loadPhase = new Pumper(m.order, sessions, init.bodyBytes, init.domain);
        const report = await loadPhase.run();
        report.streamErrors = streamErrors;
        send({ kind: 'pumped', report });
        loadPhase = undefined;
      } else if (m.kind === 'close') {
        for (const s of sessions.values()) s.close();
        const deadline = Date.now() + 4000;
        while (Date.now() < deadline && [...sessions.values()].some((s) => s.state !== 'closed')) await sleep(50);
        for (const s of sessions.values()) if (s.state !== 'closed') s.fail('close timeout');
        send({ kind: 'closed' });
        setTimeout(() => process.exit(0), 100);
      }
    } catch (err) {
      send({ kind: 'fatal', message: (err as Error).stack ?? String(err) });
    }
  }
  process.on('disconnect', () => process.exit(0));
  send({ kind: 'ready' });
}

/** The load phase in one worker. */
class Pumper {
  private readonly senders: { s: Session; to: Session; sent: number; inFlight: number }[] = [];
  private readonly bySession = new Map<Session, Pumper['senders'][number]>();
  private readonly latency = new Histogram();
  private readonly padding: string;
  private t0 = 0;
  private windowStart = 0;
  private windowEnd = 0;
  private sending = false;
  private sent = 0;
  private sentInWindow = 0;
  private delivered = 0;
  private deliveredInWindow = 0;
  private bounced = 0;
  private misrouted = 0;
  private droppedSessions = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly order: PumpOrder,
    sessions: Map<number, Session>,
    bodyBytes: number,
    private readonly domain: string,
  ) {
    this.padding = 'x'.repeat(Math.max(0, bodyBytes - 24));
    for (const [a, b] of order.pairs) {
      const sa = sessions.get(a);
      const sb = sessions.get(b);
      if (!sa || !sb || sa.state !== 'online' || sb.state !== 'online') continue; // a failed login: pair left out
      for (const [from, to] of [
        [sa, sb],
        [sb, sa],
      ] as const) {
        const sender = { s: from, to, sent: 0, inFlight: 0 };
        this.senders.push(sender);
        this.bySession.set(from, sender);
      }
    }
  }

  private sendOne(sender: Pumper['senders'][number], now: number): void {
    const seq = sender.sent++;
    sender.inFlight++;
    this.sent++;
    if (now >= this.windowStart && now < this.windowEnd) this.sentInWindow++;
    const stamp = Math.round(now * 1000); // microseconds on this worker's monotonic clock
    sender.s.queue(`<message to='${sender.to.jid}' type='chat' id='L${stamp}.${seq}'><body>${stamp} ${seq} ${this.padding}</body></message>`);
  }

  received(receiver: Session, el: Element): void {
    const id = el.attrs.id ?? '';
    if (id.charCodeAt(0) !== 76 /* L */) return;
    const now = performance.now();
    const sender = receiver.partner ? this.bySession.get(receiver.partner) : undefined;
    if (el.attrs.type === 'error') {
      // A bounce comes back to the sender.
      this.bounced++;
      const own = this.bySession.get(receiver);
      if (own) own.inFlight--;
      this.refill(own, now);
      return this.checkDrained();
    }
    if (receiver.partner && el.attrs.from !== receiver.partner.jid) this.misrouted++;
    this.delivered++;
    const sentAt = Number(id.slice(1, id.indexOf('.'))) / 1000;
    if (now >= this.windowStart && now < this.windowEnd) {
      this.deliveredInWindow++;
      this.latency.record((now - sentAt) * 1000);
    }
    if (sender) {
      sender.inFlight--;
      this.refill(sender, now);
    }
    this.checkDrained();
  }

  private checkDrained(): void {
    if (!this.sending && this.wake && this.senders.every((x) => x.inFlight <= 0)) this.wake();
  }

  private refill(sender: Pumper['senders'][number] | undefined, now: number): void {
    if (!sender || !this.sending || this.order.perSenderRate > 0) return;
    if (now >= this.t0 + this.order.durationMs) return;
    while (sender.inFlight < this.order.window) this.sendOne(sender, now);
  }

  dropped(): void {
    this.droppedSessions++;
  }

  async run(): Promise<PumpReport> {
    const cpu0 = process.cpuUsage();
    for (const x of this.senders) x.s.partner = x.to;
    this.t0 = performance.now();
    this.windowStart = this.t0 + this.order.warmupMs;
    this.windowEnd = this.t0 + this.order.durationMs;
    this.sending = true;
    if (this.senders.length > 0) {
      if (this.order.perSenderRate > 0) {
        // Open loop: every 5 ms, each sender catches up with its schedule. The senders' schedules
        // are spread over one interval (sender i is due at (k + i/n) / rate), so the offered load
        // is even: without the offsets every sender is due at once, in bursts of one message per
        // sender every 1/rate (200 messages every 100 ms for 2,000 msgs/s over 100 pairs).
        const rate = this.order.perSenderRate / 1000; // per ms
        const phase = (i: number) => 1 - (i + 1) / this.senders.length;
        await new Promise<void>((resolve) => {
          const tick = setInterval(() => {
            const now = performance.now();
            if (now >= this.windowEnd) {
              clearInterval(tick);
              return resolve();
            }
            const elapsed = (now - this.t0) * rate;
            this.senders.forEach((x, i) => {
              const due = Math.floor(elapsed + phase(i));
              // Never more than 10,000 in flight per sender: a server that stops reading must not eat the client's memory.
              while (x.sent < due && x.inFlight < 10_000) this.sendOne(x, now);
            });
          }, 5);
        });
      } else {
        const now = performance.now();
        for (const x of this.senders) while (x.inFlight < this.order.window) this.sendOne(x, now);
        await sleep(this.order.durationMs);
      }
    }
    this.sending = false;
    // Drain: wait (at most 5 s) for what is still in flight.
    if (this.senders.some((x) => x.inFlight > 0)) {
      await Promise.race([new Promise<void>((resolve) => (this.wake = resolve)), sleep(5000)]);
    }
    const cpu = process.cpuUsage(cpu0);
    return {
      sent: this.sent,
      sentInWindow: this.sentInWindow,
      delivered: this.delivered,
      deliveredInWindow: this.deliveredInWindow,
      bounced: this.bounced,
      misrouted: this.misrouted,
      lost: this.sent - this.delivered - this.bounced,
      latency: this.latency.toJSON(),
      windowMs: this.windowEnd - this.windowStart,
      streamErrors: {},
      droppedDuringLoad: this.droppedSessions,
      clientCpuMs: (cpu.user + cpu.system) / 1000,
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- coordinator side -------------------------------------------------------------------------

interface ProcSample {
  rssKiB: number;
  cpuTicks: number;
}

/** The sum over several processes (the nodes of a cluster); undefined when one cannot be read. */
function readProcs(pids: number[]): ProcSample | undefined {
  if (pids.length === 0) return undefined;
  const samples = pids.map(readProc);
  if (samples.some((x) => x === undefined)) return undefined;
  return samples.reduce((a, b) => ({ rssKiB: a!.rssKiB + b!.rssKiB, cpuTicks: a!.cpuTicks + b!.cpuTicks }));
}

/** Commands Redis processed since it started (INFO stats). */
async function redisCommands(redis: Redis): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
}

function readProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state(3) ... utime(14) stime(15), counted from 1 with pid and comm.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return { rssKiB: rss ? Number(rss[1]) : NaN, cpuTicks: utime + stime };
  } catch {
    return undefined;
  }
}

const CLK_TCK = 100; // Linux USER_HZ

/** Busy and total jiffies of each CPU (/proc/stat), to see what else ran on the machine. */
function readCpus(): { busy: number; total: number }[] {
  try {
    return readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((l) => /^cpu\d+ /.test(l))
      .map((l) => {
        const [user, nice, system, idle, iowait, irq, softirq, steal] = l.split(/\s+/).slice(1).map(Number) as number[];
        const busy = user! + nice! + system! + irq! + softirq! + (steal ?? 0);
        return { busy, total: busy + idle! + iowait! };
      });
  } catch {
    return [];
  }
}

/** Per-CPU busy percentage between two readings. */
function cpuBusy(a: { busy: number; total: number }[], b: { busy: number; total: number }[]): number[] {
  return b.map((x, i) => Math.round(((x.busy - a[i]!.busy) / Math.max(1, x.total - a[i]!.total)) * 1000) / 10);
}

interface Results {
  label: string;
  date: string;
  machine: string;
  target: string;
  tls: boolean;
  sessions: number;
  workers: number;
  logins: {
    ok: number;
    failed: number;
    seconds: number;
    perSecond: number;
    p50Ms: number;
    p99Ms: number;
    errors: Record<string, number>;
    serverCpuPct: number;
    clientCpuPct: number;
    cpuBusyPct: number[];
  };
  rss?: { beforeKiB: number; idleKiB: number; afterLoadKiB?: number; perIdleSessionKiB: number };
  load?: {
    pairs: number;
    mode: string;
    seconds: number;
    sent: number;
    delivered: number;
    deliveredPerSecond: number;
    bounced: number;
    misrouted: number;
    lost: number;
    p50Ms: number;
    p90Ms: number;
    p99Ms: number;
    maxMs: number;
    serverCpuPct: number;
    clientCpuPct: number;
    /** Busy % of each CPU of the machine over the window (server, client and anything else). */
    cpuBusyPct: number[];
    streamErrors: Record<string, number>;
    droppedSessions: number;
    /** With --redis-stats: Redis commands (all clients) per message delivered in the window. */
    redisCommandsPerMessage?: number;
  };
  droppedWhileIdle: number;
}

async function runCoordinator(v: Values): Promise<number> {
  const num = (name: OptionName, min = 0): number => {
    const raw = v[name] as string;
    const n = name === 'rate' && raw === 'unlimited' ? 0 : Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}, got "${raw}"`);
    return n;
  };
  const sessions = num('sessions', 1);
  const pairs = Math.min(num('pairs'), Math.floor(sessions / 2));
  const workers = Math.max(1, Math.min(num('workers', 1), sessions));
  const serverPids = v['server-pid'] ? v['server-pid'].split(',').map(Number) : [];
  if (serverPids.some((pid) => !Number.isInteger(pid) || pid < 1)) throw new Error(`--server-pid: expected process ids, got "${v['server-pid']}"`);
  const serverPid = serverPids.length > 0;
  const ports = v.port.split(',').map(Number);
  if (ports.some((port) => !Number.isInteger(port) || port < 1 || port > 65535)) throw new Error(`--port: expected ports, got "${v.port}"`);
  if (v.spread !== 'sessions' && v.spread !== 'pairs') throw new Error(`--spread: expected "sessions" or "pairs", got "${v.spread}"`);
  const redis = v['redis-stats'] ? new Redis(v['redis-stats']) : undefined;
  const concurrency = Math.max(1, Math.floor(num('login-concurrency', 1) / workers));
  const maxFailures = num('max-failures') || Math.floor(sessions / 10) + 10;
  const label = v.label || `${v.host}:${v.port}`;
  const log = (s: string) => console.error(`[load ${label}] ${s}`);

  const children: ChildProcess[] = [];
  const inbox: FromWorker[][] = [];
  const waiters: (() => void)[] = [];
  const file = fileURLToPath(import.meta.url);
  for (let w = 0; w < workers; w++) {
    const child = fork(file, ['--worker'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    inbox.push([]);
    child.on('message', (m: FromWorker) => {
      if (m.kind === 'progress') return;
      if (m.kind === 'fatal') log(`worker ${w} failed: ${m.message}`);
      inbox[w]!.push(m);
      for (const f of waiters.splice(0)) f();
    });
    child.on('exit', (code) => {
      if (code) log(`worker ${w} exited with ${code}`);
      inbox[w]!.push({ kind: 'fatal', message: `exited with ${code}` });
      for (const f of waiters.splice(0)) f();
    });
  }
  const collect = async <K extends FromWorker['kind']>(kind: K, timeoutMs: number): Promise<Extract<FromWorker, { kind: K }>[]> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const done = inbox.every((q) => q.some((m) => m.kind === kind || m.kind === 'fatal'));
      if (done) {
        const out = inbox.map(
          (q) =>
            q.splice(
              q.findIndex((m) => m.kind === kind || m.kind === 'fatal'),
              1,
            )[0]!,
        );
        const bad = out.find((m) => m.kind === 'fatal');
        if (bad) throw new Error(`a worker failed: ${(bad as { message: string }).message}`);
        return out as Extract<FromWorker, { kind: K }>[];
      }
      if (Date.now() > deadline) throw new Error(`workers did not report "${kind}" within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 500);
      });
    }
  };

  // Session k lives in worker floor(k/2) mod W, so both ends of pair i are in worker i mod W.
  const indexes: number[][] = children.map(() => []);
  for (let k = 0; k < sessions; k++) indexes[Math.floor(k / 2) % workers]!.push(k);

  await collect('ready', 60_000);
  const quietLimit = num('wait-quiet') * 1000;
  let quietWaitedMs = 0;
  if (quietLimit > 0) {
    const started = Date.now();
    for (;;) {
      const a = readCpus();
      await sleep(1000);
      const busy = cpuBusy(a, readCpus());
      const mean = busy.reduce((x, y) => x + y, 0) / Math.max(1, busy.length);
      if (mean < 25) break;
      if (Date.now() - started > quietLimit) {
        log(`the machine is still busy (CPUs ${busy.join('% ')}%) after ${quietLimit / 1000} s: going on`);
        break;
      }
      if (quietWaitedMs === 0) log(`waiting for the machine to quiet down (CPUs ${busy.join('% ')}% busy)`);
      quietWaitedMs = Date.now() - started;
    }
  }
  // The RSS before the logins is read after the same settling time as the idle one: a server
  // that gives memory back when idle (Starling's idle collector) has done so for both figures.
  const settle = num('idle-settle') * 1000;
  if (serverPid) await sleep(settle);
  const procBefore = readProcs(serverPids);
  const cpusBefore = readCpus();
  if (serverPid && !procBefore) log(`cannot read /proc/{${serverPids.join(',')}}: no RSS figures`);
  log(`logging in ${sessions} sessions (${v.websocket ? `WebSocket ${v.websocket}` : v.tls ? 'STARTTLS' : 'plain TCP'}, ${workers} worker(s), ${concurrency * workers} in flight)`);
  const loginStart = performance.now();
  children.forEach((child, w) =>
    child.send({
      kind: 'init',
      concurrency,
      init: {
        host: v.host,
        ports,
        spread: v.spread as WorkerInit['spread'],
        domain: v.domain,
        tls: v.tls,
        websocket: v.websocket,
        userPrefix: v['user-prefix'],
        password: v.password,
        resource: v.resource,
        sourceIps: Math.min(254, num('source-ips', 1)),
        loginTimeoutMs: num('login-timeout', 1) * 1000,
        maxFailures: Math.ceil(maxFailures / workers),
        bodyBytes: num('body-bytes'),
        indexes: indexes[w]!,
      },
    } satisfies ToWorker),
  );
  const loginTimeout = (num('login-timeout', 1) + 30) * 1000 + sessions * 20;
  const loggedIn = await collect('logged-in', loginTimeout);
  const loginSeconds = (performance.now() - loginStart) / 1000;
  const procLoggedIn = readProcs(serverPids);
  const cpusLoggedIn = readCpus();
  const loginHist = new Histogram();
  const loginErrors: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  for (const m of loggedIn) {
    ok += m.report.ok;
    failed += m.report.failed;
    loginHist.add(m.report.loginHist);
    for (const [k, c] of Object.entries(m.report.errors)) loginErrors[k] = (loginErrors[k] ?? 0) + c;
  }
  const cpuPct = (a?: ProcSample, b?: ProcSample, seconds = 1) => (a && b ? Math.round(((b.cpuTicks - a.cpuTicks) / CLK_TCK / seconds) * 1000) / 10 : NaN);
  const results: Results = {
    label,
    date: new Date().toISOString(),
    machine: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
    target: `${v.host}:${v.port} (${v.domain})`,
    tls: v.tls,
    sessions,
    workers,
    logins: {
      ok,
      failed,
      seconds: round(loginSeconds, 2),
      perSecond: Math.round(ok / loginSeconds),
      p50Ms: round(loginHist.percentile(50) / 1000, 2),
      p99Ms: round(loginHist.percentile(99) / 1000, 2),
      errors: loginErrors,
      serverCpuPct: cpuPct(procBefore, procLoggedIn, loginSeconds),
      clientCpuPct: round((loggedIn.reduce((n, m) => n + m.cpuMs, 0) / 1000 / loginSeconds) * 100, 1),
      cpuBusyPct: cpuBusy(cpusBefore, cpusLoggedIn),
    },
    droppedWhileIdle: 0,
  };
  log(
    `logins: ${ok} ok, ${failed} failed in ${loginSeconds.toFixed(1)} s (${results.logins.perSecond}/s, p50 ${results.logins.p50Ms} ms, p99 ${results.logins.p99Ms} ms); ` +
      `server CPU ${results.logins.serverCpuPct}%, client CPU ${results.logins.clientCpuPct}%, CPUs busy ${results.logins.cpuBusyPct.join('% ')}%`,
  );
  for (const [k, c] of Object.entries(loginErrors)) log(`  login failure x${c}: ${k}`);

  // Idle: let the server settle, then read its RSS.
  await sleep(settle);
  const procIdle = readProcs(serverPids);
  if (procBefore && procIdle && ok > 0) {
    results.rss = {
      beforeKiB: procBefore.rssKiB,
      idleKiB: procIdle.rssKiB,
      perIdleSessionKiB: round((procIdle.rssKiB - procBefore.rssKiB) / ok, 2),
    };
    log(`server RSS: ${procBefore.rssKiB} KiB before, ${procIdle.rssKiB} KiB with ${ok} idle sessions: ${results.rss.perIdleSessionKiB} KiB/session`);
  }
  const hold = num('idle-hold') * 1000;
  if (hold > 0) {
    log(`holding the idle sessions ${hold / 1000} s`);
    await sleep(hold);
  }

  if (pairs > 0 && ok > 0) {
    const durationMs = num('duration', 1) * 1000;
    const warmupMs = Math.min(num('warmup') * 1000, durationMs / 2);
    const rate = num('rate');
    const window = Math.max(1, num('window', 1));
    const perWorker: [number, number][][] = children.map(() => []);
    for (let i = 0; i < pairs; i++) perWorker[i % workers]!.push([2 * i, 2 * i + 1]);
    const mode = rate > 0 ? `open loop, ${rate} msgs/s target` : `closed loop, window ${window} per sender`;
    log(`pumping: ${pairs} pairs, ${mode}, ${durationMs / 1000} s (first ${warmupMs / 1000} s warm-up)`);
    children.forEach((child, w) =>
      child.send({
        kind: 'pump',
        order: { pairs: perWorker[w]!, durationMs, warmupMs, perSenderRate: rate > 0 ? rate / (2 * pairs) : 0, window },
      } satisfies ToWorker),
    );
    // CPU of the server over the measured window only.
    await sleep(warmupMs);
    const redisWin0 = redis ? await redisCommands(redis) : NaN;
    const procWin0 = readProcs(serverPids);
    const cpusWin0 = readCpus();
    await sleep(durationMs - warmupMs);
    const procWin1 = readProcs(serverPids);
    const redisWin1 = redis ? await redisCommands(redis) : NaN;
    const cpusWin1 = readCpus();
    const pumped = await collect('pumped', 30_000);
    const lat = new Histogram();
    let sent = 0;
    let delivered = 0;
    let deliveredInWindow = 0;
    let bounced = 0;
    let misrouted = 0;
    let lost = 0;
    let clientCpuMs = 0;
    let dropped = 0;
    const streamErrors: Record<string, number> = {};
    let windowMs = durationMs - warmupMs;
    for (const m of pumped) {
      const r = m.report;
      sent += r.sent;
      delivered += r.delivered;
      deliveredInWindow += r.deliveredInWindow;
      bounced += r.bounced;
      misrouted += r.misrouted;
      lost += r.lost;
      clientCpuMs += r.clientCpuMs;
      dropped += r.droppedDuringLoad;
      windowMs = r.windowMs;
      lat.add(r.latency);
      for (const [k, c] of Object.entries(r.streamErrors)) streamErrors[k] = (streamErrors[k] ?? 0) + c;
    }
    const procAfter = readProcs(serverPids);
    if (results.rss && procAfter) results.rss.afterLoadKiB = procAfter.rssKiB;
    results.load = {
      pairs,
      mode,
      seconds: round(windowMs / 1000, 2),
      sent,
      delivered,
      deliveredPerSecond: Math.round(deliveredInWindow / (windowMs / 1000)),
      bounced,
      misrouted,
      lost,
      p50Ms: round(lat.percentile(50) / 1000, 2),
      p90Ms: round(lat.percentile(90) / 1000, 2),
      p99Ms: round(lat.percentile(99) / 1000, 2),
      maxMs: round(lat.max / 1000, 2),
      serverCpuPct: cpuPct(procWin0, procWin1, (durationMs - warmupMs) / 1000),
      clientCpuPct: round((clientCpuMs / durationMs) * 100, 1),
      cpuBusyPct: cpuBusy(cpusWin0, cpusWin1),
      streamErrors,
      droppedSessions: dropped,
    };
    if (redis) results.load.redisCommandsPerMessage = round((redisWin1 - redisWin0) / Math.max(1, deliveredInWindow), 2);
    log(
      `load: ${results.load.deliveredPerSecond} delivered msgs/s, latency p50 ${results.load.p50Ms} ms p99 ${results.load.p99Ms} ms max ${results.load.maxMs} ms; ` +
        `sent ${sent}, delivered ${delivered}, bounced ${bounced}, misrouted ${misrouted}, undelivered 5 s after the end ${lost}; server CPU ${results.load.serverCpuPct}%, client CPU ${results.load.clientCpuPct}%, CPUs busy ${results.load.cpuBusyPct.join('% ')}%` +
        (redis ? `; Redis commands per message ${results.load.redisCommandsPerMessage}` : ''),
    );
  }

  children.forEach((child) => child.send({ kind: 'close' } satisfies ToWorker));
  await collect('closed', 15_000).catch((err: Error) => log(err.message));
  results.droppedWhileIdle = loggedIn.reduce((n, m) => n + m.report.droppedAfterLogin, 0);

  redis?.disconnect();
  console.log(JSON.stringify(results, null, 2));
  if (v.json) writeFileSync(v.json, JSON.stringify(results, null, 2) + '\n');
  for (const child of children) if (child.exitCode === null) child.kill();
  return failed > 0 && ok === 0 ? 1 : 0;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

// --- entry --------------------------------------------------------------------------------------

if (process.argv[2] === '--worker') {
  await runWorker();
} else {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: Object.fromEntries(Object.entries(OPTIONS).map(([k, o]) => [k, { type: o.type, default: o.default, ...('short' in o ? { short: o.short } : {}) }])) as never,
  });
  const v = values as unknown as Values;
  if (v.help) {
    console.log(usage());
  } else {
    const hardLimit = setTimeout(() => {
      console.error('[load] hard time limit reached: exiting');
      process.exit(2);
    }, 30 * 60_000);
    hardLimit.unref();
    runCoordinator(v).then(
      (code) => {
        process.exitCode = code;
        setTimeout(() => process.exit(), 200).unref();
      },
      (err: Error) => {
        console.error(`[load] ${err.message}`);
        process.exit(1);
      },
    );
  }
}

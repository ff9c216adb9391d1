// Prints the comparison table of a run-compare.sh run from the JSON files load.ts wrote.
//
//   npx tsx test/bench/report.ts DIR [SERVER...]
//
// DIR holds <server>-<run>.json, run one of: plain (N sessions, closed-loop pumping),
// rate (open loop at the target rate), tls (N sessions over STARTTLS, closed-loop pumping),
// ws (the plain run over WebSocket), muc (muc.bench.ts's JSON: one room's fan-out).
// The columns follow the SERVER arguments (those with results); without them, Starling first.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

interface Results {
  label: string;
  date: string;
  machine: string;
  tls: boolean;
  sessions: number;
  logins: { ok: number; failed: number; perSecond: number; p50Ms: number; p99Ms: number; serverCpuPct: number; errors: Record<string, number> };
  rss?: { beforeKiB: number; idleKiB: number; afterLoadKiB?: number; perIdleSessionKiB: number };
  load?: {
    pairs: number;
    mode: string;
    deliveredPerSecond: number;
    sent: number;
    delivered: number;
    bounced: number;
    misrouted?: number;
    lost: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    serverCpuPct: number;
    clientCpuPct: number;
    cpuBusyPct?: number[];
    droppedSessions: number;
    streamErrors: Record<string, number>;
  };
  droppedWhileIdle: number;
}

interface MucResults {
  occupants: number;
  sustained: { seconds: number; messages: number; messagesPerSecond: number; deliveriesPerSecond: number; missing: number; serverCpu: number };
}

const [dir, ...order] = process.argv.slice(2);
if (!dir) throw new Error('usage: report.ts DIR [SERVER...]');
const files = readdirSync(dir).filter((f) => /^[a-z]+-[a-z]+\.json$/.test(f));
const found = [...new Set(files.map((f) => f.split('-')[0]!))];
const servers = order.length
  ? order.filter((s) => found.includes(s))
  : found.sort((a, b) => (a.startsWith('starling') !== b.startsWith('starling') ? (a.startsWith('starling') ? -1 : 1) : a.localeCompare(b)));
const read = <T>(server: string, run: string): T | undefined => {
  const file = path.join(dir, `${server}-${run}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
};
const get = (server: string, run: string) => read<Results>(server, run);

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? '–' : n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });

type Row = [string, (s: string) => string, string];
const any = (run: string) => servers.map((s) => get(s, run)).find(Boolean);
const plain = any('plain');
const rate = any('rate');
const tlsRun = any('tls');
const wsRun = any('ws');
const n = plain?.sessions ?? tlsRun?.sessions ?? 0;
const pairs = plain?.load?.pairs ?? rate?.load?.pairs ?? 0;

const loadCells = (r: Results | undefined) => (r?.load ? `${fmt(r.load.deliveredPerSecond)} msgs/s, p50 ${fmt(r.load.p50Ms, 1)} ms, p99 ${fmt(r.load.p99Ms, 1)} ms` : '–');
const problems = (r: Results | undefined) => {
  if (!r) return 'not run';
  const out: string[] = [];
  if (r.logins.failed) out.push(`${r.logins.failed} logins failed`);
  if (r.droppedWhileIdle) out.push(`${r.droppedWhileIdle} sessions dropped`);
  if (r.load?.lost) out.push(`${r.load.lost} msgs undelivered`);
  if (r.load?.bounced) out.push(`${r.load.bounced} bounced`);
  if (r.load?.misrouted) out.push(`${r.load.misrouted} misrouted`);
  return out.join(', ') || 'none';
};

/** Server CPU time per 1,000 delivered messages, in ms (CPU% x 10 ms per second / msgs per second x 1,000). */
const cpuPer1000 = (r: Results | undefined) => (r?.load && r.load.deliveredPerSecond > 0 ? (r.load.serverCpuPct * 10 * 1000) / r.load.deliveredPerSecond : undefined);
const openLoop = (r: Results | undefined) =>
  r?.load ? `p99 ${fmt(r.load.p99Ms, 1)} ms, ${fmt(r.load.lost)} of ${fmt(r.load.sent)} undelivered (${fmt(r.load.deliveredPerSecond)} msgs/s)` : '–';
const mucAny = servers.map((s) => read<MucResults>(s, 'muc')).find(Boolean);
const mucCell = (s: string) => {
  const m = read<MucResults>(s, 'muc')?.sustained;
  if (!m && existsSync(path.join(dir, `${s}-muc.out`))) return `failed (see ${s}-muc.out)`;
  return m
    ? `${fmt(m.messagesPerSecond)} msgs/s = ${fmt(m.deliveriesPerSecond)} deliveries/s, CPU ${fmt(m.serverCpu * 100)}%${m.missing ? `, ${fmt(m.missing)} missing` : ''}`
    : '–';
};

// The comparison rows first (closed loop, CPU per message, open loop, idle memory, MUC), then the rest.
const rows: Row[] = [
  [`${pairs} pairs, closed loop, ${fmt(n)} sessions online (plain): msgs/s`, (s) => fmt(get(s, 'plain')?.load?.deliveredPerSecond), ''],
  ['server CPU per 1,000 msgs (closed loop / open loop)', (s) => `${fmt(cpuPer1000(get(s, 'plain')), 1)} / ${fmt(cpuPer1000(get(s, 'rate')), 1)} ms`, ''],
  [`${pairs} pairs, ${rate?.load?.mode ?? 'open loop'} (plain)`, (s) => openLoop(get(s, 'rate')), 'p99 < 50 ms, none undelivered'],
  [
    `RSS per idle session, plain / STARTTLS (${fmt(n)} / ${fmt(tlsRun?.sessions)} sessions)`,
    (s) => `${fmt(get(s, 'plain')?.rss?.perIdleSessionKiB, 1)} / ${fmt(get(s, 'tls')?.rss?.perIdleSessionKiB, 1)} KiB`,
    '<= 30 KiB (plain)',
  ],
  [`MUC fan-out, ${fmt(mucAny?.occupants)} occupants in one room, 4 senders`, mucCell, ''],
  [`logins/s, plain TCP (${fmt(n)} sessions)`, (s) => fmt(get(s, 'plain')?.logins.perSecond), ''],
  [
    'login time p50 / p99, plain TCP',
    (s) => {
      const l = get(s, 'plain')?.logins;
      return l ? `${fmt(l.p50Ms, 0)} / ${fmt(l.p99Ms, 0)} ms` : '–';
    },
    '',
  ],
  [`logins/s, STARTTLS (${fmt(tlsRun?.sessions)} sessions)`, (s) => fmt(get(s, 'tls')?.logins.perSecond), ''],
  [`RSS per idle session, WebSocket, ${fmt(wsRun?.sessions)} sessions`, (s) => `${fmt(get(s, 'ws')?.rss?.perIdleSessionKiB, 1)} KiB`, ''],
  [`logins/s, WebSocket (${fmt(wsRun?.sessions)} sessions)`, (s) => fmt(get(s, 'ws')?.logins.perSecond), ''],
  [
    'server RSS: start / idle sessions / after load (plain)',
    (s) => {
      const r = get(s, 'plain')?.rss;
      return r ? `${fmt(r.beforeKiB / 1024, 0)} / ${fmt(r.idleKiB / 1024, 0)} / ${fmt((r.afterLoadKiB ?? NaN) / 1024, 0)} MiB` : '–';
    },
    '',
  ],
  [`${pairs} pairs, ${rate?.load?.mode ?? 'open loop'} (plain)`, (s) => loadCells(get(s, 'rate')), ''],
  [`${pairs} pairs, ${plain?.load?.mode ?? 'closed loop'}, ${fmt(n)} sessions online (plain)`, (s) => loadCells(get(s, 'plain')), ''],
  [`${pairs} pairs, ${tlsRun?.load?.mode ?? 'closed loop'} (STARTTLS)`, (s) => loadCells(get(s, 'tls')), ''],
  [`${pairs} pairs, ${wsRun?.load?.mode ?? 'closed loop'} (WebSocket)`, (s) => loadCells(get(s, 'ws')), ''],
  ['server CPU while pumping (plain closed / open / TLS)', (s) => ['plain', 'rate', 'tls'].map((run) => `${fmt(get(s, run)?.load?.serverCpuPct)}%`).join(' / '), ''],
  [
    'CPUs busy while pumping, all processes (plain closed / open / TLS)',
    (s) => ['plain', 'rate', 'tls'].map((run) => (get(s, run)?.load?.cpuBusyPct ?? []).map((x) => `${fmt(x)}%`).join('+') || '–').join(' / '),
    '',
  ],
  ['failures', (s) => ['plain', 'rate', 'tls', 'ws'].map((run) => `${run}: ${problems(get(s, run))}`).join('; '), ''],
];

const first = plain ?? rate ?? tlsRun;
if (first) console.log(`${first.date.slice(0, 16).replace('T', ' ')} UTC, ${first.machine}`);
console.log();
console.log(`| | ${servers.join(' | ')} | bar |`);
console.log(`|---|${servers.map(() => '---').join('|')}|---|`);
for (const [name, cell, bar] of rows) console.log(`| ${name} | ${servers.map(cell).join(' | ')} | ${bar} |`);

// Fault script: does the server lose acknowledged messages when things break? (DESIGN.md, the
// durability rule: a stanza counts as handled only once delivered, committed to storage, or
// answered with an error.)
//
//   node --import tsx test/bench/fault.ts --db sqlite|postgres --scenario pg-outage|kill9 [--messages 2000]
//
// A real `starling start` process (its own data directory and, on PostgreSQL, its own schema).
// alice, with stream management, sends --messages chat messages, alternately to bob (offline
// all along) and to carol (online with resumable stream management, until her connection drops
// without a word a quarter of the way in). Meanwhile:
//   pg-outage  the connection to PostgreSQL is cut (an in-process TCP proxy between the server
//              and the database) a third of the way in, for --outage seconds (default 3);
//   kill9      the server is killed with SIGKILL halfway (when alice's <a h/> passes half),
//              and started again on the same storage.
// Then carol resumes (her stream management id and the count she received: on a restarted
// server resumption fails and she logs in afresh) and bob logs in; both send presence and
// collect what comes until nothing has come for --quiet seconds.
//
// Printed, per message alice sent: acknowledged (counted in an <a h/> she received),
// delivered (received live by bob or carol, before the end), stored (received from offline
// storage, with a delay stamp, or retransmitted on resumption), errored (alice got an error
// for it), lost = acknowledged but neither delivered nor stored nor errored. Duplicates (one id
// received twice) are counted too. Lost must be 0.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { rawAuthenticated, rawLogin, type RawStream } from '../helpers/clients.js';
import { LOOPBACK_HTTP_TOML, startStarling, type RunningStarling } from '../helpers/cli.js';
import { cuttableProxy, throughProxy, type CuttableProxy } from '../helpers/tcp-proxy.js';
import { dropSchema, uniqueSchema } from '../helpers/databases.js';
import { POSTGRES_URL } from '../helpers/services.js';

const SM = 'urn:xmpp:sm:3';
const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'sqlite' },
    scenario: { type: 'string', default: 'kill9' },
    messages: { type: 'string', default: '2000' },
    outage: { type: 'string', default: '3' },
    quiet: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('node --import tsx test/bench/fault.ts --db sqlite|postgres --scenario pg-outage|kill9 [--messages 2000] [--outage 3] [--quiet 3] [--keep]');
  process.exit(0);
}
const db = args.db!;
const scenario = args.scenario!;
const N = Number(args.messages);
if (db !== 'sqlite' && db !== 'postgres') throw new Error('--db is sqlite or postgres');
if (scenario !== 'pg-outage' && scenario !== 'kill9') throw new Error('--scenario is pg-outage or kill9');
if (scenario === 'pg-outage' && db !== 'postgres') throw new Error('the pg-outage scenario needs --db postgres');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-fault-'));
const schema = uniqueSchema('starling_fault');
let proxy: CuttableProxy | undefined;
if (scenario === 'pg-outage') {
  const u = new URL(POSTGRES_URL);
  proxy = await cuttableProxy({ host: u.hostname, port: Number(u.port || 5432) });
}
const storage =
  db === 'sqlite' ? '' : `[storage]\ndriver = "postgres"\npostgres_url = "${proxy ? throughProxy(POSTGRES_URL, proxy) : POSTGRES_URL}"\npostgres_schema = "${schema}"\n`;
const config = path.join(dir, 'starling.toml');
writeFileSync(
  config,
  `data_dir = "${dir}/data"
modules_enabled = ["sasl", "ping", "disco", "roster", "presence", "offline", "sm", "mam", "blocking"]
[log]
format = "json"
level = "info"
${storage}[c2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }]
[modules.offline]
max_messages = ${N + 100}
[modules.sm]
resume_timeout = 60
max_queue = ${N + 100}
${LOOPBACK_HTTP_TOML}`,
);

let server: RunningStarling | undefined;
const errors: string[] = [];
try {
  server = await startStarling(config, { timeoutMs: 60_000 });
  for (const user of ['alice', 'bob', 'carol']) {
    // Not spawnSync (runStarling): the proxy to PostgreSQL lives in this process's event loop.
    await adduser(`${user}@localhost`);
  }

  const ids = Array.from({ length: N }, (_, i) => `f${i}`);
  const to = (i: number) => (i % 2 === 0 ? 'bob@localhost' : 'carol@localhost');
  /** Message id -> how many times a recipient received it live, and from storage or retransmission. */
  const live = new Map<string, number>();
  const later = new Map<string, number>();
  const count = (map: Map<string, number>, id: string | undefined) => id?.startsWith('f') && map.set(id, (map.get(id) ?? 0) + 1);

  // carol: online, resumable stream management, acking nothing; dropped a quarter of the way in.
  const { s: carol } = await rawLogin(server.port, 'carol', 'phone');
  carol.write(`<enable xmlns='${SM}' resume='true'/>`);
  const smId = (await carol.element('enabled')).attrs.id!;
  carol.write('<presence/>');
  let carolDropped = false;

  const { s: alice } = await rawLogin(server.port, 'alice', 'desk');
  alice.write(`<enable xmlns='${SM}'/>`);
  await alice.element('enabled');
  let acked = 0;
  const lastAck = () => {
    for (const e of alice.elements) if (e.name === 'a') acked = Math.max(acked, Number(e.attrs.h));
    return acked;
  };

  let killed = false;
  let outage: Promise<void> | undefined;
  const started = Date.now();
  for (let i = 0; i < N && !alice.closed; i++) {
    alice.write(`<message to='${to(i)}' type='chat' id='${ids[i]}'><body>message ${i}</body></message>`);
    if (i % 25 === 24) {
      alice.write(`<r xmlns='${SM}'/>`);
      // Keep a bounded number of messages in flight, so the faults hit mid-stream.
      await alice.until(() => lastAck() >= i + 1 - 200 || alice.closed, 60_000).catch(() => undefined);
    }
    if (!carolDropped && lastAck() >= N / 4) {
      carolDropped = true;
      for (const e of carol.elements) if (e.name === 'message') count(live, e.attrs.id);
      carol.close();
    }
    if (proxy && !outage && i >= N / 3) {
      proxy.cut();
      console.log(`cut the connection to PostgreSQL at message ${i}`);
      outage = sleep(Number(args.outage) * 1000).then(() => (proxy!.restore(), console.log('restored the connection to PostgreSQL')));
    }
    if (scenario === 'kill9' && !killed && lastAck() >= N / 2) {
      killed = true;
      server.child.kill('SIGKILL');
      console.log(`kill -9 after message ${i} was sent (h = ${acked})`);
      await new Promise((r) => server!.child.once('exit', r));
      break;
    }
  }
  if (!killed) {
    alice.write(`<r xmlns='${SM}'/>`);
    await alice.until(() => lastAck() >= N, 120_000).catch(() => undefined);
    await outage;
  }
  const sendSeconds = (Date.now() - started) / 1000;
  lastAck();
  // The errors alice got (bounces come after the ack of their stanza: wait for the stream to be quiet).
  await quiet(alice);
  for (const e of alice.elements) if (e.name === 'message' && e.attrs.type === 'error' && e.attrs.id) errors.push(e.attrs.id);
  alice.close();

  if (killed) server = await startStarling(config, { timeoutMs: 60_000 });

  // carol comes back: resumes if she can, else logs in afresh.
  const carolReceived = ids.filter((id) => live.has(id)).length;
  const c2 = await rawAuthenticated(server.port, 'carol');
  c2.write(`<resume xmlns='${SM}' previd='${smId}' h='${carolReceived}'/>`);
  const answer = await c2.until(() => c2.elements.find((e) => e.name === 'resumed' || e.name === 'failed'));
  if (answer.name === 'failed') {
    c2.write("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>");
    await c2.element('iq');
    c2.write('<presence/>');
  }
  const { s: bob } = await rawLogin(server.port, 'bob', 'laptop');
  bob.write('<presence/>');
  await Promise.all([quiet(c2), quiet(bob)]);
  for (const s of [c2, bob]) for (const e of s.elements) if (e.name === 'message' && e.attrs.type !== 'error') count(later, e.attrs.id);
  c2.close();
  bob.close();

  const erroredSet = new Set(errors);
  let delivered = 0,
    stored = 0,
    errored = 0,
    lost = 0,
    duplicates = 0,
    unacknowledgedArrived = 0;
  const lostIds: string[] = [];
  ids.forEach((id, i) => {
    const got = (live.get(id) ?? 0) + (later.get(id) ?? 0);
    if (got > 1) duplicates += got - 1;
    if (i >= acked) {
      if (got > 0) unacknowledgedArrived++;
      return;
    }
    if (live.has(id)) delivered++;
    else if (later.has(id)) stored++;
    else if (erroredSet.has(id)) errored++;
    else (lost++, lostIds.push(id));
  });
  console.log(
    JSON.stringify({
      db,
      scenario,
      messages: N,
      sent_in_s: Number(sendSeconds.toFixed(1)),
      carol: answer.name,
      acknowledged: acked,
      delivered,
      stored,
      errored,
      lost,
      duplicates,
      unacknowledged_but_arrived: unacknowledgedArrived,
      errors_total: errors.length,
    }),
  );
  if (lostIds.length > 0) {
    const toCarol = lostIds.filter((id) => Number(id.slice(1)) % 2 === 1).length;
    console.log(`lost: ${lostIds.length} (${toCarol} to carol, ${lostIds.length - toCarol} to bob), first: ${lostIds.slice(0, 10).join(' ')}`);
  }
  process.exitCode = lost === 0 ? 0 : 1;
} finally {
  server?.child.kill('SIGTERM');
  if (server) await new Promise((r) => (server!.child.exitCode !== null ? r(undefined) : server!.child.once('exit', r)));
  await proxy?.close();
  if (db === 'postgres') await dropSchema(schema).catch((err: unknown) => console.error(`dropping schema ${schema}: ${String(err)}`));
  if (!args.keep) rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}

/** Resolves once nothing has arrived on `s` for --quiet seconds. */
async function quiet(s: RawStream): Promise<void> {
  const ms = Number(args.quiet) * 1000;
  let seen = -1;
  while (seen !== s.elements.length && !s.closed) {
    seen = s.elements.length;
    await sleep(ms);
  }
}

/** `starling adduser` as an operator runs it, on the running server's storage. */
function adduser(jid: string): Promise<void> {
  const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), cli, 'adduser', jid, '--config', config], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  child.stdin.end('correct horse battery\n');
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`adduser ${jid}: ${err}`)))));
}

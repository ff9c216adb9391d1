// PEP fan-out bench: one account publishes to a PEP node; N contacts (1,000 by default), each
// with a presence subscription both ways and entity capabilities announcing `<node>+notify`,
// must each get the notification. Starling runs in its own process (pinned to core 0 when
// taskset is there); this process holds every client session (run it pinned to core 1:
// `taskset -c 1 npx tsx test/bench/pep.bench.ts`).
//
//   npx tsx test/bench/pep.bench.ts [--contacts 1000] [--publishes 50] [--json FILE]
//
// Set-up: the server creates the accounts and writes the rosters straight into storage; the
// contacts log in over raw sockets (PLAIN, bind), answer the server's disco#info about their
// caps (all announce the same ver, so the server asks one and caches it), and send presence.
// Measured: for each publish (one at a time) the time until the last contact has the event,
// and the server's CPU time over all of them per notification delivered.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { capsVer } from '../../modules/caps/verification.js';
import { startBenchServer } from './bench-server.js';

const FILE = fileURLToPath(import.meta.url);
const DOMAIN = 'localhost';
const PASSWORD = 'bench-password';
const NODE = 'urn:example:bench:mood';
const OWNER = 'owner';
const INFO = { identities: [{ category: 'client', type: 'pc', name: 'bench' }], features: ['http://jabber.org/protocol/disco#info', `${NODE}+notify`], forms: [] };
const VER = capsVer(INFO, 'sha-1');

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    contacts: { type: 'string', default: '1000' },
    publishes: { type: 'string', default: '50' },
    json: { type: 'string', default: '' },
    role: { type: 'string', default: 'main' },
  },
});
const contacts = Number(opts.contacts);

type FromServer = { kind: 'ready'; port: number } | { kind: 'cpu'; ms: number; rssMb: number };

/** The server process: accounts, rosters (both ways with the owner), then listen. */
async function serverMain(): Promise<void> {
  const { makeJid } = await import('../../src/jid.js');
  const { RosterStore } = await import('../../modules/roster/store.js');
  const bench = await startBenchServer('pep-bench', {
    modules: ['sasl', 'ping', 'disco', 'caps', 'roster', 'presence', 'pubsub'],
    config: { modules: { pubsub: { service: '' } } },
  });
  const server = bench.server;
  const roster = new RosterStore(server.core.storage);
  const item = (jid: string) => ({ jid, subscription: 'both' as const, ask: false, approved: false, groups: [] });
  await server.core.accounts.create(makeJid(OWNER, DOMAIN), PASSWORD);
  for (let i = 0; i < contacts; i++) {
    await server.core.accounts.create(makeJid(`c${i}`, DOMAIN), PASSWORD);
    await roster.put(DOMAIN, OWNER, `c${i}@${DOMAIN}`, item(`c${i}@${DOMAIN}`));
    await roster.put(DOMAIN, `c${i}`, `${OWNER}@${DOMAIN}`, item(`${OWNER}@${DOMAIN}`));
  }
  process.on('message', (m: { kind: string }) => {
    if (m.kind === 'cpu') {
      const u = process.cpuUsage();
      process.send!({ kind: 'cpu', ms: (u.user + u.system) / 1000, rssMb: process.memoryUsage().rss / 2 ** 20 } satisfies FromServer);
    }
    if (m.kind === 'stop') void bench.stop().then(() => process.exit(0));
  });
  process.send!({ kind: 'ready', port: bench.port } satisfies FromServer);
}

/** A raw client session: logs in, answers disco#info with INFO, reports each bench event it gets. */
class RawSession {
  private readonly socket: net.Socket;
  private buffer = '';
  onEvent: ((id: string) => void) | undefined;

  constructor(
    port: number,
    private readonly user: string,
  ) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.setEncoding('utf8');
    this.socket.setNoDelay(true);
    this.socket.on('error', () => {});
  }

  /** Resolves when `text` has arrived (buffer kept from the last wait on). */
  private until(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.user}: no ${text} within 60 s`)), 60_000);
      const check = () => {
        const at = this.buffer.indexOf(text);
        if (at < 0) return;
        this.buffer = this.buffer.slice(at + text.length);
        this.socket.off('data', onData);
        clearTimeout(timer);
        resolve();
      };
      const onData = (d: string) => ((this.buffer += d), check());
      this.socket.on('data', onData);
      check();
    });
  }

  async login(presence: boolean): Promise<void> {
    const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${DOMAIN}' version='1.0'>`;
    this.socket.write(header + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${this.user}\0${PASSWORD}`).toString('base64')}</auth>`);
    await this.until('<success');
    this.socket.write(header + `<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>`);
    await this.until('</jid>');
    this.socket.on('data', (d: string) => this.scan(d));
    if (presence) this.socket.write(`<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://starling.bench/' ver='${VER}'/></presence>`);
  }

  private tail = '';

  private scan(d: string): void {
    const text = this.tail + d;
    for (const m of text.matchAll(/<iq [^>]*type="get"[^>]*>/g)) {
      const id = /id="([^"]+)"/.exec(m[0])?.[1];
      const node = new RegExp(`node="([^"]*${VER.replace(/[+/=]/g, '\\$&')})"`).exec(text.slice(m.index))?.[1];
      if (!id || !node) continue;
      const features = INFO.features.map((f) => `<feature var='${f}'/>`).join('');
      this.socket.write(
        `<iq type='result' id='${id}' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info' node='${node}'><identity category='client' type='pc' name='bench'/>${features}</query></iq>`,
      );
    }
    for (const m of text.matchAll(/<item id="(P\d+)"/g)) this.onEvent?.(m[1]!);
    this.tail = text.slice(-200);
  }

  write(data: string): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }
}

function next<T extends FromServer>(p: ChildProcess, kind: T['kind']): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: FromServer) => {
      if (m.kind !== kind) return;
      p.off('message', on);
      resolve(m as T);
    };
    p.on('message', on);
  });
}

async function main(): Promise<void> {
  const server = fork(FILE, [...process.argv.slice(2), '--role', 'server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const ready = next<Extract<FromServer, { kind: 'ready' }>>(server, 'ready');
    try {
      execFileSync('taskset', ['-pc', '0', String(server.pid)], { stdio: 'ignore' });
    } catch {
      console.log('taskset not available: the server is not pinned');
    }
    const { port } = await ready;
    const sessions = Array.from({ length: contacts }, (_, i) => new RawSession(port, `c${i}`));
    for (let i = 0; i < sessions.length; i += 100) await Promise.all(sessions.slice(i, i + 100).map((s) => s.login(true)));
    const owner = new RawSession(port, OWNER);
    await owner.login(false);
    console.log(`${contacts} contacts online with +notify for ${NODE}`);

    /** Publishes item P<n> and resolves with the time until every contact has its event. */
    const publish = async (n: number): Promise<number> => {
      const id = `P${n}`;
      const start = performance.now();
      const all = new Promise<void>((resolve) => {
        let left = contacts;
        for (const s of sessions) {
          s.onEvent = (got) => {
            if (got !== id) return;
            s.onEvent = undefined;
            if (--left === 0) resolve();
          };
        }
      });
      owner.write(
        `<iq type='set' id='${id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='${NODE}'><item id='${id}'><mood xmlns='urn:example:bench'>${n}</mood></item></publish></pubsub></iq>`,
      );
      await all;
      return performance.now() - start;
    };
    // A first publish warms up (the server learns the caps, loads the rosters); not counted.
    await publish(0);
    const publishes = Number(opts.publishes);
    const fanout: number[] = [];
    server.send({ kind: 'cpu' });
    const before = await next<Extract<FromServer, { kind: 'cpu' }>>(server, 'cpu');
    for (let n = 1; n <= publishes; n++) fanout.push(await publish(n));
    server.send({ kind: 'cpu' });
    const after = await next<Extract<FromServer, { kind: 'cpu' }>>(server, 'cpu');
    fanout.sort((a, b) => a - b);
    const notifications = publishes * contacts;
    const result = {
      contacts,
      publishes,
      fanoutMs: { median: fanout[Math.floor(fanout.length / 2)], p90: fanout[Math.floor(fanout.length * 0.9)], max: fanout.at(-1) },
      serverCpuUsPerNotification: ((after.ms - before.ms) * 1000) / notifications,
      rssMb: after.rssMb,
    };
    console.log(
      `one publish to ${contacts} contacts (${publishes} publishes): fan-out median ${result.fanoutMs.median!.toFixed(1)} ms, p90 ${result.fanoutMs.p90!.toFixed(1)} ms, ` +
        `max ${result.fanoutMs.max!.toFixed(1)} ms; server CPU ${result.serverCpuUsPerNotification.toFixed(1)} µs per notification; RSS ${after.rssMb.toFixed(0)} MB`,
    );
    if (opts.json) writeFileSync(opts.json, JSON.stringify(result, null, 2));
    for (const s of [...sessions, owner]) s.close();
    server.send({ kind: 'stop' });
    await new Promise<void>((resolve) => server.once('exit', () => resolve()));
  } finally {
    if (server.exitCode === null) server.kill();
  }
}

if (opts.role === 'server') await serverMain();
else await main();

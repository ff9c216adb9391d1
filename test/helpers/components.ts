// Shared by the component tests (test/integration, conformance): a raw XEP-0114 component stream (for what a library won't
// send: a wrong secret, a spoofed 'from'), and the example echo bot run as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Element } from '@xmpp/xml';
import { XmlSocket } from './clients.js';
import { DOMAIN, startTestServer, type TestServer } from './harness.js';

export const BOT_DOMAIN = `bot.${DOMAIN}`;
export const BOT = `echo@${BOT_DOMAIN}`;
export const SECRET = 'correct-component-secret';
export const BOT_SCRIPT = fileURLToPath(new URL('../../examples/echo-bot/bot.js', import.meta.url));

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A server with the component bot.localhost configured (listener on a free loopback port), and muc. */
export function startComponentServer(t: Teardown, component: Record<string, unknown> = {}, modules = ['sasl', 'ping', 'disco', 'roster', 'presence', 'muc']): Promise<TestServer> {
  return startTestServer(t, {
    modules_enabled: modules,
    component_listener: { interfaces: ['127.0.0.1'], port: 0 },
    components: { [BOT_DOMAIN]: { secret: SECRET, name: 'Echo bot', ...component } },
  });
}

export function componentPort(ts: TestServer): number {
  return ts.server.componentAddresses[0]!.port;
}

/** Resolves when the server has (dis)connected the component of `domain`; call before what causes it. */
export function componentEvent(ts: TestServer, event: 'connected' | 'disconnected', domain = BOT_DOMAIN): Promise<void> {
  return new Promise((resolve) => {
    const on = (d: string) => {
      if (d !== domain) return;
      ts.server.components.off(event, on);
      resolve();
    };
    ts.server.components.on(event, on);
  });
}

export class RawComponent extends XmlSocket {
  private constructor(socket: net.Socket) {
    super(socket, { timeoutMs: 5000, what: 'the component stream', failOnClose: false });
  }

  static async open(port: number): Promise<RawComponent> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawComponent(socket);
  }

  /** Opens the stream for `domain` and sends the handshake; resolves with <handshake/> or the <stream:error/>. */
  async handshake(secret = SECRET, domain = BOT_DOMAIN): Promise<Element> {
    this.write(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`);
    const header = await this.until(() => this.headers[0]);
    this.write(`<handshake>${createHash('sha1').update(`${header.attrs.id}${secret}`).digest('hex')}</handshake>`);
    return this.until(() => this.elements.find((e) => e.name === 'handshake' || e.name === 'stream:error'));
  }

  /** The connection closed (the server ended it). */
  gone(): Promise<boolean> {
    return this.until(() => this.closed);
  }
}

/** Connects a raw component and checks that the handshake passed. */
export async function rawConnected(ts: TestServer): Promise<RawComponent> {
  const c = await RawComponent.open(componentPort(ts));
  const answer = await c.handshake();
  if (answer.name !== 'handshake') throw new Error(`handshake refused: ${answer.toString()}`);
  return c;
}

export interface RunningBot {
  child: ChildProcess;
  output(): string;
  /** Resolves once the bot printed a line matching `pattern`, after `from` characters of its output. */
  printed(pattern: RegExp, from?: number, timeoutMs?: number): Promise<void>;
  /** Stops it with SIGTERM and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts examples/echo-bot/bot.js against the server, as its README says, and waits until it is online. */
export function startBot(t: Teardown, ts: TestServer, env: Record<string, string> = {}): Promise<RunningBot> {
  return startBotProcess(t, ts, process.execPath, [BOT_SCRIPT], env);
}

/** Starts a bot program (`command args`) with the COMPONENT_* variables of examples/echo-bot/README.md, and waits until it prints "online as". */
export async function startBotProcess(t: Teardown, ts: TestServer, command: string, args: string[], env: Record<string, string> = {}): Promise<RunningBot> {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, COMPONENT_SERVICE: `xmpp://127.0.0.1:${componentPort(ts)}`, COMPONENT_DOMAIN: BOT_DOMAIN, COMPONENT_SECRET: SECRET, ...env },
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: string) => {
    out += d;
    for (const l of listeners) l();
  };
  child.stdout!.setEncoding('utf8').on('data', onData);
  child.stderr!.setEncoding('utf8').on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => (onData(''), resolve())));
  const bot: RunningBot = {
    child,
    output: () => out,
    printed(pattern, from = 0, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(out.slice(from))) return (done(), resolve());
          if (child.exitCode !== null) (done(), reject(new Error(`the bot exited (${child.exitCode}) without printing ${pattern}: ${out}`)));
        };
        const timer = setTimeout(() => (done(), reject(new Error(`the bot did not print ${pattern} within ${timeoutMs} ms: ${out}`))), timeoutMs);
        const done = () => (clearTimeout(timer), listeners.delete(check));
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  t.teardown(() => bot.stop());
  await bot.printed(/^online as /m);
  return bot;
}

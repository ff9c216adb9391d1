// The server side of the control channel: answers `starling status`, `sessions`, `kick`,
// `announce`, `reload`, and
// carries out `deluser` and `passwd` in the running process, so that live sessions follow.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { AccountError } from '../auth/accounts.js';
import { ConfigError } from '../config/load.js';
import { JidError, parseJid, type Jid } from '../jid.js';
import type { Logger } from '../log.js';
import { CommandError } from '../module-api/commands.js';
import type { ServerCore } from '../module-api/core.js';
import type { SessionDescription } from '../module-api/events.js';
import type { Host } from '../module-api/host.js';
import type { Session } from '../sessions/session.js';
import { announce } from '../router/announce.js';
import { StreamError } from '../stream/errors.js';
import type { ReloadReport } from '../reload.js';
import { VERSION } from '../version.js';
import {
  MAX_SOCKET_PATH_BYTES,
  type AccountResult,
  type AnnounceResult,
  type ControlErrorKind,
  type ControlRequest,
  type ControlResponse,
  type KickResult,
  type SessionInfo,
  type StatusResult,
} from './protocol.js';

/** What the control channel reports on besides the core: the listeners' connections. */
export interface ControlTarget {
  core: ServerCore;
  /** Open client connections (authenticated or not). */
  c2sConnections(): number;
  s2sConnections(): { direction: 'in' | 'out' }[];
  /** External components: configured, and connected now. */
  components(): { configured: number; connected: number };
  /** `starling reload` (src/reload.ts). */
  reload(): Promise<ReloadReport>;
}

/** A request line longer than this ends the connection (a password is the longest field). */
const MAX_LINE = 64 * 1024;

class RequestError extends Error {}

export class ControlServer {
  private readonly connections = new Set<net.Socket>();
  private target: ControlTarget | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: net.Server,
    readonly path: string,
    private readonly log: Logger,
  ) {
    server.on('connection', (socket) => this.accept(socket));
  }

  private get live(): ControlTarget {
    if (!this.target) throw new RequestError(this.closing ? 'the server is stopping' : 'the server is starting');
    return this.target;
  }

  /** Starts answering requests (until then: "the server is starting"). */
  serve(target: ControlTarget): void {
    this.target = target;
  }

  /**
   * Listens on `socketPath`, owner-only. A socket left by a process that is gone is replaced;
   * one that still answers means another server uses this data directory: a CommandError (one
   * line from `starling start`).
   */
  static async open(socketPath: string, log: Logger): Promise<ControlServer> {
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
      throw new CommandError(`the control socket path ${socketPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes: choose a shorter data_dir`);
    }
    await claimPath(socketPath);
    const server = net.createServer();
    // The socket is created with the umask's mode: owner-only from the start, not after a chmod.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    chmodSync(socketPath, 0o600);
    return new ControlServer(server, socketPath, log);
  }

  /** Stops listening, drops the open connections and removes the socket file. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.target = undefined;
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const socket of this.connections) socket.destroy();
      await closed;
      try {
        unlinkSync(this.path);
      } catch {
        // removed by the close already
      }
    })());
  }

  private accept(socket: net.Socket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => {});
    socket.setEncoding('utf8');
    let buffered = '';
    // Requests on one connection are answered in order.
    let queue = Promise.resolve();
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim() === '') continue;
        queue = queue.then(() => this.answer(line)).then((response) => void (socket.writable && socket.write(`${JSON.stringify(response)}\n`)));
      }
      if (buffered.length > MAX_LINE) socket.destroy();
    });
  }

  private async answer(line: string): Promise<ControlResponse> {
    let id = 0;
    try {
      const request = JSON.parse(line) as ControlRequest & { id?: unknown };
      if (typeof request !== 'object' || request === null || typeof request.command !== 'string') throw new RequestError('not a request');
      if (typeof request.id === 'number') id = request.id;
      return { id, ok: true, result: await this.handle(request) };
    } catch (err) {
      const kind: ControlErrorKind = err instanceof AccountError ? 'account' : err instanceof RequestError || err instanceof SyntaxError ? 'request' : 'internal';
      if (kind === 'internal') this.log.error({ err }, 'control request failed');
      return { id, ok: false, kind, error: (err as Error).message };
    }
  }

  private async handle(request: ControlRequest): Promise<unknown> {
    switch (request.command) {
      case 'status':
        return this.status();
      case 'sessions':
        return this.sessions(optionalString(request.host, 'host'));
      case 'kick':
        return this.kick(requiredString(request.jid, 'jid'), optionalString(request.reason, 'reason'));
      case 'exists': {
        const jid = this.live.core.accounts.userJid(requiredString(request.jid, 'jid'));
        return { jid: jid.toString(), exists: await this.live.core.accounts.exists(jid) };
      }
      case 'deluser':
        return this.deleteUser(requiredString(request.jid, 'jid'));
      case 'passwd':
        return this.setPassword(requiredString(request.jid, 'jid'), requiredString(request.password, 'password'), request.keepSessions === true);
      case 'reload':
        return this.reload();
      case 'announce':
        return this.announce(requiredString(request.host, 'host'), requiredString(request.message, 'message'));
      default:
        throw new RequestError(`unknown command "${(request as { command: string }).command}"`);
    }
  }

  private async status(): Promise<StatusResult> {
    const { core } = this.live;
    let sessions = 0;
    for (const _ of core.sessions.all()) sessions++;
    const s2s = this.live.s2sConnections();
    return {
      version: VERSION,
      node: core.node,
      pid: process.pid,
      startedAt: core.startedAt.toISOString(),
      uptimeSeconds: Math.floor((Date.now() - core.startedAt.getTime()) / 1000),
      hosts: [...core.hosts.keys()],
      c2s: { connections: this.live.c2sConnections(), sessions },
      s2s: { incoming: s2s.filter((c) => c.direction === 'in').length, outgoing: s2s.filter((c) => c.direction === 'out').length },
      components: this.live.components(),
      storage: { driver: core.storage.driver, location: core.storage.location },
      liveState: { backend: core.config.live_state.backend, state: await core.live.state?.() },
      cluster: await core.cluster?.nodes().catch(() => undefined),
    };
  }

  private sessions(host: string | undefined): SessionInfo[] {
    const { core } = this.live;
    const domain = host?.toLowerCase();
    if (domain !== undefined && !core.hosts.has(domain)) throw new RequestError(`${host} is not a host of this server`);
    const out: SessionInfo[] = [];
    const clustered = core.cluster !== undefined;
    for (const s of core.sessions.all()) {
      if (!s.jid || (domain !== undefined && s.jid.domain !== domain)) continue;
      const info = describe(s as Session & { jid: Jid }, core.hosts.get(s.jid.domain));
      out.push(clustered ? { ...info, node: core.node } : info);
    }
    // The other nodes' sessions, as the directory has them: what their nodes published.
    for (const s of core.sessions.allRemote()) {
      if (s.closed || (domain !== undefined && s.jid.domain !== domain)) continue;
      out.push({ jid: s.jid.toString(), ip: s.remoteAddress, since: new Date(s.connectedAt).toISOString(), secure: s.secure, available: s.presence !== undefined, node: s.node });
    }
    return out.sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
  }

  /** Ends one session (a full JID) or every session of an account (a bare JID). */
  private async reload(): Promise<ReloadReport> {
    try {
      const report = await this.live.reload();
      this.log.info(report, 'reloaded on request');
      return report;
    } catch (err) {
      // The file does not validate: nothing changed; the CLI shows the problems.
      if (err instanceof ConfigError) throw new RequestError(`${err.message}\nnothing was reloaded`);
      throw err;
    }
  }

  private async announce(host: string, message: string): Promise<AnnounceResult> {
    const { core } = this.live;
    if (!core.hosts.has(host)) throw new RequestError(`${host} is not a host of this server`);
    if (message.trim() === '') throw new RequestError('the announcement is empty');
    const sent = await announce(core, host, 'Announcement', message);
    this.log.info({ host, sent }, 'announcement sent by the administrator');
    return { sent };
  }

  private kick(address: string, reason: string | undefined): KickResult {
    const jid = this.localUser(address);
    const { sessions } = this.live.core;
    const targets = jid.isBare ? sessions.resourcesOf(jid) : [sessions.get(jid)].filter((s): s is Session => s !== undefined);
    if (targets.length === 0) throw new RequestError(`${jid} has no session on this server`);
    const closed = targets.map((s) => s.jid!.toString());
    const error = new StreamError('policy-violation', reason || 'disconnected by the server administrator');
    for (const s of targets) s.close(error);
    this.log.info({ jid: jid.toString(), closed: closed.length, reason }, 'sessions ended by the administrator');
    return { closed };
  }

  private async deleteUser(address: string): Promise<AccountResult> {
    const { accounts, sessions } = this.live.core;
    const jid = accounts.userJid(address);
    const closed = sessions.count(jid);
    // The deletion closes the account's sessions (<not-authorized/>, see server.ts).
    await accounts.delete(jid);
    this.log.info({ jid: jid.toString(), closed }, 'account deleted by the administrator');
    return { jid: jid.toString(), closed };
  }

  /** Sets a password; the account's sessions end (<reset/>, as Prosody does) unless kept. */
  private async setPassword(address: string, password: string, keepSessions: boolean): Promise<AccountResult> {
    const { accounts, sessions } = this.live.core;
    const jid = accounts.userJid(address);
    await accounts.setPassword(jid, password);
    let closed = 0;
    if (!keepSessions) {
      const error = new StreamError('reset', 'the password was changed');
      for (const s of sessions.resourcesOf(jid)) {
        s.close(error);
        closed++;
      }
    }
    this.log.info({ jid: jid.toString(), closed }, 'password changed by the administrator');
    return { jid: jid.toString(), closed };
  }

  /** A JID of a user of one of our hosts (bare or full). */
  private localUser(address: string): Jid {
    let jid: Jid;
    try {
      jid = parseJid(address);
    } catch (err) {
      if (err instanceof JidError) throw new RequestError(`"${address}" is not a valid JID: ${err.message}`);
      throw err;
    }
    if (!jid.local) throw new RequestError(`"${address}" is not a user's JID (user@host or user@host/resource)`);
    if (!this.live.core.hosts.has(jid.domain)) throw new RequestError(`${jid.domain} is not a host of this server`);
    return jid;
  }
}

/**
 * What the sessions listing shows of one session. Stream management and CSI say what they know
 * of it through the 'session/describe' hook (their state is theirs).
 */
function describe(s: Session & { jid: Jid }, host: Host | undefined): SessionInfo {
  const info: SessionDescription = {};
  host?.hooks.fireSync('session/describe', { session: s, info });
  return {
    jid: s.jid.toString(),
    ip: s.remoteAddress,
    since: new Date(s.connectedAt).toISOString(),
    secure: s.secure,
    sm: info.sm ?? 'off',
    csi: info.csi ?? 'active',
    available: s.presence !== undefined,
  };
}

function requiredString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new RequestError(`"${name}" is missing`);
  return value;
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new RequestError(`"${name}" must be a string`);
  return value;
}

/** Makes way for a new socket at `socketPath`: removes a stale one, refuses a live one. */
async function claimPath(socketPath: string): Promise<void> {
  let stat;
  try {
    stat = lstatSync(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) throw new CommandError(`${socketPath} exists and is not a socket: move it away`);
  if (await answers(socketPath)) {
    throw new CommandError(`another Starling process is running with this data directory (its control socket ${socketPath} answers)`);
  }
  unlinkSync(socketPath);
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const timer = setTimeout(() => (socket.destroy(), resolve(true)), 2000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve(false);
      else reject(new CommandError(`cannot tell whether the control socket ${socketPath} is in use: ${err.message}`));
    });
  });
}

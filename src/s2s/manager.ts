// Federation: the server-to-server connections of this node. It takes the stanzas the router
// gives the 'route/remote' hook and sends them over one outgoing stream per (local domain,
// remote domain) pair, accepts incoming streams, and runs dialback checks for them over the
// outgoing streams. See outbound.ts and inbound.ts for each direction.
import type net from 'node:net';
import type { Logger } from '../log.js';
import type { ServerCore } from '../module-api/core.js';
import type { RouteEvent } from '../module-api/events.js';
import { StanzaError, StreamError } from '../stream/errors.js';
import { NS } from '../xml/namespaces.js';
import type { S2sContext, S2sOptions, Verdict } from './context.js';
import { DialbackKeys, loadDialbackSecret } from './dialback.js';
import { InboundStream } from './inbound.js';
import { S2sListeners, type S2sBoundAddress } from './listener.js';
import { OutboundStream } from './outbound.js';
import { ResolveError, resolveTargets, type SrvResolver } from './resolve.js';
import { parseRouteTarget, type ConnectTarget } from './route-target.js';
import { S2sTls } from './tls.js';
import { prepareDomain } from '../precis.js';

export interface S2sConnectionInfo {
  direction: 'in' | 'out';
  local: string | undefined;
  remote: string | undefined;
  secure: boolean;
  directTls: boolean;
  /** out: how we authenticated; in: how each remote domain did. */
  auth: string[];
  ready: boolean;
}

export class S2sManager {
  /** Static routes: remote domain -> where to connect (from the configuration; addRoute adds). */
  readonly routes = new Map<string, ConnectTarget>();
  private readonly outgoing = new Map<string, OutboundStream>();
  private readonly incoming = new Set<InboundStream>();
  private readonly listeners: S2sListeners;
  private readonly ctx: S2sContext;
  private readonly log: Logger;
  private stopping = false;
  addresses: S2sBoundAddress[] = [];

  constructor(
    private readonly core: ServerCore,
    srvResolver?: SrvResolver,
    /** The cluster's shared dialback secret (sharedDialbackSecret), else this node's own. */
    dialbackSecret?: string,
  ) {
    const options: S2sOptions = core.config.s2s;
    this.log = core.log.child({ component: 's2s' });
    for (const [domain, value] of Object.entries(options.routes)) this.routes.set(prepareDomain(domain), parseRouteTarget(value)!);
    const tlsConfig = new S2sTls(core.certificates, options.ca_files, core.config.tls.min_version);
    this.ctx = {
      options,
      tls: tlsConfig,
      keys: new DialbackKeys(dialbackSecret ?? loadDialbackSecret(options.dialback_secret, core.config.dataDir)),
      log: this.log,
      isLocal: (domain) => core.router.isLocal(domain),
      resolve: async (domain) => {
        const route = this.routes.get(domain);
        if (route) return [route];
        if (!options.dns_lookup) throw new ResolveError(`no route to ${domain} (DNS lookups are off: s2s.dns_lookup = false)`);
        return resolveTargets(domain, srvResolver);
      },
      verify: (local, remote, id, key) => this.verify(local, remote, id, key),
      deliver: (stanza) => core.router.route(stanza),
      linked: (local, remote, direction) => void core.router.hostOf(local)?.hooks.fire('s2s/linked', { local, remote, direction }),
      bounce: (stanza, condition, text) => core.router.bounce(stanza, new StanzaError(condition, text)),
    };
    this.listeners = new S2sListeners(options, tlsConfig, this.log, (socket, directTls) => this.accept(socket, directTls));
  }

  /** Opens the listeners; resolves with the addresses bound. */
  async listen(): Promise<S2sBoundAddress[]> {
    this.addresses = await this.listeners.listen();
    for (const a of this.addresses) this.log.info({ address: a.address, port: a.port, tls: a.directTls ? 'direct' : 'starttls' }, 's2s listening');
    return this.addresses;
  }

  /** Adds or replaces a static route (tests; an administrator's tools). */
  addRoute(domain: string, target: string): void {
    const parsed = parseRouteTarget(target);
    if (!parsed) throw new Error(`bad route target "${target}"`);
    this.routes.set(prepareDomain(domain), parsed);
  }

  /** The 'route/remote' hook: takes a stanza for another domain (true), or leaves it (false). */
  route(event: RouteEvent): boolean {
    const { stanza, from, to } = event;
    if (this.stopping) return false;
    if (!this.core.router.isLocal(from.domain) || this.core.router.isLocal(to.domain)) {
      this.log.warn({ from: from.domain, to: to.domain }, 'not routed to a remote server: the sender is not one of our domains');
      return false;
    }
    if (stanza.attrs.xmlns === NS.CLIENT || stanza.attrs.xmlns === NS.SERVER) delete stanza.attrs.xmlns;
    this.outbound(from.domain, to.domain).send(stanza);
    return true;
  }

  /** What is connected now (diagnostics and tests). */
  connections(): S2sConnectionInfo[] {
    const out: S2sConnectionInfo[] = [];
    for (const s of this.outgoing.values()) {
      out.push({ direction: 'out', local: s.local, remote: s.remote, secure: s.secure, directTls: s.directTls, auth: s.authMethod ? [s.authMethod] : [], ready: s.ready });
    }
    for (const s of this.incoming) {
      out.push({
        direction: 'in',
        local: s.local,
        remote: s.remote,
        secure: s.secure,
        directTls: s.directTls,
        auth: [...s.methods].map(([domain, method]) => `${domain}:${method}`),
        ready: s.methods.size > 0,
      });
    }
    return out;
  }

  /** Stops accepting, closes every stream (queued stanzas bounce), waits (bounded) for the sockets. */
  async stop(timeoutMs = 3000): Promise<void> {
    this.stopping = true;
    const listening = this.listeners.stop();
    const outgoing = [...this.outgoing.values()];
    for (const s of outgoing) s.close();
    const incoming = [...this.incoming];
    const incomingGone = new Promise<void>((resolve) => {
      if (this.incoming.size === 0) return resolve();
      this.drained = resolve;
    });
    for (const s of incoming) s.close(new StreamError('system-shutdown', 'the server is shutting down'));
    await Promise.race([Promise.all([incomingGone, ...outgoing.map((s) => s.finished)]), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    await listening;
  }

  private drained: (() => void) | undefined;

  private accept(socket: net.Socket, directTls: boolean): void {
    if (this.stopping) return void socket.destroy();
    const stream = new InboundStream(socket, directTls, this.ctx, (s) => {
      this.incoming.delete(s);
      if (this.incoming.size === 0) this.drained?.();
    });
    this.incoming.add(stream);
  }

  private outbound(local: string, remote: string): OutboundStream {
    const key = `${local} ${remote}`;
    const existing = this.outgoing.get(key);
    if (existing?.open) return existing;
    const stream = new OutboundStream(local, remote, this.ctx, (s) => {
      if (this.outgoing.get(key) === s) this.outgoing.delete(key);
    });
    this.outgoing.set(key, stream);
    stream.start();
    return stream;
  }

  private async verify(local: string, remote: string, id: string, key: string): Promise<Verdict> {
    if (this.stopping) return { type: 'error', condition: 'remote-server-timeout', text: 'the server is shutting down' };
    // Someone claims to be one of our own domains: we are its authoritative server.
    if (this.core.router.isLocal(remote)) return { type: this.ctx.keys.verify(local, remote, id, key) ? 'valid' : 'invalid' };
    return this.outbound(local, remote).verify(id, key);
  }
}

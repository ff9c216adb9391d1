// The external components (XEP-0114): their listener (5347, loopback by default), which
// component holds each configured domain, and the routing of stanzas to them. Each configured
// domain is a service domain of the router from the start: while its component is away,
// messages and IQs to it come back with <service-unavailable/> and presence is dropped.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Element } from '@xmpp/xml';
import type { ComponentOptions } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { ServerCore } from '../module-api/core.js';
import type { DiscoItem, Host } from '../module-api/host.js';
import { addressUnavailable, listenOn } from '../net/listen.js';
import { OperatorError } from '../operator-error.js';
import { prepareDomain } from '../precis.js';
import { StanzaError, StreamError } from '../stream/errors.js';
import { ComponentStream } from './component-stream.js';

export interface ComponentAddress {
  address: string;
  port: number;
}

export interface ComponentCounts {
  configured: number;
  connected: number;
}

/** 'connected' and 'disconnected' with the component's domain, once its handshake passed and once that stream is gone. */
interface ComponentEvents {
  connected: [domain: string];
  disconnected: [domain: string];
}

export class ComponentListeners extends EventEmitter<ComponentEvents> {
  private readonly servers: net.Server[] = [];
  /** Every open connection, authenticated or not. */
  readonly streams = new Set<ComponentStream>();
  /** The authenticated stream of each domain. */
  private readonly connected = new Map<string, ComponentStream>();
  private readonly components = new Map<string, ComponentOptions>();
  private readonly undo: (() => void)[] = [];
  private readonly log: Logger;
  private drained: (() => void) | undefined;

  constructor(private readonly core: ServerCore) {
    super();
    this.log = core.log.child({ component: 'components' });
    for (const [name, options] of Object.entries(core.config.components)) this.components.set(prepareDomain(name), options);
  }

  /** Makes each configured domain routable (to its component, or bounced) and lists it in its parent host's disco#items. */
  register(): void {
    for (const [domain, options] of this.components) {
      try {
        this.undo.push(this.core.router.addDomain(domain, (stanza) => this.toComponent(domain, stanza)));
      } catch {
        throw new OperatorError(`components."${domain}": the domain is served already (by a module such as muc, pubsub or http_upload)`);
      }
      const parent = this.parentOf(domain);
      if (!parent) continue;
      const item: DiscoItem = options.name ? { jid: domain, name: options.name } : { jid: domain };
      parent.discoItems.push(item);
      this.undo.push(() => {
        const at = parent.discoItems.indexOf(item);
        if (at !== -1) parent.discoItems.splice(at, 1);
      });
    }
  }

  /** Opens the listener when at least one component is configured; resolves with the addresses bound. */
  async listen(): Promise<ComponentAddress[]> {
    const bound: ComponentAddress[] = [];
    if (this.components.size === 0) return bound;
    const { interfaces, port } = this.core.config.component_listener;
    for (const address of interfaces) {
      const server = net.createServer((socket) => this.accept(socket));
      try {
        await listenOn(server, address, port);
      } catch (err) {
        if (!addressUnavailable(err)) throw Object.assign(err as object, { address, port });
        this.log.warn({ address, port }, 'address not available, skipped');
        continue;
      }
      this.servers.push(server);
      const info = server.address() as net.AddressInfo;
      bound.push({ address: info.address, port: info.port });
    }
    this.log.info({ addresses: bound, components: [...this.components.keys()] }, 'component listener ready');
    return bound;
  }

  counts(): ComponentCounts {
    return { configured: this.components.size, connected: this.connected.size };
  }

  private accept(socket: net.Socket): void {
    const stream = new ComponentStream(socket, {
      options: this.core.config.component_listener,
      log: this.log,
      lookup: (domain) => this.components.get(domain),
      attach: (s) => this.attach(s),
      closed: (s) => this.detach(s),
      route: (stanza) => this.core.router.route(stanza),
    });
    this.streams.add(stream);
  }

  /** A component authenticated: it takes its domain, replacing the connected one or refused (the domain's `replace`). */
  private attach(stream: ComponentStream): boolean {
    const domain = stream.domain!;
    const current = this.connected.get(domain);
    if (current && !current.closed) {
      if (!this.components.get(domain)!.replace) return false;
      this.log.info({ domain }, 'a new connection of the component replaces the old one');
      current.close(new StreamError('conflict', 'replaced by a new connection of the component'));
    }
    this.connected.set(domain, stream);
    this.emit('connected', domain);
    return true;
  }

  private detach(stream: ComponentStream): void {
    this.streams.delete(stream);
    if (stream.domain !== undefined && this.connected.get(stream.domain) === stream) {
      this.connected.delete(stream.domain);
      this.emit('disconnected', stream.domain);
    }
    if (this.streams.size === 0) this.drained?.();
  }

  private toComponent(domain: string, stanza: Element): void {
    const stream = this.connected.get(domain);
    if (stream && !stream.closed) return stream.deliver(stanza);
    if (stanza.name === 'presence') return;
    throw new StanzaError('service-unavailable', `the component ${domain} is not connected`);
  }

  /** The served host whose subdomain `domain` is (the longest match), if any. */
  private parentOf(domain: string): Host | undefined {
    let parent: Host | undefined;
    for (const host of this.core.hosts.values()) {
      if (domain.endsWith(`.${host.domain}`) && (!parent || host.domain.length > parent.domain.length)) parent = host;
    }
    return parent;
  }

  /** Stops accepting connections. */
  stopListening(): Promise<void> {
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.length = 0;
    return closed.then(() => undefined);
  }

  /** Closes every component stream with system-shutdown, waits (bounded) for them to go, and takes the domains back. */
  async closeAll(timeoutMs = 3000): Promise<void> {
    if (this.streams.size > 0) {
      const gone = new Promise<void>((resolve) => (this.drained = resolve));
      for (const s of this.streams) s.close(new StreamError('system-shutdown', 'the server is shutting down'));
      await Promise.race([gone, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    }
    for (const undo of this.undo.splice(0).reverse()) undo();
  }
}

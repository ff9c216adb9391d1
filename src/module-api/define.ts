// defineModule and the module context: a module registers through its context only, and the
// context records every registration so unloading (or a failed boot) undoes all of it.
import type { Element } from '@xmpp/xml';
import type { z } from 'zod';
import type { Logger } from '../log.js';
import type { HttpHandler, RouteOptions } from '../net/http.js';
import type { Migration } from '../storage/migrations.js';
import { Stores } from '../storage/stores.js';
import type { ModuleCommand } from './commands.js';
import type { ServerCore } from './core.js';
import type { HookEvents } from './events.js';
import type { HookHandler } from './hooks.js';
import { Host, type DiscoIdentity, type DiscoItem, type NonzaHandler, type PreAuthIqHandler, type StreamFeature } from './host.js';
import type { IqHandler, IqTarget } from './iq.js';
import type { ServiceKey } from './keys.js';

export interface ModuleDefinition<S extends z.ZodType = z.ZodType> {
  name: string;
  /** Other modules this one needs on the same host; checked at boot. */
  depends?: string[];
  /** Option schema with defaults, validated at boot under `[modules.<name>]`. */
  config?: S;
  /** The module's own schema migrations (component = its name), run once at boot before any host loads it. */
  migrations?: readonly Migration[];
  setup(ctx: ModuleContext<z.infer<S>>): void | Promise<void>;
  /** Commands this module adds to `starling` (see commands.ts); available whether or not a host enables it. */
  commands?: ModuleCommand[];
  /**
   * `starling reload` (and SIGHUP) found this host's `[modules.<name>]` options changed: apply
   * them live (afterwards `ctx.config` is `options`), or return false when they take effect only
   * after a restart. Without this hook, changed options always need a restart. A module whose
   * options are read from `ctx.config` at each use only has to return true.
   */
  reconfigure?(ctx: ModuleContext<z.infer<S>>, options: z.infer<S>): boolean | void | Promise<boolean | void>;
}

export function defineModule<S extends z.ZodType>(definition: ModuleDefinition<S>): ModuleDefinition<S> {
  return definition;
}

export interface IqRegistrar {
  get(ns: string, name: string, handler: IqHandler, options?: { to?: IqTarget }): void;
  set(ns: string, name: string, handler: IqHandler, options?: { to?: IqTarget }): void;
}

export class ModuleContext<C = unknown> {
  private readonly undo: (() => void | Promise<void>)[] = [];
  readonly log: Logger;
  readonly iq: IqRegistrar;

  constructor(
    readonly name: string,
    readonly host: Host,
    private options: C,
    readonly server: ServerCore,
  ) {
    this.log = host.log.child({ module: name });
    const register = (type: 'get' | 'set') => (ns: string, el: string, handler: IqHandler, options?: { to?: IqTarget }) => {
      this.undo.push(host.iq.add(type, options?.to ?? 'host', ns, el, handler, name));
    };
    this.iq = { get: register('get'), set: register('set') };
  }

  /** The module's options (`[modules.<name>]`, validated, with defaults). */
  get config(): C {
    return this.options;
  }

  /** After the module's reconfigure hook accepted `options` (src/reload.ts). */
  reconfigured(options: C): void {
    this.options = options;
  }

  private stores?: Stores;

  /** The store kinds (keyval, map, archive) on the server's database. */
  get store(): Stores {
    return (this.stores ??= new Stores(this.server.storage, this));
  }

  get domain(): string {
    return this.host.domain;
  }

  hook<K extends keyof HookEvents>(event: K, handler: HookHandler<HookEvents[K]>, priority = 0): void {
    this.undo.push(this.host.hooks.on(event, handler, priority, this.name));
  }

  /** A disco#info feature of the host. */
  feature(ns: string): void {
    if (this.host.discoFeatures.has(ns)) return;
    this.host.discoFeatures.add(ns);
    this.undo.push(() => void this.host.discoFeatures.delete(ns));
  }

  /** A disco#info feature of every account (bare JID), which the server answers on its behalf. */
  accountFeature(ns: string): void {
    if (this.host.accountFeatures.has(ns)) return;
    this.host.accountFeatures.add(ns);
    this.undo.push(() => void this.host.accountFeatures.delete(ns));
  }

  /** A disco#info identity of every account (bare JID), besides account/registered. */
  accountIdentity(identity: DiscoIdentity): void {
    this.host.accountIdentities.push(identity);
    this.undo.push(() => void this.host.accountIdentities.splice(this.host.accountIdentities.indexOf(identity), 1));
  }

  /** An item of the host's disco#items, such as a service domain this module serves. */
  discoItem(item: DiscoItem): void {
    this.host.discoItems.push(item);
    this.undo.push(() => void this.host.discoItems.splice(this.host.discoItems.indexOf(item), 1));
  }

  identity(identity: DiscoIdentity): void {
    this.host.discoIdentities.push(identity);
    this.undo.push(() => void this.host.discoIdentities.splice(this.host.discoIdentities.indexOf(identity), 1));
  }

  discoForm(form: Element): void {
    this.host.discoForms.push(form);
    this.undo.push(() => void this.host.discoForms.splice(this.host.discoForms.indexOf(form), 1));
  }

  streamFeature(feature: Omit<StreamFeature, 'owner'>): void {
    const entry: StreamFeature = { ...feature, owner: this.name };
    this.host.streamFeatures.push(entry);
    this.undo.push(() => void this.host.streamFeatures.splice(this.host.streamFeatures.indexOf(entry), 1));
  }

  /** Handles a top-level negotiation element `<name xmlns=ns>` on client streams of this host. */
  nonza(ns: string, name: string, handler: NonzaHandler): void {
    const key = `${name} ${ns}`;
    const existing = this.host.nonzas.get(key);
    if (existing) throw new Error(`<${name} xmlns='${ns}'/> is handled by "${existing.owner}" already`);
    this.host.nonzas.set(key, { handler, owner: this.name });
    this.undo.push(() => void this.host.nonzas.delete(key));
  }

  /**
   * Handles IQ `type` `<name xmlns=ns>` from client streams before authentication (in-band
   * registration). Only served once the stream may negotiate (TLS on, unless not required) and
   * only when addressed to the host or to nobody; any other stanza before authentication still
   * ends the stream.
   */
  preAuthIq(type: 'get' | 'set', ns: string, name: string, handler: PreAuthIqHandler): void {
    const key = Host.preAuthIqKey(type, ns, name);
    const existing = this.host.preAuthIqs.get(key);
    if (existing) throw new Error(`IQ ${type} <${name} xmlns='${ns}'/> before authentication is handled by "${existing.owner}" already`);
    this.host.preAuthIqs.set(key, { handler, owner: this.name });
    this.undo.push(() => void this.host.preAuthIqs.delete(key));
  }

  /** Offers a service to the other modules of the host, under its typed key (serviceKey()). */
  provide<T>(key: ServiceKey<T>, implementation: T): void {
    const existing = this.host.services.get(key.name);
    if (existing) throw new Error(`service "${key.name}" is provided by "${existing.owner}" already`);
    this.host.services.set(key.name, { service: implementation, owner: this.name });
    this.undo.push(() => void this.host.services.delete(key.name));
  }

  use<T>(key: ServiceKey<T>): T {
    const entry = this.host.services.get(key.name);
    if (!entry) throw new Error(`module "${this.name}" uses service "${key.name}", which no loaded module provides`);
    return entry.service as T;
  }

  /** Optional use: undefined when no module provides it. */
  tryUse<T>(key: ServiceKey<T>): T | undefined {
    return this.host.services.get(key.name)?.service as T | undefined;
  }

  /** HTTP routes of this module on the process's HTTP server, removed on unload. */
  get http(): { route(methods: string | string[], pathPrefix: string, handler: HttpHandler, options?: RouteOptions): void; baseUrl(domain: string): string } {
    return {
      route: (methods, pathPrefix, handler, options) => void this.undo.push(this.server.http.route(methods, pathPrefix, handler, options, this.name)),
      baseUrl: (domain) => this.server.http.baseUrl(domain),
    };
  }

  every(ms: number, fn: () => void): void {
    const timer = setInterval(() => {
      try {
        fn();
      } catch (err) {
        this.log.error({ err }, 'timer failed');
      }
    }, ms);
    timer.unref();
    this.undo.push(() => clearInterval(timer));
  }

  /**
   * Cache invalidation between cluster nodes (invalidation.ts): publish a changed key once it is
   * committed; `on` handlers (removed on unload) hear the other nodes' changes.
   */
  get invalidation(): { publish(topic: string, key: string): Promise<void>; on(topic: string, handler: (key: string) => void): void } {
    const bus = this.server.invalidation;
    return {
      publish: (topic, key) => bus.publish(topic, key),
      on: (topic, handler) => void this.undo.push(bus.on(topic, handler)),
    };
  }

  onUnload(fn: () => void | Promise<void>): void {
    this.undo.push(fn);
  }

  async unload(): Promise<void> {
    for (const fn of this.undo.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        this.log.error({ err }, 'unload step failed');
      }
    }
  }
}

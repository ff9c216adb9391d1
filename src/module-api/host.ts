// Everything registered for one served domain: hooks, IQ handlers, stream features and
// negotiation elements, disco contributions and the services modules provide to each other.
import type { Element } from '@xmpp/xml';
import { parseJid, type Jid } from '../jid.js';
import type { HostOptions } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { ClientStream } from '../sessions/session.js';
import { HookBus } from './hooks.js';
import type { HookEvents } from './events.js';
import { IqRegistry } from './iq.js';
import type { ServiceKey } from './keys.js';

export interface StreamFeature {
  owner: string;
  /** Before authentication (SASL) or after it (bind, stream management, ...). */
  stage: 'pre-auth' | 'post-auth';
  /** The feature element to offer this stream, or undefined to offer nothing. */
  advertise(stream: ClientStream): Element | undefined;
}

/** Handles a top-level element that is not a stanza (SASL exchanges, SM acks, ...). */
export type NonzaHandler = (stream: ClientStream, element: Element) => void | Promise<void>;

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

/** An entry of the host's disco#items (XEP-0030 §4): a service domain or another entity. */
export interface DiscoItem {
  jid: string;
  name?: string;
  node?: string;
}

/**
 * An IQ get or set from a client stream before authentication (in-band registration,
 * XEP-0077). The client has no address yet: its 'from' is dropped, and the reply goes back
 * over the same stream, addressed to nobody.
 */
export interface PreAuthIq {
  readonly stanza: Element;
  /** The one child element of the IQ. */
  readonly payload: Element;
  readonly type: 'get' | 'set';
  readonly stream: ClientStream;
  /** The result stanza, with optional payload children. */
  reply(...children: (Element | null | undefined)[]): Element;
}

/** Returns the reply (or throws StanzaError / StreamError), like an IqHandler. */
export type PreAuthIqHandler = (iq: PreAuthIq) => Element | void | Promise<Element | void>;

export class Host {
  readonly hooks: HookBus<HookEvents>;
  readonly iq = new IqRegistry();
  readonly streamFeatures: StreamFeature[] = [];
  readonly nonzas = new Map<string, { handler: NonzaHandler; owner: string }>();
  /** IQ handlers for client streams before authentication, keyed by type, element and namespace. */
  readonly preAuthIqs = new Map<string, { handler: PreAuthIqHandler; owner: string }>();
  readonly discoFeatures = new Set<string>();
  readonly discoIdentities: DiscoIdentity[] = [{ category: 'server', type: 'im', name: 'Starling' }];
  /** Extra disco#info forms (XEP-0128), such as contact addresses. */
  readonly discoForms: Element[] = [];
  /** disco#items of the host itself (service domains). */
  readonly discoItems: DiscoItem[] = [];
  /** disco#info features of every account's bare JID, which the server answers on its behalf. */
  readonly accountFeatures = new Set<string>();
  /** disco#info identities of every account's bare JID besides account/registered (pubsub/pep). */
  readonly accountIdentities: DiscoIdentity[] = [];
  readonly services = new Map<string, { service: unknown; owner: string }>();
  readonly modules: string[] = [];
  /** The host's own address. */
  readonly jid: Jid;

  constructor(
    readonly domain: string,
    readonly options: HostOptions,
    readonly log: Logger,
  ) {
    this.hooks = new HookBus<HookEvents>(log);
    this.jid = parseJid(domain);
  }

  /** A service a module of this host provides (ctx.provide), for code outside its modules. */
  service<T>(key: ServiceKey<T>): T | undefined {
    return this.services.get(key.name)?.service as T | undefined;
  }

  static nonzaKey(ns: string, name: string): string {
    return `${name} ${ns}`;
  }

  nonza(element: Element): NonzaHandler | undefined {
    return this.nonzas.get(Host.nonzaKey(element.attrs.xmlns ?? '', element.name))?.handler;
  }

  static preAuthIqKey(type: 'get' | 'set', ns: string, name: string): string {
    return `${type} ${name} ${ns}`;
  }

  /** The handler for an IQ get/set before authentication, by its payload. */
  preAuthIq(type: 'get' | 'set', payload: Element): PreAuthIqHandler | undefined {
    return this.preAuthIqs.get(Host.preAuthIqKey(type, payload.attrs.xmlns ?? '', payload.name))?.handler;
  }
}

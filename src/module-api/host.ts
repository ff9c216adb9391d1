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

export class Host {
  readonly hooks: HookBus<HookEvents>;
  readonly iq = new IqRegistry();
  readonly streamFeatures: StreamFeature[] = [];
  readonly nonzas = new Map<string, { handler: NonzaHandler; owner: string }>();
  readonly discoFeatures = new Set<string>();
  readonly discoIdentities: DiscoIdentity[] = [{ category: 'server', type: 'im', name: 'Starling' }];
  /** Extra disco#info forms (XEP-0128), such as contact addresses. */
  readonly discoForms: Element[] = [];
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

  static nonzaKey(ns: string, name: string): string {
    return `${name} ${ns}`;
  }

  nonza(element: Element): NonzaHandler | undefined {
    return this.nonzas.get(Host.nonzaKey(element.attrs.xmlns ?? '', element.name))?.handler;
  }
}

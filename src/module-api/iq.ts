// IQ handlers, keyed by (type, namespace, element, addressed to host | bare | full | self).
// Exactly one handler per key: a second registration is a boot error, not a silent override.
// 'self' is an account's bare JID asked by the account's own clients (rosters, private data):
// the router answers anyone else with forbidden, so a handler never checks it again.
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../jid.js';
import type { Session } from '../sessions/session.js';

export type IqTarget = 'host' | 'bare' | 'full' | 'self';
export type IqType = 'get' | 'set';

export class IqRequest {
  constructor(
    readonly stanza: Element,
    /** The payload: the one child element of the IQ. */
    readonly payload: Element,
    readonly from: Jid,
    /** The addressed entity: the host, or an account's bare JID ('to' absent = the sender's account). */
    readonly to: Jid,
    /** The local client session it came from, if any. */
    readonly session?: Session,
  ) {}

  get type(): IqType {
    return this.stanza.attrs.type as IqType;
  }

  /** The result stanza, with optional payload children. */
  reply(...children: (Element | null | undefined)[]): Element {
    const attrs: Record<string, string> = { type: 'result', id: this.stanza.attrs.id ?? '' };
    attrs.to = this.from.toString();
    if (this.stanza.attrs.to) attrs.from = this.stanza.attrs.to;
    return xml('iq', attrs, ...children.filter((c): c is Element => c != null));
  }
}

/** Returns the reply, or nothing when the handler sends its own reply later. */
export type IqHandler = (iq: IqRequest) => Element | void | Promise<Element | void>;

export interface IqHandlerEntry {
  handler: IqHandler;
  owner: string;
}

export class IqRegistry {
  private readonly handlers = new Map<string, IqHandlerEntry>();

  static key(type: IqType, target: IqTarget, ns: string, name: string): string {
    return `${type} ${target} ${name} ${ns}`;
  }

  add(type: IqType, target: IqTarget, ns: string, name: string, handler: IqHandler, owner: string): () => void {
    const key = IqRegistry.key(type, target, ns, name);
    // An account's bare JID has one handler per payload, for its own clients or for everyone.
    const other = target === 'self' ? 'bare' : target === 'bare' ? 'self' : undefined;
    const existing = this.handlers.get(key) ?? (other && this.handlers.get(IqRegistry.key(type, other, ns, name)));
    if (existing) throw new Error(`IQ ${type} <${name} xmlns='${ns}'/> to ${target} is handled by "${existing.owner}" already`);
    this.handlers.set(key, { handler, owner });
    return () => {
      if (this.handlers.get(key)?.handler === handler) this.handlers.delete(key);
    };
  }

  find(type: IqType, target: IqTarget, ns: string, name: string): IqHandlerEntry | undefined {
    return this.handlers.get(IqRegistry.key(type, target, ns, name));
  }
}

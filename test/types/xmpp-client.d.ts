// Types for the parts of @xmpp/client and @xmpp/events the tests use; neither ships any.
declare module '@xmpp/client' {
  import { EventEmitter } from 'node:events';
  import type { Element } from '@xmpp/xml';

  export { xml } from '@xmpp/xml';

  export interface JID {
    local: string;
    domain: string;
    resource: string;
    bare(): JID;
    toString(): string;
  }

  export function jid(local: string, domain?: string, resource?: string): JID;

  export interface ClientOptions {
    service?: string;
    domain?: string;
    username?: string;
    password?: string;
    resource?: string;
    /** XEP-0388 <user-agent/>; a fresh id when absent. */
    userAgent?: Element;
    timeout?: number;
  }

  /** A FAST (XEP-0484) token as xmpp.js keeps it. */
  export interface FastToken {
    mechanism: string;
    token: string;
    expiry: string;
  }

  export interface IqCallerContext {
    stanza: Element;
    element: Element;
  }

  export interface Client extends EventEmitter {
    jid: JID | null;
    status: string;
    timeout: number;
    root: Element | null;
    start(): Promise<JID>;
    stop(): Promise<void>;
    send(el: Element): Promise<void>;
    write(data: string): Promise<void>;
    open(options: { domain: string; lang?: string }): Promise<Element>;
    /** Internals used by the stream-open fix in test/helpers/clients.ts. */
    header(el: Element): string;
    headerElement(): Element;
    _status(status: string, ...args: unknown[]): void;
    _attachParser(parser: EventEmitter): void;
    Parser: new () => EventEmitter;
    reconnect: { stop(): void; start(): void };
    iqCaller: {
      get(el: Element, to?: string, timeout?: number): Promise<Element>;
      set(el: Element, to?: string, timeout?: number): Promise<Element>;
      request(stanza: Element, timeout?: number): Promise<Element>;
    };
    iqCallee: {
      get(ns: string, name: string, handler: (ctx: IqCallerContext) => Element | object | Promise<Element | object>): void;
      set(ns: string, name: string, handler: (ctx: IqCallerContext) => Element | object | Promise<Element | object>): void;
    };
    fast: {
      fetchToken(): Promise<FastToken | null>;
      saveToken(token: FastToken): Promise<void>;
      deleteToken(): Promise<void>;
    };
  }

  export function client(options?: ClientOptions): Client;
}

declare module '@xmpp/events' {
  import type { EventEmitter } from 'node:events';

  /** Resolves with the first `event`, rejects on `rejectEvent` or after `timeout` ms. */
  export function promise<T = unknown>(target: EventEmitter, event: string, rejectEvent?: string | null, timeout?: number): Promise<T>;
  export function delay(ms: number): Promise<void>;
  export class TimeoutError extends Error {}
}

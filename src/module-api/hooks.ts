// Typed, priority-ordered hook chains. A handler returns true to stop the chain; a handler that
// throws is logged and the chain goes on, so one faulty module cannot take a stanza's path down.
// On a stanza's path (fireRoute, what the router fires) a handler may also refuse the stanza by
// throwing a StanzaError: that stops the chain and reaches the router, which answers the sender
// with it. That is how a module that cannot do what it took on (offline storage that cannot
// store) says so, instead of the failure being logged and the stanza counted as handled.
// A storage outage does the same: a handler that could not read what decides the stanza's way
// (a blocklist, a queue) cannot let it go on as if it had, so an error that says storage is
// unavailable also stops the chain and reaches the router, which logs it once and answers the
// sender <resource-constraint/> (wait). A module that can do without its storage for a stanza
// (the archive: the message is still delivered) catches the failure itself.
import type { Logger } from '../log.js';
import { isStorageUnavailable } from '../storage/errors.js';
import { StanzaError } from '../stream/errors.js';

export type HookHandler<E> = (event: E) => boolean | void | Promise<boolean | void>;

interface Entry<E> {
  handler: HookHandler<E>;
  priority: number;
  owner: string;
}

export class HookBus<Events extends object> {
  private readonly chains = new Map<keyof Events, Entry<any>[]>();

  constructor(private readonly log: Logger) {}

  /** Higher priority runs first; equal priorities run in registration order. Returns an undo. */
  on<K extends keyof Events>(name: K, handler: HookHandler<Events[K]>, priority = 0, owner = 'core'): () => void {
    const chain = this.chains.get(name) ?? [];
    const entry: Entry<Events[K]> = { handler, priority, owner };
    const at = chain.findIndex((e) => e.priority < priority);
    if (at === -1) chain.push(entry);
    else chain.splice(at, 0, entry);
    this.chains.set(name, chain);
    return () => {
      const i = chain.indexOf(entry);
      if (i !== -1) chain.splice(i, 1);
    };
  }

  has(name: keyof Events): boolean {
    return (this.chains.get(name)?.length ?? 0) > 0;
  }

  /**
   * Runs the chain synchronously, for hot paths whose order must not change (a promise a
   * handler returns is not waited for); true when a handler stopped it.
   */
  fireSync<K extends keyof Events>(name: K, event: Events[K]): boolean {
    const chain = this.chains.get(name);
    if (!chain || chain.length === 0) return false;
    for (const entry of [...chain]) {
      try {
        const result = entry.handler(event);
        if (result === true) return true;
        if (result instanceof Promise) {
          // A hot-path hook must answer at once; a promise here is a module bug, not a stop.
          this.log.error({ hook: String(name), module: entry.owner }, 'a synchronous hook handler returned a promise; its answer is ignored');
          result.catch((err) => this.log.error({ err, hook: String(name), module: entry.owner }, 'hook handler failed'));
        }
      } catch (err) {
        this.log.error({ err, hook: String(name), module: entry.owner }, 'hook handler failed; the chain goes on');
      }
    }
    return false;
  }

  /** Runs the chain; true when a handler stopped it. Never rejects. */
  fire<K extends keyof Events>(name: K, event: Events[K]): Promise<boolean> {
    return this.run(name, event, false);
  }

  /**
   * Runs the chain of a stanza's path; true when a handler stopped it. A handler that throws a
   * StanzaError, or an error saying storage is unavailable, stops it, and the promise rejects
   * with that error (for the router to answer the sender); any other exception is logged and
   * the chain goes on, as with fire().
   */
  fireRoute<K extends keyof Events>(name: K, event: Events[K]): Promise<boolean> {
    return this.run(name, event, true);
  }

  private async run<K extends keyof Events>(name: K, event: Events[K], refusable: boolean): Promise<boolean> {
    const chain = this.chains.get(name);
    if (!chain || chain.length === 0) return false;
    for (const entry of [...chain]) {
      try {
        if ((await entry.handler(event)) === true) return true;
      } catch (err) {
        if (refusable && (err instanceof StanzaError || isStorageUnavailable(err))) throw err;
        this.log.error({ err, hook: String(name), module: entry.owner }, 'hook handler failed; the chain goes on');
      }
    }
    return false;
  }
}

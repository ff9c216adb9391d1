// Typed, priority-ordered hook chains. A handler returns true to stop the chain; a handler that
// throws is logged and the chain goes on, so one faulty module cannot take a stanza's path down.
import type { Logger } from '../log.js';

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

  /** Runs the chain; true when a handler stopped it. */
  async fire<K extends keyof Events>(name: K, event: Events[K]): Promise<boolean> {
    const chain = this.chains.get(name);
    if (!chain || chain.length === 0) return false;
    for (const entry of [...chain]) {
      try {
        if ((await entry.handler(event)) === true) return true;
      } catch (err) {
        this.log.error({ err, hook: String(name), module: entry.owner }, 'hook handler failed; the chain goes on');
      }
    }
    return false;
  }
}

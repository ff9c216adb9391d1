// Elements a raw test client received, and waiting on them (for the WebSocket and BOSH clients).
import type { Element } from '@xmpp/xml';

export class ElementCollector {
  readonly elements: Element[] = [];
  private waiters: (() => void)[] = [];

  /** Wakes the waiters: call after something arrived (or the connection closed). */
  protected wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `check` returns a value (re-checked on each arrival). */
  async until<T>(check: () => T | undefined | false, timeoutMs = 8000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out (have: ${this.elements.map((e) => e.name).join(', ')})`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Waits for an element with this name (and takes it off the list). */
  element(name: string, timeoutMs?: number): Promise<Element> {
    return this.until(() => {
      const i = this.elements.findIndex((e) => e.name === name);
      return i === -1 ? undefined : this.elements.splice(i, 1)[0];
    }, timeoutMs);
  }
}

// The single-node live state: the same interfaces as the Redis one, in this process's memory.
import type { Counters, LiveState, SessionDirectory, SessionRecord } from './live-state.js';

function bareOf(fullJid: string): string {
  const slash = fullJid.indexOf('/');
  return slash === -1 ? fullJid : fullJid.slice(0, slash);
}

export class MemorySessionDirectory implements SessionDirectory {
  private readonly byBare = new Map<string, Map<string, SessionRecord>>();

  async put(record: SessionRecord): Promise<void> {
    const current = this.byBare.get(bareOf(record.jid))?.get(record.jid);
    if (!current || current.node === record.node) await this.claim(record);
  }

  async claim(record: SessionRecord): Promise<SessionRecord | undefined> {
    const bare = bareOf(record.jid);
    let resources = this.byBare.get(bare);
    if (!resources) this.byBare.set(bare, (resources = new Map()));
    const previous = resources.get(record.jid);
    resources.set(record.jid, { ...record });
    return previous;
  }

  async remove(fullJid: string, node: string): Promise<void> {
    const bare = bareOf(fullJid);
    const resources = this.byBare.get(bare);
    if (resources?.get(fullJid)?.node !== node) return;
    resources.delete(fullJid);
    if (resources.size === 0) this.byBare.delete(bare);
  }

  async resourcesOf(bareJid: string): Promise<SessionRecord[]> {
    return [...(this.byBare.get(bareJid)?.values() ?? [])].map((r) => ({ ...r }));
  }
}

export class MemoryCounters implements Counters {
  private readonly windows = new Map<string, { count: number; endsAt: number }>();
  private sweepAt = 0;

  async hit(key: string, windowMs: number): Promise<number> {
    const now = Date.now();
    this.sweep(now);
    const w = this.windows.get(key);
    if (!w || w.endsAt <= now) {
      this.windows.set(key, { count: 1, endsAt: now + windowMs });
      return 1;
    }
    return ++w.count;
  }

  async peek(key: string): Promise<number> {
    const w = this.windows.get(key);
    return w && w.endsAt > Date.now() ? w.count : 0;
  }

  async reset(key: string): Promise<void> {
    this.windows.delete(key);
  }

  /** Drops expired windows now and then, so the map does not grow with every address seen. */
  private sweep(now: number): void {
    if (now < this.sweepAt) return;
    this.sweepAt = now + 60_000;
    for (const [key, w] of this.windows) if (w.endsAt <= now) this.windows.delete(key);
  }
}

export function createMemoryLiveState(): LiveState {
  return { sessions: new MemorySessionDirectory(), counters: new MemoryCounters(), close: async () => {} };
}

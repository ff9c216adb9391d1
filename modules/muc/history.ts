// Discussion history (XEP-0045 §7.2.14-7.2.15): the last messages of a room, kept in memory
// (and, for a persistent room, in the database: the service writes each entry as it is pushed
// and trims the stored rows by sequence number), and the part of them a joining occupant asked
// for with <history/>.
import type { Element } from '@xmpp/xml';

export interface HistoryEntry {
  /** The message as the room broadcast it, without 'to'. */
  stanza: Element;
  /** When the room received it (ms since the epoch). */
  at: number;
  /** Characters of the complete stanza as sent (maxchars counts these). */
  chars: number;
  /** The XEP-0359 id the room gave it (a moderator retracts by it). */
  stanzaId: string;
  /** Its place in the room's history, counting up from 1 (stored rows are trimmed by it). */
  seq: number;
}

/** What a joining occupant asked for: any combination of the four limits. */
export interface HistoryRequest {
  maxchars?: number;
  maxstanzas?: number;
  seconds?: number;
  since?: number;
}

/** Reads <history/> from the join element; an unusable attribute is ignored. */
export function parseHistoryRequest(history: Element | undefined): HistoryRequest {
  if (!history) return {};
  const int = (name: string) => {
    const raw = history.attrs[name];
    if (raw === undefined || !/^\d+$/.test(raw.trim())) return undefined;
    return Number(raw.trim());
  };
  const request: HistoryRequest = { maxchars: int('maxchars'), maxstanzas: int('maxstanzas'), seconds: int('seconds') };
  if (history.attrs.since !== undefined) {
    const since = Date.parse(history.attrs.since);
    if (Number.isFinite(since)) request.since = since;
  }
  return request;
}

export class History {
  private entries: HistoryEntry[] = [];
  private nextSeq = 1;

  constructor(private capacity: number) {}

  get size(): number {
    return this.entries.length;
  }

  /** Most entries kept. */
  get length(): number {
    return this.capacity;
  }

  /** Every entry kept, oldest first. */
  all(): readonly HistoryEntry[] {
    return this.entries;
  }

  resize(capacity: number): void {
    this.capacity = capacity;
    if (this.entries.length > capacity) this.entries = this.entries.slice(this.entries.length - capacity);
  }

  /** Entries read back from storage (at start), oldest first; numbering goes on after them. */
  restore(entries: HistoryEntry[]): void {
    for (const e of entries) this.nextSeq = Math.max(this.nextSeq, e.seq + 1);
    this.entries = entries.slice(Math.max(0, entries.length - this.capacity));
  }

  /** Keeps a new message; returns it with its sequence number, or undefined when the room keeps no history. */
  push(entry: Omit<HistoryEntry, 'seq'>): HistoryEntry | undefined {
    if (this.capacity <= 0) return undefined;
    const kept = { ...entry, seq: this.nextSeq++ };
    this.entries.push(kept);
    if (this.entries.length > this.capacity) this.entries.shift();
    return kept;
  }

  /** Drops the message with this stanza id (a moderated retraction); returns how many went. */
  remove(stanzaId: string): number {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.stanzaId !== stanzaId);
    return before - this.entries.length;
  }

  /**
   * The newest messages that meet every limit asked for (§7.2.15: the smallest amount of
   * traffic that meets any combination of the criteria; only complete stanzas), oldest first.
   * `overhead` is what delivery adds to each stanza ('to' and the delay), counted in maxchars.
   */
  select(request: HistoryRequest, now: number, overhead: number): HistoryEntry[] {
    let from = this.entries.length;
    let chars = 0;
    const maxstanzas = request.maxstanzas ?? Infinity;
    const after = Math.max(request.since ?? -Infinity, request.seconds === undefined ? -Infinity : now - request.seconds * 1000);
    while (from > 0) {
      const entry = this.entries[from - 1]!;
      if (this.entries.length - from >= maxstanzas) break;
      if (entry.at < after) break;
      if (request.maxchars !== undefined && chars + entry.chars + overhead > request.maxchars) break;
      chars += entry.chars + overhead;
      from--;
    }
    return this.entries.slice(from);
  }
}

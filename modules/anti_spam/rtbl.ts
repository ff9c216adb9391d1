// Real-time blocklists (RTBL), as Prosody's mod_muc_rtbl reads them (xmppbl.org): pubsub nodes
// (XEP-0060) whose item ids are the hex SHA-256 of a bare JID or of a domain. The host
// subscribes to each node from its own address, fetches all its items, and follows the
// notifications (a published item lists an address, a retracted one lifts it, a purge or a
// deletion empties the list). Each list is kept in memory and in storage (a service archive,
// on SQLite and PostgreSQL), so it applies from the start after a restart, before the service
// answers again. The host subscribes and fetches again at start, when the list's server
// connects to us again after a lost link ('s2s/linked': events published meanwhile are lost),
// every `rtbl_refresh` seconds, and after a failure with backoff.
//
// Applied to what comes from other servers ('stanza/in'): messages and presence subscription
// requests from a listed address are dropped; and, through RtblKey, to MUC joins ([modules.muc]
// rtbl_ban: forbidden).
import { createHash } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { tryParseJid, type Jid } from '../../src/jid.js';
import type { ModuleContext } from '../../src/module-api/define.js';
import type { RouteEvent } from '../../src/module-api/events.js';
import type { ArchiveStore } from '../../src/storage/archive/store.js';
import { Priority } from '../../src/module-api/priorities.js';
import type { RtblApi } from './rtbl-api.js';
import { RtblKey } from './rtbl-api.js';

const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_EVENT = 'http://jabber.org/protocol/pubsub#event';
const HASH = /^[0-9a-f]{64}$/;

const List = z.strictObject({
  /** The pubsub service: a domain (pubsub.example.org) or an account's PEP (user@example.org). */
  service: z.string().refine((s) => tryParseJid(s)?.resource === '', { message: 'expected a pubsub service address such as "pubsub.example.org"' }),
  node: z.string().min(1),
});

/** The blocklists, under `[modules.anti_spam]`. */
export const RtblConfig = z.strictObject({
  rtbl: z.array(List).default([]),
  /** Seconds between two subscriptions and fetches of each list (what a lost link made us miss). */
  rtbl_refresh: z.number().min(1).default(600),
});
export type RtblConfig = z.infer<typeof RtblConfig>;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 300_000;
const REQUEST_TIMEOUT_MS = 30_000;

let requests = 0;

/** One subscribed node: its entries, and the way to keep them up to date. */
class Blocklist {
  readonly entries = new Set<string>();
  readonly service: Jid;
  private timer: NodeJS.Timeout | undefined;
  private retryMs = FIRST_RETRY_MS;
  private stopped = false;
  private saving: Promise<void> = Promise.resolve();
  private syncing = false;
  fetches = 0;

  constructor(
    private readonly ctx: ModuleContext<unknown>,
    service: string,
    readonly node: string,
    private readonly refreshMs: number,
    private readonly changed: () => void,
    private readonly store: ArchiveStore,
  ) {
    this.service = tryParseJid(service)!;
  }

  private get key(): string {
    return `${this.service.toString()} ${this.node}`;
  }

  /** The entries stored at the last change (before a restart), if any. */
  async load(): Promise<void> {
    try {
      const ends = await this.store.ends(this.ctx.domain, this.key);
      const stored = ends && (await this.store.get(this.ctx.domain, this.key, ends.last.id));
      if (!stored) return;
      for (const id of JSON.parse(stored.stanza) as string[]) if (HASH.test(id)) this.entries.add(id);
      this.ctx.log.info({ service: this.key, entries: this.entries.size }, 'blocklist loaded from storage');
    } catch (err) {
      this.ctx.log.warn({ service: this.key, err: (err as Error).message }, 'blocklist: reading the stored entries failed; starting empty until the service answers');
    }
  }

  /** Subscribes and fetches now, then every refreshMs (sooner, with backoff, after a failure). */
  start(): void {
    this.schedule(0);
  }

  /** The service's server connected to us again (a link was lost, events may be missed): subscribe and fetch now. */
  resync(): void {
    if (!this.syncing) this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sync(), ms);
    this.timer.unref();
  }

  private async sync(): Promise<void> {
    this.syncing = true;
    try {
      await this.request('set', xml('subscribe', { node: this.node, jid: this.ctx.domain }));
      const result = await this.request('get', xml('items', { node: this.node }));
      const ids = new Set<string>();
      for (const item of result.getChild('pubsub', NS_PUBSUB)?.getChild('items')?.getChildren('item') ?? []) {
        const id = item.attrs.id?.toLowerCase();
        if (id && HASH.test(id)) ids.add(id);
      }
      const same = ids.size === this.entries.size && [...ids].every((id) => this.entries.has(id));
      if (!same) {
        this.entries.clear();
        for (const id of ids) this.entries.add(id);
        this.save();
      }
      this.ctx.log.info({ service: this.key, entries: this.entries.size }, 'blocklist fetched');
      this.retryMs = FIRST_RETRY_MS;
      this.fetches++;
      this.schedule(this.refreshMs);
      this.changed();
    } catch (err) {
      this.ctx.log.warn({ service: this.key, err: (err as Error).message, retryInSeconds: this.retryMs / 1000 }, 'blocklist: subscribing or fetching failed; trying again');
      this.schedule(this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    } finally {
      this.syncing = false;
    }
  }

  /** An IQ to the service from the host; its result, or throws with the error. */
  private async request(type: 'get' | 'set', child: Element): Promise<Element> {
    const iq = xml('iq', { type, id: `rtbl-${++requests}`, from: this.ctx.domain, to: this.service.toString() }, xml('pubsub', { xmlns: NS_PUBSUB }, child));
    const reply = await this.ctx.server.router.request(iq, REQUEST_TIMEOUT_MS);
    if (!reply) throw new Error(`no answer to <${child.name}/> within ${REQUEST_TIMEOUT_MS / 1000} s`);
    if (reply.attrs.type !== 'result') {
      const condition = reply.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas')?.name;
      throw new Error(`<${child.name}/> refused: ${condition ?? 'error'}`);
    }
    return reply;
  }

  /** A notification from the service (XEP-0060 §7.1.2, §7.2.2, §7.3.2, §8.4): true when it was about this node. */
  event(event: Element): boolean {
    let changed = false;
    for (const items of event.getChildren('items')) {
      if (items.attrs.node !== this.node) continue;
      for (const item of items.getChildren('item')) {
        const id = item.attrs.id?.toLowerCase();
        if (id && HASH.test(id) && !this.entries.has(id)) changed = !!this.entries.add(id);
      }
      for (const retract of items.getChildren('retract')) {
        const id = retract.attrs.id?.toLowerCase();
        if (id && this.entries.delete(id)) changed = true;
      }
    }
    for (const name of ['purge', 'delete']) {
      if (event.getChild(name)?.attrs.node === this.node && this.entries.size > 0) {
        this.entries.clear();
        changed = true;
      }
    }
    if (changed) {
      this.ctx.log.info({ service: this.key, entries: this.entries.size }, 'blocklist updated');
      this.save();
      this.changed();
    }
    return changed;
  }

  /** Writes the entries as they are now (one snapshot; writes are chained in order). */
  private save(): void {
    const snapshot = JSON.stringify([...this.entries]);
    this.saving = this.saving.then(async () => {
      try {
        await this.store.removeArchive(this.ctx.domain, this.key);
        await this.store.append(this.ctx.domain, this.key, { withBare: this.service.toString(), withResource: '', direction: 'in', stanza: snapshot });
      } catch (err) {
        this.ctx.log.warn({ service: this.key, err: (err as Error).message }, 'blocklist: storing the entries failed (they apply until the next restart)');
      }
    });
  }
}

export async function setupRtbl(ctx: ModuleContext<unknown>, options: RtblConfig): Promise<void> {
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of listeners) listener();
  };
  const store = ctx.store.archive('anti_spam_rtbl', { owner: 'service' });
  const lists = options.rtbl.map(({ service, node }) => new Blocklist(ctx, service, node, options.rtbl_refresh * 1000, changed, store));
  await Promise.all(lists.map((list) => list.load()));

  const size = () => lists.reduce((n, list) => n + list.entries.size, 0);
  const listedHash = (hash: string) => lists.some((list) => list.entries.has(hash));
  const api: RtblApi = {
    listed: (jid) => size() > 0 && (listedHash(sha256(jid.bare.toString())) || listedHash(sha256(jid.domain))),
    get size() {
      return size();
    },
    get fetches() {
      return lists.reduce((n, list) => n + list.fetches, 0);
    },
    onUpdate(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
  ctx.provide(RtblKey, api);
  if (lists.length === 0) return;

  // Notifications come to the host's own address.
  ctx.hook(
    'message/host',
    ({ stanza, from }) => {
      const event = stanza.getChild('event', NS_EVENT);
      if (!event) return false;
      let taken = false;
      for (const list of lists) {
        if (!list.service.equals(from)) continue;
        list.event(event);
        taken = true;
      }
      return taken;
    },
    Priority.REPLY,
  );

  // Messages and subscription requests from a listed address, from other servers: dropped.
  ctx.hook(
    'stanza/in',
    (event: RouteEvent) => {
      const { stanza, from } = event;
      if (stanza.name === 'iq' || (stanza.name === 'presence' && stanza.attrs.type !== 'subscribe')) return false;
      if (!api.listed(from)) return false;
      ctx.log.info({ from: from.bare.toString(), stanza: stanza.name }, 'dropped: the sender is on a blocklist');
      return true;
    },
    Priority.GATE,
  );

  // A link from a list's server set up again: what was published meanwhile did not reach us.
  ctx.hook('s2s/linked', ({ remote, direction }) => {
    if (direction !== 'in') return;
    for (const list of lists) if (list.service.domain === remote) list.resync();
  });

  for (const list of lists) list.start();
  ctx.onUnload(() => lists.forEach((list) => list.stop()));
}

// XEP-0198 stream management: acknowledgements both ways, the server asking for acks, and
// resumption of a session whose connection dropped. What the client never acknowledged is
// delivered again on resumption, or re-routed (offline storage, an error to the sender) when the
// session ends for good: never nowhere.
//
// Durability (DESIGN.md): a message in the queue of a kept session is in memory only. So what a
// kept session holds is written to offline storage:
// the queue when the connection drops, and each message that arrives while it is kept, the
// sender's stanza counting as handled only once that is committed. After a crash the account
// gets them at its next login; a resumption takes back from storage what it sends again.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { tryParseJid, type Jid } from '../../src/jid.js';
import { sessionKey } from '../../src/module-api/keys.js';
import { Priority } from '../../src/module-api/priorities.js';
import { defineModule } from '../../src/module-api/define.js';
import type { ClientStream, Session } from '../../src/sessions/session.js';
import { StanzaError, StreamError } from '../../src/stream/errors.js';
import { streamId } from '../../src/stream/xml-stream.js';
import { NS } from '../../src/xml/namespaces.js';
import { SmStateStore } from './store.js';
import { OfflineKey, type KeepResult } from '../offline/service.js';

export const NS_SM = 'urn:xmpp:sm:3';
const STATE = sessionKey<SmState>('sm');
const MOD = 2 ** 32;
/** XEP-0280: a carbon copy is a message with <sent/> or <received/> in this namespace. */
const NS_CARBONS = 'urn:xmpp:carbons:2';

export const SmConfig = z.strictObject({
  /** Seconds a dropped session is kept for resumption. */
  resume_timeout: z.number().int().min(1).default(300),
  /**
   * Unacknowledged stanzas kept per session. Past it a connected session is closed
   * (policy-violation); to a kept one, a message is stored offline or bounced to its sender.
   */
  max_queue: z.number().int().min(10).default(1000),
  /** Ask the client for an ack after this many unacknowledged stanzas. */
  request_ack_every: z.number().int().min(1).default(5),
});

interface Queued {
  stanza: Element;
  /** When it was queued: when the server received it, give or take the routing. */
  at: number;
  /** The sender, when the router knew it parsed. */
  from?: Jid;
  /** Written to the connection (the client may have counted it); false while kept. */
  wire: boolean;
  /** Another resource of the account got it, or a copy of it: never stored from this queue. */
  elsewhere?: boolean;
  /** Its write to offline storage: the item's id once committed, undefined when not stored. */
  stored?: Promise<string | undefined>;
}

interface SmState {
  id?: string;
  /** handledCount when SM was enabled: h counts from there. */
  inBase: number;
  /** Stanzas sent since enable, and how many of them the client acknowledged. */
  sent: number;
  acked: number;
  queue: Queued[];
  requestedAt: number;
  timer?: NodeJS.Timeout;
  /** Offline storage refused a message past the queue's limit as full: the next ones bounce at once. */
  storageFull?: boolean;
}

export default defineModule({
  name: 'sm',
  config: SmConfig,
  setup(ctx) {
    const { resume_timeout, max_queue, request_ack_every } = ctx.config;
    const saved = new SmStateStore(ctx.server.storage);
    const resumable = new Map<string, ClientStream>();
    const stateOf = (s: Session) => s.data.get(STATE);
    const failed = (condition: string, h?: number) =>
      xml('failed', { xmlns: NS_SM, ...(h === undefined ? {} : { h: String(h % MOD) }) }, xml(condition, { xmlns: NS.STANZAS_ERROR }));

    ctx.streamFeature({ stage: 'post-auth', advertise: () => xml('sm', { xmlns: NS_SM }) });

    ctx.nonza(NS_SM, 'enable', async (stream, el) => {
      if (!stream.jid || stateOf(stream)) return stream.sendNonza(failed('unexpected-request'));
      const state: SmState = { inBase: await stream.whenHandled(), sent: 0, acked: 0, queue: [], requestedAt: 0 };
      const attrs: Record<string, string> = { xmlns: NS_SM };
      if (el.attrs.resume === 'true' || el.attrs.resume === '1') {
        state.id = streamId() + streamId();
        resumable.set(state.id, stream);
        Object.assign(attrs, { id: state.id, resume: 'true', max: String(resume_timeout) });
      }
      stream.data.set(STATE, state);
      stream.sendNonza(xml('enabled', attrs));
    });

    ctx.nonza(NS_SM, 'r', async (stream) => {
      const state = stateOf(stream);
      if (!state) return stream.sendNonza(failed('unexpected-request'));
      // h counts only what is handled: delivered to a live session or committed to storage.
      const handled = await stream.whenHandled();
      stream.sendNonza(xml('a', { xmlns: NS_SM, h: String((handled - state.inBase) % MOD) }));
    });

    ctx.nonza(NS_SM, 'a', async (stream, el) => {
      const state = stateOf(stream);
      if (!state) return;
      if (!acknowledge(stream, state, el.attrs.h)) {
        stream.close(new StreamError('undefined-condition', 'acknowledged more stanzas than were sent'));
      }
    });

    /** Applies the client's h; false when it acknowledges stanzas never sent. */
    const acknowledge = (stream: Session, state: SmState, hText: string | undefined): boolean => {
      const h = Number(hText);
      if (!Number.isInteger(h) || h < 0) return false;
      const count = (h - (state.acked % MOD) + MOD) % MOD;
      if (count > state.queue.length) return false;
      release(stream, state.queue.splice(0, count));
      state.acked += count;
      return true;
    };

    const offline = () => ctx.tryUse(OfflineKey);
    const bounce = (stanza: Element, text: string) => ctx.server.router.bounce(stanza, new StanzaError('service-unavailable', text));

    /** Messages the account has elsewhere, or that are copies: never stored or re-routed from a queue. */
    const isCopy = (stanza: Element): boolean =>
      stanza.attrs.type === 'groupchat' || stanza.getChild('sent', NS_CARBONS) !== undefined || stanza.getChild('received', NS_CARBONS) !== undefined;

    /** When the server received a queued stanza: when it was queued, or the stamp of our own delay (it came from storage). */
    const receivedAt = ({ stanza, at }: Queued): number => {
      const delay = stanza.getChildren('delay', NS.DELAY).find((d) => d.attrs.from === ctx.domain);
      const stamp = delay ? Date.parse(delay.attrs.stamp ?? '') : NaN;
      return stamp < at ? stamp : at;
    };

    /** The same message stored once for the account, however many of its kept sessions hold it. */
    const storing = new WeakMap<Element, Promise<KeepResult | undefined>>();
    const store = (session: Session, stanza: Element, from: Jid | undefined, at: number): Promise<KeepResult | undefined> => {
      let write = storing.get(stanza);
      if (!write) {
        const sender = from ?? tryParseJid(stanza.attrs.from ?? '');
        const service = offline();
        write = !service || !sender || !session.jid ? Promise.resolve(undefined) : service.keep(stanza, sender, session.jid, at);
        write = write.catch((err) => {
          session.log.error({ err }, 'storing a message of a kept session failed');
          return undefined;
        });
        storing.set(stanza, write);
      }
      return write;
    };

    /**
     * Writes a queued message of a kept session to offline storage (once); resolves when it is
     * as durable as it gets. One that was never written to the connection and that storage
     * refuses as full is taken out of the queue and bounced: nothing else would make it durable.
     */
    const persist = (session: Session, state: SmState, entry: Queued): Promise<unknown> => {
      if (entry.stored || entry.elsewhere || entry.stanza.name !== 'message' || isCopy(entry.stanza)) return entry.stored ?? Promise.resolve();
      entry.stored = store(session, entry.stanza, entry.from, receivedAt(entry)).then((result) => {
        if (result && 'stored' in result) return result.stored;
        if (result?.notStored === 'full' && !entry.wire && session.hibernating) {
          const i = state.queue.indexOf(entry);
          if (i !== -1) {
            state.queue.splice(i, 1);
            bounce(entry.stanza, 'the recipient is disconnected and its offline message storage is full');
          }
        }
        return undefined;
      });
      return entry.stored;
    };

    /** The entry is no longer stored (its row is taken back, or about to be). */
    const forget = (entry: Queued) => {
      if (!entry.stored) return;
      entry.stored = undefined;
      storing.delete(entry.stanza);
    };

    /** Entries that left the queue (acknowledged, sent again on a resumption): their stored copies go. */
    const release = (session: Session, entries: Queued[]) => {
      const writes = entries.flatMap((e) => (e.stored ? [e.stored] : []));
      for (const e of entries) forget(e);
      const service = offline();
      if (writes.length === 0 || !service || !session.user) return;
      const user = session.user;
      void Promise.all(writes)
        .then((ids) =>
          service.takeBack(
            user,
            ids.filter((id): id is string => id !== undefined),
          ),
        )
        .catch((err) => session.log.error({ err }, 'taking back stored messages failed; they may be delivered twice'));
    };

    /** Messages past the limit of a kept session's queue, on their way to storage (the sender waits on it). */
    const overflowing = new WeakMap<Element, Promise<unknown>>();

    /** A stanza for a kept session whose queue is full: stored offline when it can be, bounced otherwise, never lost silently. */
    const overflow = (session: Session, state: SmState, stanza: Element, from: Jid | undefined) => {
      // Copies (carbons, groupchat) and presence: the account has them elsewhere, or they are state.
      if (stanza.name === 'presence' || (stanza.name === 'message' && isCopy(stanza))) return;
      if (stanza.name === 'iq') return bounce(stanza, 'the recipient is disconnected');
      if (state.storageFull || !offline()) return bounce(stanza, 'the recipient is disconnected and holds too many messages');
      overflowing.set(
        stanza,
        store(session, stanza, from, Date.now()).then((result) => {
          if (result && 'stored' in result) return;
          if (result?.notStored === 'drop') return;
          if (result?.notStored === 'full') state.storageFull = true;
          bounce(stanza, 'the recipient is disconnected and holds too many messages');
        }),
      );
    };

    // Every stanza to the client joins the queue until acknowledged; while the connection is
    // gone it is only queued.
    ctx.hook('stanza/out', ({ session, stanza, from }) => {
      const state = stateOf(session);
      if (!state) return;
      if (session.hibernating && state.queue.length >= max_queue) {
        overflow(session, state, stanza, from);
        return true;
      }
      state.queue.push({ stanza, at: Date.now(), from, wire: !session.hibernating });
      state.sent++;
      if (state.queue.length > max_queue) {
        queueMicrotask(() => session.close(new StreamError('policy-violation', 'too many unacknowledged stanzas')));
        return true;
      }
      if (session.hibernating) return true;
      if (state.sent - state.requestedAt >= request_ack_every) {
        state.requestedAt = state.sent;
        queueMicrotask(() => session.sendNonza(xml('r', { xmlns: NS_SM })));
      }
    });

    // A message reached its local recipients (and carbons made their copies): what went into a
    // kept session's queue is stored, and the sender's stanza counts as handled once it is.
    ctx.hook(
      'message/delivered',
      async ({ stanza, sessions, copiedTo }) => {
        const writes: Promise<unknown>[] = [];
        for (const session of sessions) {
          const state = stateOf(session);
          if (!state) continue;
          const pending = overflowing.get(stanza);
          if (pending) writes.push(pending);
          const entry = findQueued(state, stanza);
          if (!entry) continue;
          const live = (s: Session) => s !== session && !s.hibernating && !s.closed;
          if (sessions.some(live) || copiedTo.some(live)) entry.elsewhere = true;
          if (session.hibernating) writes.push(persist(session, state, entry));
        }
        await Promise.all(writes);
      },
      Priority.SETTLE,
    );

    ctx.hook('session/describe', ({ session, info }) => {
      const state = stateOf(session);
      if (state) info.sm = state.id ? 'resumable' : 'on';
    });

    // The connection dropped: keep a resumable session for resume_timeout seconds, and store
    // what it holds.
    ctx.hook('session/interrupted', ({ session }) => {
      const state = stateOf(session);
      if (!state?.id) return;
      state.timer = setTimeout(() => {
        ctx.log.info({ jid: session.jid?.toString() }, 'resumption time ran out');
        session.end();
      }, resume_timeout * 1000);
      state.timer.unref();
      for (const entry of state.queue) void persist(session, state, entry);
      return true;
    });

    // The session ended for good: what the client did not acknowledge goes elsewhere.
    ctx.hook('session/closed', async ({ session }) => {
      const state = stateOf(session);
      if (!state) return;
      clearTimeout(state.timer);
      if (state.id) resumable.delete(state.id);
      const unacked = state.queue.splice(0);
      const stored = await Promise.all(unacked.map((e) => e.stored ?? Promise.resolve(undefined)));
      for (const [i, entry] of unacked.entries()) if (stored[i] === undefined) await reroute(session, entry);
      // What is stored goes to a session of the account that takes offline messages, if any.
      if (session.user && stored.some((id) => id !== undefined)) await offline()?.handOver(session.user);
    });

    /**
     * An undelivered stanza of a session that ended: a message to offline storage, with the
     * time the server received it, or an error to its sender. Nothing goes to whatever session
     * has the address now (a new one of the same resource): carbons, groupchat and messages the
     * account has elsewhere are dropped (delivered twice otherwise), IQ replies were for the
     * old session, IQ requests are answered with an error.
     */
    const reroute = async (session: Session, entry: Queued) => {
      const { stanza } = entry;
      if (stanza.name === 'presence' || (stanza.name === 'iq' && stanza.attrs.type !== 'get' && stanza.attrs.type !== 'set')) return;
      if (stanza.name === 'iq') return bounce(stanza, 'the recipient is gone');
      if (entry.elsewhere || isCopy(stanza)) return;
      const service = offline();
      if (!service) {
        if (!stanza.getChild('delay', NS.DELAY)) stanza.append(xml('delay', { xmlns: NS.DELAY, from: ctx.domain, stamp: new Date(entry.at).toISOString() }));
        // The session is unregistered now, so its full JID leads to the bare JID's rules.
        return ctx.server.router.route(stanza);
      }
      const result = await store(session, stanza, entry.from, receivedAt(entry));
      if (!result || ('notStored' in result && result.notStored !== 'drop')) bounce(stanza, 'the recipient is gone and the message could not be stored');
    };

    ctx.nonza(NS_SM, 'resume', async (fresh, el) => {
      const previd = el.attrs.previd ?? '';
      if (!fresh.user || fresh.jid) return fresh.sendNonza(failed('unexpected-request'));
      const old = resumable.get(previd);
      if (!old || !old.user?.equals(fresh.user)) {
        // Gone (or from before a restart): tell the client at least how much we handled.
        const h = await saved.take(fresh.user, previd);
        return fresh.sendNonza(failed('item-not-found', h?.h));
      }
      const state = stateOf(old)!;
      if (!acknowledge(old, state, el.attrs.h)) {
        return fresh.close(new StreamError('undefined-condition', 'acknowledged more stanzas than were sent'));
      }
      clearTimeout(state.timer);
      // Take back from storage what is sent again. What another resource of the account got
      // from there meanwhile (and this client never saw) is not sent again.
      const user = old.user;
      const service = offline();
      const entries = [...state.queue];
      const ids = await Promise.all(entries.map((e) => e.stored ?? Promise.resolve(undefined)));
      const storedAs = new Map<Queued, string>();
      entries.forEach((e, i) => ids[i] !== undefined && storedAs.set(e, ids[i]!));
      const kept = service && storedAs.size > 0 ? await service.takeBack(user, [...storedAs.values()]) : new Set<string>();
      // The session may have ended meanwhile (its resource bound anew).
      if (resumable.get(previd) !== old) return fresh.sendNonza(failed('item-not-found'));
      state.queue = state.queue.filter((e) => {
        const id = storedAs.get(e);
        if (id === undefined) return true;
        forget(e);
        return kept.has(id) || e.wire;
      });
      state.storageFull = false;
      old.resumeOn(fresh);
      const handled = await old.whenHandled();
      old.sendNonza(xml('resumed', { xmlns: NS_SM, previd, h: String((handled - state.inBase) % MOD) }));
      // Everything not acknowledged goes again, in order; it stays queued until acked. What
      // was stored while the rows were being taken back is taken back too.
      release(old, state.queue);
      for (const entry of state.queue) {
        entry.wire = true;
        old.retransmit(entry.stanza);
      }
      if (state.queue.length) old.sendNonza(xml('r', { xmlns: NS_SM }));
      // Messages stored past the queue's limit.
      await service?.handOver(user);
    });

    // Stopping: save h of each resumable session (a client resuming after the restart learns
    // what arrived), and end the kept ones so their queues are re-routed while storage is up.
    ctx.hook('server/stopping', async () => {
      for (const [id, session] of resumable) {
        const state = stateOf(session)!;
        await saved.save(session.user!, id, (session.handledCount - state.inBase) % MOD, resume_timeout);
        if (session.hibernating) {
          session.end(new StreamError('system-shutdown'));
          await session.finished;
        }
      }
    });
  },
});

/** The queue entry of a stanza just delivered: at the end, unless more came since. */
function findQueued(state: SmState, stanza: Element): Queued | undefined {
  for (let i = state.queue.length - 1; i >= 0; i--) if (state.queue[i]!.stanza === stanza) return state.queue[i];
  return undefined;
}

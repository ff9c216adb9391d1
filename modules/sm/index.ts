// XEP-0198 stream management: acknowledgements both ways, the server asking for acks, and
// resumption of a session whose connection dropped. What the client never acknowledged is
// delivered again on resumption, or re-routed (other resources, offline storage, an error to
// the sender) when the session ends for good: never nowhere.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { sessionKey } from '../../src/module-api/keys.js';
import { defineModule } from '../../src/module-api/define.js';
import type { ClientStream, Session } from '../../src/sessions/session.js';
import { StreamError } from '../../src/stream/errors.js';
import { streamId } from '../../src/stream/xml-stream.js';
import { NS } from '../../src/xml/namespaces.js';
import { SmStateStore } from './store.js';

export const NS_SM = 'urn:xmpp:sm:3';
const STATE = sessionKey<SmState>('sm');
const MOD = 2 ** 32;

export const SmConfig = z.strictObject({
  /** Seconds a dropped session is kept for resumption. */
  resume_timeout: z.number().int().min(1).default(300),
  /** Unacknowledged stanzas kept per session; past it the session is closed (policy-violation). */
  max_queue: z.number().int().min(10).default(1000),
  /** Ask the client for an ack after this many unacknowledged stanzas. */
  request_ack_every: z.number().int().min(1).default(5),
});

interface Queued {
  stanza: Element;
  at: number;
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
}

export default defineModule({
  name: 'sm',
  config: SmConfig,
  setup(ctx) {
    const { resume_timeout, max_queue, request_ack_every } = ctx.config;
    const store = new SmStateStore(ctx.server.storage);
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
      state.queue.splice(0, count);
      state.acked += count;
      return true;
    };

    // Every stanza to the client joins the queue until acknowledged; while the connection is
    // gone it is only queued.
    ctx.hook('stanza/out', ({ session, stanza }) => {
      const state = stateOf(session);
      if (!state) return;
      state.queue.push({ stanza, at: Date.now() });
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

    ctx.hook('session/describe', ({ session, info }) => {
      const state = stateOf(session);
      if (state) info.sm = state.id ? 'resumable' : 'on';
    });

    // The connection dropped: keep a resumable session for resume_timeout seconds.
    ctx.hook('session/interrupted', ({ session }) => {
      const state = stateOf(session);
      if (!state?.id) return;
      state.timer = setTimeout(() => {
        ctx.log.info({ jid: session.jid?.toString() }, 'resumption time ran out');
        session.end();
      }, resume_timeout * 1000);
      state.timer.unref();
      return true;
    });

    // The session ended for good: what the client did not acknowledge goes elsewhere.
    ctx.hook('session/closed', async ({ session }) => {
      const state = stateOf(session);
      if (!state) return;
      clearTimeout(state.timer);
      if (state.id) resumable.delete(state.id);
      const unacked = state.queue.splice(0);
      for (const { stanza, at } of unacked) await reroute(stanza, at);
    });

    /** Re-routes an undelivered stanza to the account (other resources, offline storage) or bounces it. */
    const reroute = async (stanza: Element, at: number) => {
      if (stanza.name === 'presence') return;
      if (stanza.name === 'message' && !stanza.getChild('delay', NS.DELAY)) {
        stanza.append(xml('delay', { xmlns: NS.DELAY, from: ctx.domain, stamp: new Date(at).toISOString() }));
      }
      // The session is unregistered now, so its full JID leads to the bare JID's rules.
      await ctx.server.router.route(stanza);
    };

    ctx.nonza(NS_SM, 'resume', async (fresh, el) => {
      const previd = el.attrs.previd ?? '';
      if (!fresh.user || fresh.jid) return fresh.sendNonza(failed('unexpected-request'));
      const old = resumable.get(previd);
      if (!old || !old.user?.equals(fresh.user)) {
        // Gone (or from before a restart): tell the client at least how much we handled.
        const saved = await store.take(fresh.user, previd);
        return fresh.sendNonza(failed('item-not-found', saved?.h));
      }
      const state = stateOf(old)!;
      if (!acknowledge(old, state, el.attrs.h)) {
        return fresh.close(new StreamError('undefined-condition', 'acknowledged more stanzas than were sent'));
      }
      clearTimeout(state.timer);
      old.resumeOn(fresh);
      const handled = await old.whenHandled();
      old.sendNonza(xml('resumed', { xmlns: NS_SM, previd, h: String((handled - state.inBase) % MOD) }));
      // Everything not acknowledged goes again, in order; it stays queued until acked.
      for (const { stanza } of state.queue) old.retransmit(stanza);
      if (state.queue.length) old.sendNonza(xml('r', { xmlns: NS_SM }));
    });

    // Stopping: save h of each resumable session (a client resuming after the restart learns
    // what arrived), and end the kept ones so their queues are re-routed while storage is up.
    ctx.hook('server/stopping', async () => {
      for (const [id, session] of resumable) {
        const state = stateOf(session)!;
        await store.save(session.user!, id, (session.handledCount - state.inBase) % MOD, resume_timeout);
        if (session.hibernating) {
          session.end(new StreamError('system-shutdown'));
          await session.finished;
        }
      }
    });
  },
});

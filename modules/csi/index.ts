// XEP-0352 Client State Indication (urn:xmpp:csi:0): a client says <inactive/> when nobody
// looks at it (a phone in a pocket) and <active/> when someone does again. While it is
// inactive, stanzas that can wait (presence updates, chat states, receipts: importance.ts)
// are held in a per-session buffer, in order, and all go out together, before the stanza
// that released them, when an urgent one comes, when the client is active again or when the
// buffer is full. Nothing is dropped or reordered; presence updates from the same full JID
// replace each other while held, only the latest matters.
//
// Stream management (XEP-0198) sees a held stanza only when it is written: the 'stanza/out'
// hook here runs before stream management's (higher priority), and a flush hands the held
// stanzas to session.deliver() again, so they are counted and queued for acknowledgement at
// the moment they really go out.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { sessionKey } from '../../src/module-api/keys.js';
import { defineModule } from '../../src/module-api/define.js';
import { Priority } from '../../src/module-api/priorities.js';
import type { ClientStream, Session } from '../../src/sessions/session.js';
import { StreamError } from '../../src/stream/errors.js';
import { NS } from '../../src/xml/namespaces.js';
import { importance } from './importance.js';
import { Bind2Key } from '../sasl/service.js';

export const NS_CSI = 'urn:xmpp:csi:0';
const STATE = sessionKey<CsiState>('csi');

export const CsiConfig = z.strictObject({
  /** Stanzas held per inactive session; one more and everything held goes out. */
  max_buffer: z.number().int().min(1).default(100),
  /**
   * More message payloads that reach an inactive client at once: "{namespace}element", or
   * "{namespace}" (or the bare namespace) for anything in it.
   */
  important_payloads: z.array(z.string().min(1)).default([]),
});

interface Held {
  stanza: Element;
  at: number;
}

interface CsiState {
  inactive: boolean;
  held: Held[];
  /** Set while held stanzas are handed to deliver() again: they pass. */
  flushing: boolean;
}

export default defineModule({
  name: 'csi',
  config: CsiConfig,
  setup(ctx) {
    const { max_buffer } = ctx.config;
    const isUrgent = importance(ctx.config.important_payloads);
    const stateOf = (s: Session) => s.data.get(STATE);

    const setState = (stream: Session, inactive: boolean) => {
      let state = stateOf(stream);
      if (!state) {
        if (!inactive) return; // streams begin active (§4.2)
        stream.data.set(STATE, (state = { inactive, held: [], flushing: false }));
      }
      state.inactive = inactive;
      if (!inactive) flush(stream, state);
    };

    /** Writes everything held, in order, through the outgoing hooks (stream management counts it now). */
    const flush = (session: Session, state: CsiState) => {
      if (state.held.length === 0) return;
      const held = state.held.splice(0);
      state.flushing = true;
      try {
        for (const { stanza } of held) session.deliver(stanza);
      } finally {
        state.flushing = false;
      }
    };

    // §4.1: offered after authentication.
    ctx.streamFeature({ stage: 'post-auth', advertise: () => xml('csi', { xmlns: NS_CSI }) });

    // §4.2. No answer to either. The handler runs before the stanzas that follow the nonza are
    // routed, and a flush is synchronous: what <active/> releases goes out before the answers
    // to what the client sends after it (§5.1, in-order processing).
    const indicate = (inactive: boolean) => (stream: ClientStream) => {
      if (!stream.user) throw new StreamError('not-authorized', 'authenticate first');
      setState(stream, inactive);
    };
    ctx.nonza(NS_CSI, 'inactive', indicate(true));
    ctx.nonza(NS_CSI, 'active', indicate(false));

    // XEP-0386: <inactive xmlns='urn:xmpp:csi:0'/> (or <active/>) inside a Bind 2 request.
    const bind2 = ctx.tryUse(Bind2Key);
    if (bind2) {
      ctx.onUnload(
        bind2.add({
          var: NS_CSI,
          enable(stream, request) {
            if (request.name === 'inactive' || request.name === 'active') setState(stream, request.name === 'inactive');
            return undefined;
          },
        }),
      );
    }

    ctx.hook('session/describe', ({ session, info }) => {
      if (stateOf(session)?.inactive) info.csi = 'inactive';
    });

    ctx.hook(
      'stanza/out',
      ({ session, stanza }) => {
        const state = stateOf(session);
        if (!state?.inactive || state.flushing) return;
        // A connection that is gone (kept for resumption) is stream management's business.
        if (session.hibernating) return;
        if (isUrgent(stanza)) {
          // What was held goes first; then this one, through the rest of the chain.
          flush(session, state);
          return;
        }
        if (stanza.name === 'presence' && stanza.attrs.from !== undefined) {
          // A newer availability of the same full JID replaces the one held (and takes its
          // place at the end: the relative order of what remains is kept).
          const from = stanza.attrs.from;
          const i = state.held.findIndex((h) => h.stanza.name === 'presence' && h.stanza.attrs.from === from);
          if (i !== -1) state.held.splice(i, 1);
        }
        if (state.held.length >= max_buffer) {
          flush(session, state);
          return;
        }
        state.held.push({ stanza, at: Date.now() });
        return true;
      },
      Priority.HOLD,
    );

    // The connection dropped and stream management keeps the session: what is held joins its
    // queue now (delivered on resumption, re-routed if the session ends), and the state is
    // active again, as XEP-0352 §5.2 has it after a resumption. Runs before stream management's
    // hook, which stops the chain when it keeps the session. Only registered along with stream
    // management: without it, any hook here would make the core treat every dropped
    // connection as a possible resumption.
    if (ctx.host.options.modules_enabled.includes('sm')) {
      ctx.hook(
        'session/interrupted',
        ({ session }) => {
          const state = stateOf(session);
          if (!state) return;
          state.inactive = false;
          flush(session, state);
        },
        Priority.HOLD,
      );
    }

    // The session ended with stanzas held: they never reached the client. Messages go where
    // stream management sends what a client never acknowledged (after its own re-routing, which
    // comes first in time): the session is unregistered now, so its full JID leads to the
    // account's other resources or to offline storage, with the time they arrived. Presence is
    // stale for a gone session and dropped, as are groupchat and headline messages, which
    // RFC 6121 §8.5.3.2.1 never redirects.
    ctx.hook(
      'session/closed',
      async ({ session }) => {
        const state = stateOf(session);
        if (!state) return;
        state.inactive = false;
        const held = state.held.splice(0);
        for (const { stanza, at } of held) {
          if (stanza.name !== 'message') continue;
          const type = stanza.attrs.type ?? 'normal';
          if (type !== 'chat' && type !== 'normal') continue;
          if (!stanza.getChild('delay', NS.DELAY)) {
            stanza.append(xml('delay', { xmlns: NS.DELAY, from: ctx.domain, stamp: new Date(at).toISOString() }));
          }
          await ctx.server.router.route(stanza);
        }
      },
      Priority.FALLBACK,
    );
  },
});

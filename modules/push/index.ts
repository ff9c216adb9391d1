// XEP-0357 push notifications, the user's server side: a client enables (or disables)
// notifications to its App Server's XMPP Push Service (a JID and a pubsub node, with optional
// publish options); when a message worth waking the device arrives while the client cannot
// take it, the server publishes a notification there, and the App Server wakes the device
// through its platform's push service.
//
// When a notification goes out:
// - a session kept by stream management after its connection dropped (XEP-0198, hibernating)
//   gets a message: the registrations that session enabled are notified. The 'stanza/out'
//   hook runs above stream management's (which queues the stanza) and never takes a stanza;
// - a message for an account with no session to take it ('message/offline'): every
//   registration of the account is notified. The hook runs above offline storage's (which
//   stops the chain once stored) and never stops it; when the message came from a local client
//   the notification waits until that client's stanza is handled (stored), so the device never
//   wakes up before the message is there to fetch.
//
// The publish goes from the user's bare JID (XEP-0357 §7's example; App Servers grant the
// 'publish-only' affiliation to it, §3.2) through the router, and its reply decides the
// registration's fate (§7.1): errors of type cancel or auth disable it, other failures (and
// no reply) disable it after `max_failures` in a row. A Push Service that removes the user's
// affiliation and says so (§8) disables it too.
//
// Privacy (§10): the summary carries the message count only, unless include_sender /
// include_body allow more. Bodies are never logged.
import { randomBytes } from 'node:crypto';
import type { Element } from '@xmpp/xml';
import { z } from 'zod';
import { sessionKey } from '../../src/module-api/keys.js';
import { JidError, parseJid, tryParseJid, type Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import { Priority } from '../../src/module-api/priorities.js';
import type { ClientStream, Session } from '../../src/sessions/session.js';
import { StanzaError } from '../../src/stream/errors.js';
import { cloneElement } from '../../src/xml/clone.js';
import { parseElement } from '../../src/xml/parse.js';
import {
  FORM_PUBLISH_OPTIONS,
  NS_DATA,
  NS_PUBSUB,
  NS_PUSH,
  bodyOf,
  formType,
  hasNoStoreHint,
  messageWorthPushing,
  outcomeOf,
  publishRequest,
  type Summary,
} from './notification.js';
import { PushStore, pushMigrations, type Registration } from './store.js';

export { NS_PUSH };

export const PushConfig = z.strictObject({
  /** Put the message body in notifications (last-message-body). Off: it goes through third parties. */
  include_body: z.boolean().default(false),
  /** Put the sender's JID in notifications (last-message-sender). Off for the same reason. */
  include_sender: z.boolean().default(false),
  /** Seconds between two notifications to one registration; those in between are skipped. 0: no limit. */
  min_interval: z.number().min(0).default(0),
  /** Failed publishes in a row (no reply, or an error that may pass) after which a registration is disabled. */
  max_failures: z.number().int().min(1).default(5),
  /** Seconds to wait for the App Server's reply to a publish before counting it as failed. */
  reply_timeout: z.number().min(1).default(30),
  /** Registrations one account may have; one more gets <not-allowed/>. */
  max_registrations: z.number().int().min(1).default(10),
});

/** session.data key: the registrations this session enabled, and the messages notified since its connection dropped. */
const STATE = sessionKey<SessionState>('push');
/** Longest node name and largest publish-options form accepted. */
const MAX_NODE = 1023;
const MAX_FORM_BYTES = 16 * 1024;

interface SessionState {
  /** Registrations enabled on this session, by key. */
  regs: Map<string, { service: string; node: string }>;
  /** Messages notified since the connection dropped. */
  count: number;
}

export default defineModule({
  name: 'push',
  config: PushConfig,
  migrations: pushMigrations,
  async setup(ctx) {
    const store = new PushStore(ctx.store.map('push'));
    const { router, sessions } = ctx.server;
    const cfg = ctx.config;
    ctx.accountFeature(NS_PUSH);

    let stopped = false;
    ctx.onUnload(() => void (stopped = true));

    const regKey = (user: Jid, service: string, node: string) => `${user.toString()}\u0000${service}\u0000${node}`;
    /** Publishes in a row that failed, per registration. */
    const failures = new Map<string, number>();
    /** When the last notification went to a registration (only kept with min_interval). */
    const lastSent = new Map<string, number>();
    /** Messages notified while the account had no session, since its last bind. */
    const offlineCounts = new Map<string, number>();
    /**
     * The registrations each message was published to already: a message queued for a
     * hibernating session and then re-routed to offline storage when the session ends does
     * not wake the same device twice.
     */
    const notified = new WeakMap<Element, Set<string>>();
    const firstTime = (stanza: Element, key: string): boolean => {
      let keys = notified.get(stanza);
      if (!keys) notified.set(stanza, (keys = new Set()));
      if (keys.has(key)) return false;
      keys.add(key);
      return true;
    };

    const stateOf = (session: Session, create = false): SessionState | undefined => {
      let state = session.data.get(STATE);
      if (!state && create) session.data.set(STATE, (state = { regs: new Map(), count: 0 }));
      return state;
    };

    /** Forgets registrations (all of a service when node is undefined) in memory. */
    const forget = (user: Jid, service: string, node?: string) => {
      const matches = (key: string) => {
        const [, s, n] = key.split('\u0000');
        return s === service && (node === undefined || n === node);
      };
      for (const session of sessions.resourcesOf(user)) {
        const state = stateOf(session);
        if (state) for (const key of state.regs.keys()) if (matches(key)) state.regs.delete(key);
      }
      const prefix = `${user.toString()}\u0000`;
      for (const map of [failures, lastSent]) for (const key of map.keys()) if (key.startsWith(prefix) && matches(key)) map.delete(key);
    };

    const serviceOf = (payload: Element): string => {
      const jid = payload.attrs.jid;
      if (!jid) throw new StanzaError('bad-request', "the 'jid' of the push service is missing");
      try {
        return parseJid(jid).toString();
      } catch (err) {
        if (err instanceof JidError) throw new StanzaError('jid-malformed', `bad push service 'jid': ${err.message}`);
        throw err;
      }
    };

    // XEP-0357 §5: enabling, with the publish options the App Server needs (§5, example 9).
    ctx.iq.set(
      NS_PUSH,
      'enable',
      async (iq) => {
        const user = iq.to.bare;
        const service = serviceOf(iq.payload);
        const node = iq.payload.attrs.node ?? '';
        if (node.length > MAX_NODE) throw new StanzaError('not-acceptable', `a node name of at most ${MAX_NODE} characters`);
        const forms = iq.payload.getChildren('x', NS_DATA);
        if (forms.length > 1) throw new StanzaError('bad-request', 'at most one publish-options form');
        let form: string | undefined;
        if (forms.length === 1) {
          if (formType(forms[0]!) !== FORM_PUBLISH_OPTIONS) throw new StanzaError('bad-request', `the form's FORM_TYPE must be ${FORM_PUBLISH_OPTIONS}`);
          const copy = cloneElement(forms[0]!);
          // Sent as XEP-0060 publish options: a submitted form.
          copy.attrs = { xmlns: NS_DATA, type: 'submit' };
          form = copy.toString();
          if (Buffer.byteLength(form) > MAX_FORM_BYTES) throw new StanzaError('not-acceptable', `publish options of at most ${MAX_FORM_BYTES} bytes`);
        }
        const result = await store.enable(user.domain, user.local, { service, node, form }, cfg.max_registrations);
        if (result === 'full') throw new StanzaError('not-allowed', `an account may enable at most ${cfg.max_registrations} push registrations`);
        const key = regKey(user, service, node);
        // A fresh start for a registration enabled again.
        failures.delete(key);
        lastSent.delete(key);
        if (iq.session) stateOf(iq.session, true)!.regs.set(key, { service, node });
        ctx.log.debug({ user: user.toString(), service, result }, 'push notifications enabled');
        return iq.reply();
      },
      { to: 'self' },
    );

    // XEP-0357 §6: disabling one node of a service, or all of them.
    ctx.iq.set(
      NS_PUSH,
      'disable',
      async (iq) => {
        const user = iq.to.bare;
        const service = serviceOf(iq.payload);
        const node = iq.payload.attrs.node;
        const removed = await store.disable(user.domain, user.local, service, node);
        forget(user, service, node);
        ctx.log.debug({ user: user.toString(), service, removed }, 'push notifications disabled');
        return iq.reply();
      },
      { to: 'self' },
    );

    const summaryFor = (message: Element, count: number): Summary => {
      const summary: Summary = { messageCount: count };
      if (cfg.include_sender && message.attrs.from) summary.sender = message.attrs.from;
      if (cfg.include_body) {
        const body = bodyOf(message);
        if (body !== undefined) summary.body = body;
      }
      return summary;
    };

    /** What a reply (or its absence) does to the registration. */
    const settle = async (user: Jid, reg: Registration, reply: Element | undefined) => {
      const key = regKey(user, reg.service, reg.node);
      const outcome = outcomeOf(reply);
      if (outcome === 'ok') {
        failures.delete(key);
        return;
      }
      if (outcome === 'transient') {
        const n = (failures.get(key) ?? 0) + 1;
        if (n < cfg.max_failures) {
          failures.set(key, n);
          ctx.log.info({ user: user.toString(), service: reg.service, failures: n, answered: reply !== undefined }, 'push notification failed');
          return;
        }
      }
      failures.delete(key);
      await store.disable(user.domain, user.local, reg.service, reg.node);
      forget(user, reg.service, reg.node);
      ctx.log.info({ user: user.toString(), service: reg.service, outcome }, 'push registration disabled after failed notifications');
    };

    /** Publishes one notification and handles the reply; never throws. */
    const publish = async (user: Jid, reg: Registration, summary: Summary): Promise<void> => {
      try {
        const key = regKey(user, reg.service, reg.node);
        if (cfg.min_interval > 0) {
          const now = Date.now();
          const last = lastSent.get(key);
          if (last !== undefined && now - last < cfg.min_interval * 1000) return;
          lastSent.set(key, now);
        }
        const iq = publishRequest({
          id: `push-${randomBytes(9).toString('base64url')}`,
          from: user.toString(),
          to: reg.service,
          node: reg.node,
          summary,
          publishOptions: reg.form === undefined ? undefined : parseElement(reg.form),
        });
        const reply = await router.request(iq, cfg.reply_timeout * 1000);
        // A reply (or timeout) after the module stopped: storage may be closed; nothing to decide.
        if (!stopped) await settle(user, reg, reply);
      } catch (err) {
        ctx.log.error({ err, user: user.toString(), service: reg.service }, 'publishing a push notification failed');
      }
    };

    // (a) A hibernating session (XEP-0198: connection gone, session kept) gets a message: wake
    // the device through the registrations that session enabled. Synchronous, takes nothing.
    ctx.hook(
      'stanza/out',
      ({ session, stanza }) => {
        if (stanza.name !== 'message' || !session.hibernating) return;
        const state = stateOf(session);
        const user = session.user;
        if (!state || state.regs.size === 0 || !user) return;
        const message = messageWorthPushing(stanza);
        if (!message) return;
        const due = [...state.regs.entries()].filter(([key]) => firstTime(stanza, key));
        if (due.length === 0) return;
        state.count++;
        const summary = summaryFor(message, state.count);
        for (const [key, { service, node }] of due) {
          void store.get(user.domain, user.local, service, node).then(
            (reg) => (reg ? publish(user, reg, summary) : void state.regs.delete(key)),
            (err: unknown) => ctx.log.error({ err }, 'reading push registrations failed'),
          );
        }
      },
      Priority.NOTIFY,
    );

    // Each time a connection drops, the count starts again. Only with stream management, which
    // keeps such sessions: a 'session/interrupted' hook makes the core wait for the chain
    // before ending a session, and without a keeper that wait would serve nothing.
    if (ctx.host.options.modules_enabled.includes('sm')) {
      ctx.hook(
        'session/interrupted',
        ({ session }) => {
          const state = stateOf(session);
          if (state) state.count = 0;
        },
        Priority.NOTIFY,
      );
    }

    // (b) A message for an account with no session to take it (offline storage stores it
    // after this hook): every registration of the account. Never stops the chain.
    ctx.hook(
      'message/offline',
      ({ stanza, to, origin }) => {
        // Not kept anywhere (XEP-0334): there would be nothing to fetch.
        if (hasNoStoreHint(stanza)) return;
        const message = messageWorthPushing(stanza);
        if (!message) return;
        const user = to.bare;
        void (async () => {
          const regs = (await store.list(user.domain, user.local)).filter((reg) => firstTime(stanza, regKey(user, reg.service, reg.node)));
          if (regs.length === 0) return;
          const account = user.toString();
          const count = (offlineCounts.get(account) ?? 0) + 1;
          offlineCounts.set(account, count);
          const summary = summaryFor(message, count);
          // Once the sender's stanza is handled (stored), so the device finds it when it connects.
          if (origin) await origin.whenHandled();
          await Promise.all(regs.map((reg) => publish(user, reg, summary)));
        })().catch((err: unknown) => ctx.log.error({ err }, 'push notification for an offline message failed'));
      },
      Priority.NOTIFY,
    );

    // A client of the account is back: the next offline notification counts from one again.
    ctx.hook('session/bound', ({ session }) => {
      if (session.user) offlineCounts.delete(session.user.toString());
    });

    // XEP-0357 §8: the Push Service removed the user's affiliation and says so.
    ctx.hook(
      'message/bare',
      async ({ stanza, from, to }) => {
        const pubsub = stanza.getChild('pubsub', NS_PUBSUB);
        const node = pubsub?.attrs.node;
        const affiliation = pubsub?.getChild('affiliation');
        if (node === undefined || affiliation?.attrs.affiliation !== 'none') return;
        const user = to.bare;
        if (affiliation.attrs.jid !== undefined && !tryParseJid(affiliation.attrs.jid)?.bare.equals(user)) return;
        for (const service of new Set([from.toString(), from.bare.toString()])) {
          if (!(await store.get(user.domain, user.local, service, node))) continue;
          await store.disable(user.domain, user.local, service, node);
          forget(user, service, node);
          ctx.log.info({ user: user.toString(), service }, 'push registration disabled by the push service');
          return true;
        }
      },
      Priority.NOTIFY,
    );

    ctx.hook('account/deleted', ({ jid }) => {
      const account = jid.bare.toString();
      offlineCounts.delete(account);
      const prefix = `${account}\u0000`;
      for (const map of [failures, lastSent]) for (const key of map.keys()) if (key.startsWith(prefix)) map.delete(key);
    });
  },
});

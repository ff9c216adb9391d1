// XEP-0115 Entity Capabilities: the server's own caps in its stream features, and a cache of
// what clients announce. When a client's presence carries a <c/> whose hash the server has not
// seen, the server asks that client (disco#info to its full JID, node#ver), checks the answer
// against the hash (§5.4) and keeps it, in memory, for every client that announces the same
// hash (learner.ts). The same for remote contacts whose presence reaches a local account
// (remote.ts). Other modules read the result through the 'caps' service (PEP: who wants +notify).
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import { sessionKey } from '../../src/module-api/keys.js';
import { tryParseJid, type Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import type { Session } from '../../src/sessions/session.js';
import { NS } from '../../src/xml/namespaces.js';
import { Priority } from '../../src/module-api/priorities.js';
import { DiscoKey } from '../disco/service.js';
import { CapsLearner, type Announcement, type Announcer } from './learner.js';
import { RemoteCaps, type RemoteFeaturesListener } from './remote.js';
import { CapsKey, type CapsService } from './service.js';
import { capsVer } from './verification.js';

export const NS_CAPS = 'http://jabber.org/protocol/caps';
/** The caps 'node' of this software (XEP-0115 §4: a URI that names the application). */
export const CAPS_NODE = 'https://starling.example/';
/** The hash the server's own ver is computed with (XEP-0115 §12: SHA-1 is mandatory to implement). */
const SERVER_HASH = 'sha-1';

/** How long the server waits for an entity's disco#info answer. */
const QUERY_TIMEOUT_MS = 10_000;

const DATA = sessionKey<Announcement>('caps');

/** The announcement a presence carries; undefined without a <c/> (capabilities unchanged, §8.4). */
function announcementOf(presence: Element): Announcement | undefined {
  const c = presence.getChild('c', NS_CAPS);
  const { node, ver, hash } = c?.attrs ?? {};
  return c && node && ver ? { node, ver, hash } : undefined;
}

export default defineModule({
  name: 'caps',
  depends: ['disco'],
  setup(ctx) {
    const disco = ctx.use(DiscoKey);
    const listeners = new Set<(session: Session, features: ReadonlySet<string>) => void>();
    const remoteListeners = new Set<RemoteFeaturesListener>();

    // --- the server's own caps -------------------------------------------------------------

    ctx.feature(NS_CAPS);
    // Computed from the disco#info as answered now, so every module's features count, whatever
    // the load order (cheap: a sort and a SHA-1 over a few dozen strings).
    const serverVer = () => capsVer(disco.hostInfo(), SERVER_HASH);
    ctx.onUnload(disco.addHostInfoNode((node) => node === `${CAPS_NODE}#${serverVer()}`));
    const advertise = () => xml('c', { xmlns: NS_CAPS, hash: SERVER_HASH, node: CAPS_NODE, ver: serverVer() });
    ctx.streamFeature({ stage: 'pre-auth', advertise });
    ctx.streamFeature({ stage: 'post-auth', advertise });

    // --- clients' caps ---------------------------------------------------------------------

    const stateOf = (session: Session) => session.data.get(DATA);
    const fire = <A extends unknown[]>(listeners: Set<(...args: A) => void>, ...args: A) => {
      for (const listener of listeners) {
        try {
          listener(...args);
        } catch (err) {
          ctx.log.error({ err }, 'caps listener failed');
        }
      }
    };

    /** Sends disco#info for `node` to `jid` from the host; resolves with the answer's <query/>. */
    const query = async (jid: Jid, node: string): Promise<Element | undefined> => {
      const id = `caps-${randomBytes(8).toString('base64url')}`;
      const request = xml('iq', { type: 'get', id, from: ctx.domain, to: jid.toString() }, xml('query', { xmlns: NS.DISCO_INFO, node }));
      const answer = await ctx.server.router.request(request, QUERY_TIMEOUT_MS);
      return answer?.attrs.type === 'result' ? answer.getChild('query', NS.DISCO_INFO) : undefined;
    };
    const learner = new CapsLearner(query, ctx.log);

    const sessionAnnouncer = (session: Session): Announcer => ({
      jid: session.jid!,
      current: () => (session.closed ? undefined : stateOf(session)),
      learnt: (announcement, entry) => {
        if (stateOf(session) !== announcement || session.closed) return;
        announcement.entry = entry;
        fire(listeners, session, entry.features);
      },
    });

    const onPresence = (session: Session, stanza: Element) => {
      if (!session.jid) return;
      if (stanza.attrs.type === 'unavailable') return void session.data.delete(DATA);
      const next = announcementOf(stanza);
      const previous = stateOf(session);
      if (!next || (previous && previous.node === next.node && previous.ver === next.ver && previous.hash === next.hash)) return;
      session.data.set(DATA, next);
      learner.resolve(sessionAnnouncer(session));
    };

    ctx.hook('presence/broadcast', ({ session, stanza }) => onPresence(session, stanza));

    // --- remote contacts' caps (remote.ts) -------------------------------------------------

    const remote = new RemoteCaps(learner, announcementOf, (...args) => fire(remoteListeners, ...args));
    const isRemote = (jid: Jid) => !ctx.server.hosts.has(jid.domain);
    for (const event of ['presence/bare', 'presence/full'] as const) {
      ctx.hook(
        event,
        ({ stanza, from, to }) => {
          if (isRemote(from)) remote.onPresence(from, to.bare, stanza);
        },
        Priority.STAMP,
      );
    }

    const parse = (jid: Jid | string) => (typeof jid === 'string' ? tryParseJid(jid) : jid);

    const service: CapsService = {
      node: CAPS_NODE,
      serverVer,
      featuresOf: (fullJid) => {
        const jid = parse(fullJid);
        if (!jid) return undefined;
        if (isRemote(jid)) return remote.featuresOf(jid);
        const session = ctx.server.sessions.get(jid);
        return session ? stateOf(session)?.entry?.features : undefined;
      },
      remoteResources: (bare) => remote.resourcesOf(bare),
      hasFeature: (fullJid, feature) => service.featuresOf(fullJid)?.has(feature) ?? false,
      onFeatures(listener) {
        listeners.add(listener);
        return () => void listeners.delete(listener);
      },
      onRemoteFeatures(listener) {
        remoteListeners.add(listener);
        return () => void remoteListeners.delete(listener);
      },
    };
    ctx.provide(CapsKey, service);
  },
});

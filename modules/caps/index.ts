// XEP-0115 Entity Capabilities: the server's own caps in its stream features, and a cache of
// what clients announce. When a client's presence carries a <c/> whose hash the server has not
// seen, the server asks that client (disco#info to its full JID, node#ver), checks the answer
// against the hash (§5.4) and keeps it, in memory, for every client that announces the same
// hash. Other modules read the result through the 'caps' service (PEP: who wants +notify).
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import { sessionKey } from '../../src/module-api/keys.js';
import { tryParseJid, type Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import type { Session } from '../../src/sessions/session.js';
import { NS } from '../../src/xml/namespaces.js';
import { DiscoKey, type DiscoInfo } from '../disco/service.js';
import { CapsKey, type CapsService } from './service.js';
import { capsVer, readDiscoInfo, supportedHash } from './verification.js';

export const NS_CAPS = 'http://jabber.org/protocol/caps';
/** The caps 'node' of this software (XEP-0115 §4: a URI that names the application). */
export const CAPS_NODE = 'https://starling.example/';
/** The hash the server's own ver is computed with (XEP-0115 §12: SHA-1 is mandatory to implement). */
const SERVER_HASH = 'sha-1';

/** Distinct (hash, ver) pairs kept; clients come in few versions, so this is plenty. */
const CACHE_SIZE = 1000;
/** How long the server waits for a client's disco#info answer. */
const QUERY_TIMEOUT_MS = 10_000;
/** XEP-0115 §11: ask no more than five entities about one ver. */
const MAX_TRIES = 5;

/** What the server learnt about one (hash, ver). */
interface CapsEntry {
  features: ReadonlySet<string>;
  info: DiscoInfo;
}

/** Per session (session.data 'caps'): the last <c/> it announced, and what it stands for once known. */
interface SessionCaps {
  node: string;
  ver: string;
  hash: string | undefined;
  entry?: CapsEntry;
}

/** A bounded map that forgets the least recently used entry first. */
class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly size: number) {}

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.size) this.map.delete(this.map.keys().next().value as K);
  }
}

const DATA = sessionKey<SessionCaps>('caps');

export default defineModule({
  name: 'caps',
  depends: ['disco'],
  setup(ctx) {
    const disco = ctx.use(DiscoKey);
    const cache = new Lru<string, CapsEntry>(CACHE_SIZE);
    /** Lookups under way, by cache key, with the sessions waiting on them. */
    const inflight = new Map<string, Set<Session>>();
    const listeners = new Set<(session: Session, features: ReadonlySet<string>) => void>();

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

    const assign = (session: Session, state: SessionCaps, entry: CapsEntry) => {
      if (stateOf(session) !== state || session.closed) return;
      state.entry = entry;
      for (const listener of listeners) {
        try {
          listener(session, entry.features);
        } catch (err) {
          ctx.log.error({ err }, 'caps listener failed');
        }
      }
    };

    /** Sends disco#info for `node` to the session's full JID; resolves with the answer's <query/>. */
    const query = async (session: Session, node: string): Promise<Element | undefined> => {
      const id = `caps-${randomBytes(8).toString('base64url')}`;
      const request = xml('iq', { type: 'get', id, from: ctx.domain, to: session.jid!.toString() }, xml('query', { xmlns: NS.DISCO_INFO, node }));
      const answer = await ctx.server.router.request(request, QUERY_TIMEOUT_MS);
      return answer?.attrs.type === 'result' ? answer.getChild('query', NS.DISCO_INFO) : undefined;
    };

    const entryOf = (info: DiscoInfo): CapsEntry => ({ info, features: new Set(info.features) });

    /**
     * XEP-0115 §5.4: ask the announcing clients one after the other (up to five) until an answer
     * matches the hash; that answer is cached for all. A client whose answer does not match
     * still gets its own answer, for itself only.
     */
    const learn = async (key: string, hash: string, node: string, ver: string, first: Session) => {
      const waiting = new Set<Session>([first]);
      inflight.set(key, waiting);
      try {
        for (let tries = 0; tries < MAX_TRIES; tries++) {
          const next = [...waiting].find((s) => !s.closed && stateOf(s)?.ver === ver && stateOf(s)?.hash === hash);
          if (!next) return;
          waiting.delete(next);
          const state = stateOf(next)!;
          const answer = await query(next, `${node}#${ver}`);
          if (!answer) continue;
          const { info, wellFormed } = readDiscoInfo(answer);
          if (wellFormed && capsVer(info, hash) === ver) {
            const entry = entryOf(info);
            cache.set(key, entry);
            assign(next, state, entry);
            for (const s of waiting) {
              const st = stateOf(s);
              if (st && st.hash === hash && st.ver === ver) assign(s, st, entry);
            }
            return;
          }
          ctx.log.debug({ jid: next.jid?.toString(), node, ver }, 'caps answer does not match its hash; not cached');
          assign(next, state, entryOf(info));
        }
      } finally {
        inflight.delete(key);
      }
    };

    const onPresence = (session: Session, stanza: Element) => {
      if (!session.jid) return;
      if (stanza.attrs.type === 'unavailable') return void session.data.delete(DATA);
      const c = stanza.getChild('c', NS_CAPS);
      const { node, ver, hash } = c?.attrs ?? {};
      // No <c/>: the client's capabilities did not change (servers may strip repeats, §8.4).
      if (!c || !node || !ver) return;
      const previous = stateOf(session);
      if (previous && previous.node === node && previous.ver === ver && previous.hash === hash) return;
      const state: SessionCaps = { node, ver, hash };
      session.data.set(DATA, state);
      // Without 'hash' it is the legacy format (before XEP-0115 1.4): not a hash of anything.
      if (hash === undefined) return;
      if (!supportedHash(hash)) {
        // §5.4 step 2: ask, but keep the answer for this client only.
        void query(session, `${node}#${ver}`).then((answer) => {
          if (answer) assign(session, state, entryOf(readDiscoInfo(answer).info));
        });
        return;
      }
      const key = `${hash} ${ver}`;
      const cached = cache.get(key);
      if (cached) return assign(session, state, cached);
      const waiting = inflight.get(key);
      if (waiting) return void waiting.add(session);
      learn(key, hash, node, ver, session).catch((err: unknown) => ctx.log.error({ err }, 'learning caps failed'));
    };

    ctx.hook('presence/broadcast', ({ session, stanza }) => onPresence(session, stanza));

    const sessionOf = (fullJid: Jid | string) => {
      const jid = typeof fullJid === 'string' ? tryParseJid(fullJid) : fullJid;
      return jid ? ctx.server.sessions.get(jid) : undefined;
    };

    const service: CapsService = {
      node: CAPS_NODE,
      serverVer,
      featuresOf: (fullJid) => {
        const session = sessionOf(fullJid);
        return session ? stateOf(session)?.entry?.features : undefined;
      },
      hasFeature: (fullJid, feature) => service.featuresOf(fullJid)?.has(feature) ?? false,
      onFeatures(listener) {
        listeners.add(listener);
        return () => void listeners.delete(listener);
      },
    };
    ctx.provide(CapsKey, service);
  },
});

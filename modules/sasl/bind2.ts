// Bind 2 (XEP-0386, urn:xmpp:bind:0): resource binding inside the SASL2 <authenticate/>.
// The resource is the client's <tag/> and a server-generated part, "tag/generated" as the XEP
// recommends; <bound/> goes into <success/>, whose authorization-identifier is then the full JID.
//
// Session features that a client may enable in the same request (carbons, stream management,
// CSI) register through the Bind2Key service (service.ts).
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import type { ModuleContext } from '../../src/module-api/define.js';
import { sessionKey } from '../../src/module-api/keys.js';
import type { ClientStream } from '../../src/sessions/session.js';
import type { Bind2Feature, Bind2Registry } from './service.js';
import { StanzaError, StreamError } from '../../src/stream/errors.js';
import { NS } from '../../src/xml/namespaces.js';
import { USER_AGENT, type Sasl2Extensions, type Sasl2Request, type UserAgent } from './sasl2.js';

/** stream.data key set on streams bound through Bind 2 (before 'session/bound' fires). */
export const BIND2 = sessionKey<Bind2State>('bind2');

export interface Bind2State {
  tag: string | undefined;
}

export class Bind2Features implements Bind2Registry {
  private readonly byVar = new Map<string, Bind2Feature>();

  /** Adds a feature; returns the function that removes it (hand it to ctx.onUnload). */
  add(feature: Bind2Feature): () => void {
    if (this.byVar.has(feature.var)) throw new Error(`Bind 2 feature ${feature.var} exists already`);
    this.byVar.set(feature.var, feature);
    return () => void this.byVar.delete(feature.var);
  }

  get(ns: string): Bind2Feature | undefined {
    return this.byVar.get(ns);
  }

  get vars(): string[] {
    return [...this.byVar.keys()];
  }
}

/** Longest client tag kept in a resource; the XEP wants a short name of the software. */
const MAX_TAG_LENGTH = 64;

export function registerBind2(ctx: ModuleContext<unknown>, extensions: Sasl2Extensions, features: Bind2Features): void {
  const remove = extensions.add({
    name: 'bind2',
    order: 100,
    inline: () => xml('bind', { xmlns: NS.BIND2 }, xml('inline', {}, ...features.vars.map((v) => xml('feature', { var: v })))),
    succeeded: async (stream, request) => {
      const bind = request.element.getChild('bind', NS.BIND2);
      if (!bind) return undefined;
      const jid = await bindResource(stream, bind);
      if (!jid) return undefined; // authenticated, not bound: the features offer RFC 6120 binding
      closeEarlierSessions(ctx, stream, jid, request);
      const results: Element[] = [];
      for (const child of bind.getChildElements()) {
        const ns = child.getNS() ?? '';
        if (ns === NS.BIND2) continue; // <tag/>
        const feature = features.get(ns);
        if (!feature) {
          ctx.log.debug({ ns, element: child.name }, 'Bind 2 request for a feature not offered; ignored');
          continue;
        }
        const result = await feature.enable(stream, child);
        if (result) results.push(result);
      }
      return xml('bound', { xmlns: NS.BIND2 }, ...results);
    },
  });
  ctx.onUnload(remove);

  async function bindResource(stream: ClientStream, bind: Element): Promise<Jid | undefined> {
    const tag = cleanTag(bind.getChildText('tag', NS.BIND2));
    // The client may have gone while authentication finished: a closed stream must not be
    // registered as a session (nothing would ever remove it).
    if (stream.closed) return undefined;
    stream.data.set(BIND2, { tag } satisfies Bind2State);
    try {
      try {
        return await stream.bind(tag ? `${tag}/${generatedPart()}` : undefined);
      } catch (err) {
        // A tag that is not an acceptable resourcepart: bind without it.
        if (!(err instanceof StanzaError) || err.condition !== 'bad-request' || !tag) throw err;
        return await stream.bind(undefined);
      }
    } catch (err) {
      if (!(err instanceof StanzaError)) throw err;
      stream.data.delete(BIND2);
      ctx.log.info({ condition: err.condition, reason: err.message }, 'Bind 2 request refused');
      return undefined;
    }
  }
}

/** XEP-0386 §3.2.1: the server SHOULD end earlier sessions of the same client (same user-agent id). */
function closeEarlierSessions(ctx: ModuleContext<unknown>, stream: ClientStream, jid: Jid, request: Sasl2Request): void {
  const id = request.userAgent?.id;
  if (!id) return;
  for (const session of ctx.server.sessions.resourcesOf(jid.bare)) {
    if (session === stream) continue;
    if (session.data.get(USER_AGENT)?.id !== id) continue;
    session.close(new StreamError('conflict', 'replaced by a new session of the same client'));
  }
}

/** The tag as sent (XEP-0386 §3.2.1: "as-is"), trimmed and cut to a sane length. */
function cleanTag(tag: string | null): string | undefined {
  const cleaned = [...(tag?.trim() ?? '')].slice(0, MAX_TAG_LENGTH).join('').trim();
  return cleaned || undefined;
}

function generatedPart(): string {
  return randomBytes(6).toString('base64url');
}

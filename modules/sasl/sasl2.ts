// The Extensible SASL Profile (XEP-0388, urn:xmpp:sasl:2): <authentication/> with <inline/>
// features, <authenticate/>, <challenge/>, <response/>, <success/>, <failure/>, <abort/>, and
// no stream restart: <success/> is followed at once by the post-authentication features.
//
// Inline features (Bind 2, FAST, later stream resumption) plug in as Sasl2Extensions: each may
// advertise an element in <inline/>, supply the mechanism of a request (FAST's HT-*), and act
// once authentication has succeeded, adding elements to <success/>.
import { xml, type Element } from '@xmpp/xml';
import { sessionKey } from '../../src/module-api/keys.js';
import type { Jid } from '../../src/jid.js';
import type { ModuleContext } from '../../src/module-api/define.js';
import type { ClientStream } from '../../src/sessions/session.js';
import { StreamError } from '../../src/stream/errors.js';
import { NS } from '../../src/xml/namespaces.js';
import type { AuthAttempts } from './attempts.js';
import { unlessDisabled } from './disabled.js';
import { SaslFailure, type MechanismFactory, type SaslFailureCondition, type SaslStep, type ServerMechanism } from './mechanism.js';
import { SASL1_STATE } from './sasl1.js';
import { decode } from './sasl1.js';

/** stream.data key of an exchange in progress. */
const STATE = sessionKey<Exchange>('sasl2');
/** stream.data key of the RFC 6120 exchange of sasl1.ts (to refuse mixing the two). */
/** stream.data key, after success: the client's <user-agent/> (a UserAgent), for other modules. */
export const USER_AGENT = sessionKey<UserAgent>('sasl2.user-agent');

/** The SASL2 <user-agent/> of a request. */
export interface UserAgent {
  /** A stable identifier of the client installation (XEP-0388 §2.3). */
  id?: string;
  software?: string;
  device?: string;
}

/** An <authenticate/> being processed. */
export interface Sasl2Request {
  readonly element: Element;
  readonly mechanism: string;
  readonly userAgent: UserAgent | undefined;
  /** Scratch space shared by an extension's mechanism and its success step. */
  readonly state: Map<string, unknown>;
}

export interface Sasl2Extension {
  readonly name: string;
  /** Extensions act on success in ascending order (resumption before binding, say). */
  readonly order: number;
  /** The element to put in <inline/> for this stream, if any. */
  inline?(stream: ClientStream): Element | undefined;
  /**
   * The mechanism for this request, when the extension owns its name (FAST's HT-*); undefined
   * otherwise. Throws SaslFailure to refuse the request.
   */
  mechanism?(stream: ClientStream, request: Sasl2Request): ServerMechanism | undefined;
  /**
   * Runs after a successful authentication (the stream is authenticated already) and before
   * <success/> is sent; returns what goes into <success/>.
   */
  succeeded?(stream: ClientStream, request: Sasl2Request): Promise<Element | undefined> | Element | undefined;
}

/** The inline features of SASL2; provided to other modules as the 'sasl2.extensions' service. */
export class Sasl2Extensions {
  private list: Sasl2Extension[] = [];

  /** Adds an extension; returns the function that removes it (hand it to ctx.onUnload). */
  add(extension: Sasl2Extension): () => void {
    if (this.list.some((e) => e.name === extension.name)) throw new Error(`SASL2 extension "${extension.name}" exists already`);
    this.list = [...this.list, extension].sort((a, b) => a.order - b.order);
    return () => {
      this.list = this.list.filter((e) => e !== extension);
    };
  }

  get all(): readonly Sasl2Extension[] {
    return this.list;
  }
}

interface Exchange {
  request: Sasl2Request;
  mechanism: ServerMechanism;
}

export function registerSasl2(ctx: ModuleContext<unknown>, mechanisms: readonly MechanismFactory[], attempts: AuthAttempts, extensions: Sasl2Extensions): void {
  // XEP-0388 §6: SASL2 only after TLS; and never without a mechanism.
  ctx.streamFeature({
    stage: 'pre-auth',
    advertise: (stream) => {
      if (!stream.secure) return undefined;
      const offered = mechanisms.filter((m) => m.available(stream));
      if (offered.length === 0) return undefined;
      const inline = extensions.all.map((e) => e.inline?.(stream)).filter((el): el is Element => el !== undefined);
      return xml('authentication', { xmlns: NS.SASL2 }, ...offered.map((m) => xml('mechanism', {}, m.name)), inline.length ? xml('inline', {}, ...inline) : null);
    },
  });

  const fail = async (stream: ClientStream, mechanism: string, condition: SaslFailureCondition, text?: string, user?: string) => {
    stream.data.delete(STATE);
    // Only a checked credential counts against the address (and waits): protocol refusals such
    // as an unsupported channel binding are answered at once, so clients can fall back.
    if (user !== undefined) await attempts.failed(stream, mechanism, condition, user);
    stream.sendNonza(xml('failure', { xmlns: NS.SASL2 }, xml(condition, { xmlns: NS.SASL }), text ? xml('text', { 'xml:lang': 'en' }, text) : null));
  };

  const succeed = async (stream: ClientStream, request: Sasl2Request, user: Jid, additionalData: Buffer | undefined) => {
    stream.data.delete(STATE);
    attempts.succeeded(request.mechanism);
    stream.authenticated(user, request.mechanism, { restart: false });
    if (request.userAgent) stream.data.set(USER_AGENT, request.userAgent);
    const results: Element[] = [];
    for (const extension of extensions.all) {
      const el = await extension.succeeded?.(stream, request);
      if (el) results.push(el);
    }
    if (stream.closed) return;
    stream.sendNonza(
      xml(
        'success',
        { xmlns: NS.SASL2 },
        additionalData ? xml('additional-data', {}, base64(additionalData)) : null,
        // A bare JID, or the full JID when a resource was bound inline (Bind 2).
        xml('authorization-identifier', {}, (stream.jid ?? user).toString()),
        ...results,
      ),
    );
    stream.sendFeatures();
  };

  const answer = async (stream: ClientStream, exchange: Exchange, run: () => Promise<SaslStep>) => {
    const name = exchange.request.mechanism;
    let step: SaslStep;
    try {
      step = await unlessDisabled(ctx.server.accounts, ctx.log, await run());
    } catch (err) {
      if (!(err instanceof SaslFailure)) throw err;
      return fail(stream, name, err.condition, err.message);
    }
    if (stream.data.get(STATE) !== exchange) return; // aborted meanwhile
    if (step.kind === 'challenge') {
      stream.sendNonza(xml('challenge', { xmlns: NS.SASL2 }, base64(step.data)));
    } else if (step.kind === 'failure') {
      await fail(stream, name, step.condition, step.text, step.user);
    } else {
      await succeed(stream, exchange.request, step.user, step.additionalData);
    }
  };

  ctx.nonza(NS.SASL2, 'authenticate', async (stream, el) => {
    const name = el.attrs.mechanism ?? '';
    // XEP-0388 §3.8: after success, a further <authenticate/> is a stream error; and nothing
    // but <response/> or <abort/> may come while an exchange is in progress.
    if (stream.user) throw new StreamError('policy-violation', 'the stream is authenticated already');
    if (stream.data.has(STATE) || stream.data.has(SASL1_STATE)) throw new StreamError('policy-violation', 'an authentication is in progress');
    if (!(await attempts.admit(stream))) return;
    if (!stream.secure) return fail(stream, name, 'encryption-required', 'negotiate TLS first');
    if (el.attrs.upgrade !== undefined) return fail(stream, name, 'invalid-mechanism', `upgrade ${el.attrs.upgrade} is not offered`);

    let userAgent: UserAgent | undefined;
    const ua = el.getChild('user-agent', NS.SASL2);
    if (ua) {
      userAgent = {};
      const id = ua.attrs.id?.trim();
      if (id) userAgent.id = id;
      const software = ua.getChildText('software')?.trim().slice(0, 200);
      if (software) userAgent.software = software;
      const device = ua.getChildText('device')?.trim().slice(0, 200);
      if (device) userAgent.device = device;
    }
    const request: Sasl2Request = { element: el, mechanism: name, userAgent, state: new Map() };

    let mechanism: ServerMechanism | undefined;
    try {
      for (const extension of extensions.all) {
        mechanism = extension.mechanism?.(stream, request);
        if (mechanism) break;
      }
    } catch (err) {
      if (!(err instanceof SaslFailure)) throw err;
      return fail(stream, name, err.condition, err.message);
    }
    if (!mechanism) {
      const factory = mechanisms.find((m) => m.name === name);
      if (!factory || !factory.available(stream)) return fail(stream, name, 'invalid-mechanism', `mechanism ${name} is not offered`);
      mechanism = factory.create(stream);
    }

    // No <initial-response/> is no initial response; an empty one is an empty response.
    let initial: Buffer | null = null;
    const response = el.getChild('initial-response', NS.SASL2);
    if (response) {
      try {
        initial = decode(response) ?? Buffer.alloc(0);
      } catch {
        return fail(stream, name, 'incorrect-encoding');
      }
    }
    const exchange: Exchange = { request, mechanism };
    stream.data.set(STATE, exchange);
    await answer(stream, exchange, () => exchange.mechanism.start(initial));
  });

  ctx.nonza(NS.SASL2, 'response', async (stream, el) => {
    const exchange = stream.data.get(STATE);
    if (!exchange) {
      if (stream.user) throw new StreamError('policy-violation', 'the stream is authenticated already');
      return fail(stream, '', 'malformed-request', 'no authentication in progress');
    }
    let data: Buffer;
    try {
      data = decode(el) ?? Buffer.alloc(0);
    } catch {
      return fail(stream, exchange.request.mechanism, 'incorrect-encoding');
    }
    await answer(stream, exchange, () => exchange.mechanism.next(data));
  });

  ctx.nonza(NS.SASL2, 'abort', async (stream) => {
    if (stream.user) throw new StreamError('policy-violation', 'the stream is authenticated already');
    const exchange = stream.data.get(STATE);
    await fail(stream, exchange?.request.mechanism ?? '', 'aborted');
  });
}

/** SASL2 data is plain base64; unlike RFC 6120 there is no '=' for empty data (an empty element is). */
function base64(data: Buffer): string {
  return data.toString('base64');
}

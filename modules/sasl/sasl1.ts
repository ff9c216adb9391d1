// The SASL profile of RFC 6120 §6: <mechanisms/>, <auth/>, <challenge/>, <response/>,
// <success/>, <failure/>, <abort/>, with a stream restart after success.
import { xml, type Element } from '@xmpp/xml';
import { sessionKey } from '../../src/module-api/keys.js';
import type { ModuleContext } from '../../src/module-api/define.js';
import type { ClientStream } from '../../src/sessions/session.js';
import { NS } from '../../src/xml/namespaces.js';
import type { AuthAttempts } from './attempts.js';
import { unlessDisabled } from './disabled.js';
import { SaslFailure, type MechanismFactory, type SaslFailureCondition, type SaslStep, type ServerMechanism } from './mechanism.js';

/** The SASL exchange in progress on a stream. */
export const SASL1_STATE = sessionKey<Exchange>('sasl');
const STATE = SASL1_STATE;

interface Exchange {
  name: string;
  mechanism: ServerMechanism;
}

export function registerSasl1(ctx: ModuleContext<unknown>, mechanisms: readonly MechanismFactory[], attempts: AuthAttempts): void {
  ctx.streamFeature({
    stage: 'pre-auth',
    advertise: (stream) => {
      const offered = mechanisms.filter((m) => m.available(stream));
      if (offered.length === 0) return undefined;
      return xml('mechanisms', { xmlns: NS.SASL }, ...offered.map((m) => xml('mechanism', {}, m.name)));
    },
  });

  const fail = async (stream: ClientStream, mechanism: string, condition: SaslFailureCondition, text?: string, user?: string) => {
    stream.data.delete(STATE);
    // Only a checked credential counts against the address (and waits): protocol refusals such
    // as an unsupported channel binding are answered at once, so clients can fall back.
    if (user !== undefined) await attempts.failed(stream, mechanism, condition, user);
    stream.sendNonza(xml('failure', { xmlns: NS.SASL }, xml(condition), text ? xml('text', { 'xml:lang': 'en' }, text) : null));
  };

  const answer = async (stream: ClientStream, name: string, run: () => Promise<SaslStep>) => {
    let step: SaslStep;
    try {
      step = await unlessDisabled(ctx.server.accounts, ctx.log, await run());
    } catch (err) {
      if (!(err instanceof SaslFailure)) throw err;
      return fail(stream, name, err.condition, err.message);
    }
    if (step.kind === 'challenge') {
      stream.sendNonza(xml('challenge', { xmlns: NS.SASL }, encode(step.data)));
    } else if (step.kind === 'failure') {
      await fail(stream, name, step.condition, step.text, step.user);
    } else {
      stream.data.delete(STATE);
      attempts.succeeded(name);
      stream.sendNonza(xml('success', { xmlns: NS.SASL }, step.additionalData ? encode(step.additionalData) : null));
      stream.authenticated(step.user, name, { restart: true });
    }
  };

  ctx.nonza(NS.SASL, 'auth', async (stream, el) => {
    const name = el.attrs.mechanism ?? '';
    if (stream.user) return fail(stream, name, 'aborted', 'already authenticated');
    if (!(await attempts.admit(stream))) return;
    const factory = mechanisms.find((m) => m.name === name);
    const plainRefused = name === 'PLAIN' && !(factory?.available(stream) ?? false);
    if (!stream.secure && (ctx.server.config.c2s.require_encryption || plainRefused)) {
      return fail(stream, name, 'encryption-required', 'negotiate TLS first');
    }
    if (!factory || !factory.available(stream)) return fail(stream, name, 'invalid-mechanism', `mechanism ${name} is not offered`);
    let initial: Buffer | null;
    try {
      initial = decode(el);
    } catch {
      return fail(stream, name, 'incorrect-encoding');
    }
    const mechanism = factory.create(stream);
    stream.data.set(STATE, { name, mechanism } satisfies Exchange);
    await answer(stream, name, () => mechanism.start(initial));
  });

  ctx.nonza(NS.SASL, 'response', async (stream, el) => {
    const exchange = stream.data.get(STATE);
    if (!exchange) return fail(stream, '', 'malformed-request', 'no authentication in progress');
    let data: Buffer;
    try {
      data = decode(el) ?? Buffer.alloc(0);
    } catch {
      return fail(stream, exchange.name, 'incorrect-encoding');
    }
    await answer(stream, exchange.name, () => exchange.mechanism.next(data));
  });

  ctx.nonza(NS.SASL, 'abort', async (stream) => {
    await fail(stream, '', 'aborted');
  });
}

/** Base64 text of an element; '=' is an empty response, no text is no response. */
export function decode(el: Element): Buffer | null {
  const text = el.getText().trim();
  if (text === '') return null;
  if (text === '=') return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Error('not base64');
  return Buffer.from(text, 'base64');
}

export function encode(data: Buffer): string {
  return data.length === 0 ? '=' : data.toString('base64');
}

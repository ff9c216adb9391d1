// Stream and stanza errors with the condition names of RFC 6120 §4.9.3 and §8.3.3.
import { xml, type Element } from '@xmpp/xml';
import { NS } from '../xml/namespaces.js';

export type StreamErrorCondition =
  | 'bad-format'
  | 'bad-namespace-prefix'
  | 'conflict'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'invalid-xml'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'reset'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'see-other-host'
  | 'system-shutdown'
  | 'undefined-condition'
  | 'unsupported-encoding'
  | 'unsupported-feature'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

export class StreamError extends Error {
  constructor(
    readonly condition: StreamErrorCondition,
    readonly text?: string,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StreamError';
  }

  toElement(): Element {
    return xml('stream:error', {}, xml(this.condition, { xmlns: NS.STREAMS_ERROR }), this.text ? xml('text', { xmlns: NS.STREAMS_ERROR, 'xml:lang': 'en' }, this.text) : null);
  }
}

export type StanzaErrorCondition =
  | 'bad-request'
  | 'conflict'
  | 'feature-not-implemented'
  | 'forbidden'
  | 'gone'
  | 'internal-server-error'
  | 'item-not-found'
  | 'jid-malformed'
  | 'not-acceptable'
  | 'not-allowed'
  | 'not-authorized'
  | 'payment-required'
  | 'policy-violation'
  | 'recipient-unavailable'
  | 'redirect'
  | 'registration-required'
  | 'remote-server-not-found'
  | 'remote-server-timeout'
  | 'resource-constraint'
  | 'service-unavailable'
  | 'subscription-required'
  | 'undefined-condition'
  | 'unexpected-request';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** The error type RFC 6120 §8.3.3 pairs with each condition. */
const DEFAULT_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'payment-required': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
};

export class StanzaError extends Error {
  readonly type: StanzaErrorType;
  constructor(
    readonly condition: StanzaErrorCondition,
    readonly text?: string,
    type?: StanzaErrorType,
    /** Application-specific condition element, if any. */
    readonly appCondition?: Element,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StanzaError';
    this.type = type ?? DEFAULT_TYPE[condition];
  }

  toElement(by?: string): Element {
    return xml(
      'error',
      by ? { type: this.type, by } : { type: this.type },
      xml(this.condition, { xmlns: NS.STANZAS_ERROR }),
      this.text ? xml('text', { xmlns: NS.STANZAS_ERROR, 'xml:lang': 'en' }, this.text) : null,
      this.appCondition ?? null,
    );
  }
}

/**
 * The error reply to a stanza (RFC 6120 §8.3.1): to and from swapped, type="error", the
 * original payload kept only for messages and presence where it is small.
 */
export function errorReply(stanza: Element, error: StanzaError): Element {
  const attrs: Record<string, string> = { type: 'error' };
  if (stanza.attrs.from) attrs.to = stanza.attrs.from;
  if (stanza.attrs.to) attrs.from = stanza.attrs.to;
  if (stanza.attrs.id) attrs.id = stanza.attrs.id;
  const reply = xml(stanza.name, attrs);
  if (stanza.name === 'iq') {
    const payload = stanza.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'error');
    if (payload) reply.append(xml(payload.name, { xmlns: payload.attrs.xmlns }));
  }
  reply.append(error.toElement());
  return reply;
}

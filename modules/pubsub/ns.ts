// PubSub (XEP-0060) namespaces, and its errors: an RFC 6120 condition with a pubsub-specific one.
import { xml } from '@xmpp/xml';
import { StanzaError, type StanzaErrorCondition } from '../../src/stream/errors.js';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_OWNER = `${NS_PUBSUB}#owner`;
export const NS_EVENT = `${NS_PUBSUB}#event`;
export const NS_ERRORS = `${NS_PUBSUB}#errors`;
export const NODE_CONFIG = `${NS_PUBSUB}#node_config`;
export const PUBLISH_OPTIONS = `${NS_PUBSUB}#publish-options`;

/** A StanzaError with XEP-0060's application condition (`<precondition-not-met/>`, ...). */
export function pubsubError(condition: StanzaErrorCondition, pubsubCondition: string | undefined, text?: string, feature?: string): StanzaError {
  const app = pubsubCondition === undefined ? undefined : xml(pubsubCondition, feature ? { xmlns: NS_ERRORS, feature } : { xmlns: NS_ERRORS });
  return new StanzaError(condition, text, undefined, app);
}

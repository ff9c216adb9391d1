// XEP-0357 notifications: which messages are worth waking a device for, the publish request
// that carries the summary, and what an App Server's error reply means for the registration.
import { xml, type Element } from '@xmpp/xml';
import { NS } from '../../src/xml/namespaces.js';

export const NS_PUSH = 'urn:xmpp:push:0';
export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_DATA = 'jabber:x:data';
export const FORM_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
export const FORM_SUMMARY = 'urn:xmpp:push:summary';
const NS_HINTS = 'urn:xmpp:hints';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';

/**
 * Payloads that stand for a message body the server cannot read, or a call: OMEMO (XEP-0384,
 * the legacy and the current namespace), OpenPGP for XMPP (XEP-0373), legacy OpenPGP
 * (XEP-0027), and Jingle Message Initiation proposals (XEP-0353: an incoming call).
 */
const WAKING_NAMESPACES = new Set(['eu.siacs.conversations.axolotl', 'urn:xmpp:omemo:2', 'urn:xmpp:openpgp:0', 'jabber:x:encrypted', 'urn:xmpp:jingle-message:0']);

/**
 * The message a push notification is about, or undefined when the stanza is not worth one:
 * a message of type chat, normal or groupchat with a body or one of the payloads above.
 * Standalone chat states, receipts, markers, headlines and errors do not wake a device; a
 * Message Carbons copy of a message received by another resource (XEP-0280) is judged by the
 * message it carries; a copy of one the user sent is not worth a notification.
 */
export function messageWorthPushing(stanza: Element): Element | undefined {
  if (stanza.name !== 'message') return undefined;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error' || type === 'headline') return undefined;
  const received = stanza.getChild('received', NS_CARBONS);
  if (received) {
    const inner = received.getChild('forwarded', NS_FORWARD)?.getChild('message');
    return inner && messageWorthPushing(inner);
  }
  for (const child of stanza.children) {
    if (typeof child === 'string') continue;
    const ns = child.attrs.xmlns;
    if (child.name === 'body' && (ns === undefined || ns === NS.CLIENT || ns === NS.SERVER) && child.getText().trim() !== '') return stanza;
    if (ns !== undefined && WAKING_NAMESPACES.has(ns)) return stanza;
  }
  return undefined;
}

/** XEP-0334 <no-store/>: the message is kept nowhere, so there is nothing to come back for. */
export function hasNoStoreHint(stanza: Element): boolean {
  return stanza.getChild('no-store', NS_HINTS) !== undefined;
}

export interface Summary {
  messageCount: number;
  /** Included only when the configuration allows it (privacy: it goes through third parties). */
  sender?: string;
  body?: string;
}

/** The body text of a message: the one without xml:lang if any, else the first. */
export function bodyOf(message: Element): string | undefined {
  const bodies = message.getChildren('body').filter((b) => b.attrs.xmlns === undefined || b.attrs.xmlns === NS.CLIENT || b.attrs.xmlns === NS.SERVER);
  const chosen = bodies.find((b) => b.attrs['xml:lang'] === undefined) ?? bodies[0];
  return chosen?.getText();
}

const field = (name: string, value: string) => xml('field', { var: name }, xml('value', {}, value));

/**
 * The publish request of XEP-0357 §7: the notification item with its urn:xmpp:push:summary
 * form, and the publish options the client gave when enabling, if any.
 */
export function publishRequest(opts: { id: string; from: string; to: string; node: string; summary: Summary; publishOptions?: Element }): Element {
  const { summary } = opts;
  const form = xml('x', { xmlns: NS_DATA, type: 'submit' }, field('FORM_TYPE', FORM_SUMMARY), field('message-count', String(summary.messageCount)));
  if (summary.sender !== undefined) form.append(field('last-message-sender', summary.sender));
  if (summary.body !== undefined) form.append(field('last-message-body', summary.body));
  const publish = xml('publish', opts.node === '' ? {} : { node: opts.node }, xml('item', {}, xml('notification', { xmlns: NS_PUSH }, form)));
  const pubsub = xml('pubsub', { xmlns: NS_PUBSUB }, publish);
  if (opts.publishOptions) pubsub.append(xml('publish-options', {}, opts.publishOptions));
  return xml('iq', { type: 'set', id: opts.id, from: opts.from, to: opts.to }, pubsub);
}

/** The FORM_TYPE of a data form, if it has one. */
export function formType(form: Element): string | undefined {
  const f = form.getChildren('field').find((c) => c.attrs.var === 'FORM_TYPE');
  return f?.getChildText('value') ?? undefined;
}

/**
 * Conditions that say the notification did not get through rather than that the App Server
 * refused it: our own routing could not reach the service (RFC 6120 §8.3.3.15 and .16), or
 * the service failed (§8.3.3.7). They count towards `max_failures` like type wait and modify.
 */
const TRANSIENT = new Set(['remote-server-not-found', 'remote-server-timeout', 'internal-server-error']);

export type Outcome = 'ok' | 'transient' | 'permanent';

/**
 * What a reply to a publish means (XEP-0357 §7.1: an IQ error SHOULD disable the JID and node,
 * but a recoverable or transient one MAY be tolerated until enough come in a row): a result is
 * ok; an error of type cancel or auth disables at once unless its condition is one of the
 * transient ones; wait, modify, an unknown type and no reply at all (undefined) are transient.
 */
export function outcomeOf(reply: Element | undefined): Outcome {
  if (!reply) return 'transient';
  if (reply.attrs.type === 'result') return 'ok';
  const error = reply.getChild('error');
  const condition = error?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === NS.STANZAS_ERROR)?.name;
  const type = error?.attrs.type;
  if ((type === 'cancel' || type === 'auth') && !(condition && TRANSIENT.has(condition))) return 'permanent';
  return 'transient';
}

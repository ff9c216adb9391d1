// The presence subscription state machine of RFC 6121 Appendix A, as pure functions:
// what an outbound or inbound subscription stanza does to the state, and whether it goes on.
import type { Subscription } from './service.js';

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export interface SubState {
  subscription: Subscription;
  pendingOut: boolean;
  pendingIn: boolean;
  /** Pre-approved inbound request (RFC 6121 §3.4). */
  approved: boolean;
}

export const NONE: SubState = { subscription: 'none', pendingOut: false, pendingIn: false, approved: false };

const hasTo = (s: Subscription) => s === 'to' || s === 'both';
const hasFrom = (s: Subscription) => s === 'from' || s === 'both';
const make = (to: boolean, from: boolean): Subscription => (to ? (from ? 'both' : 'to') : from ? 'from' : 'none');

export interface Outcome {
  state: SubState;
  /** Outbound: route the stanza to the contact. Inbound: deliver it to the user. */
  pass: boolean;
  /** Inbound subscribe answered by the server: reply `subscribed` on the user's behalf. */
  autoReply?: 'subscribed';
}

/** The user sends `type` to the contact (Appendix A.2). */
export function outbound(type: SubscriptionType, s: SubState): Outcome {
  const to = hasTo(s.subscription);
  const from = hasFrom(s.subscription);
  switch (type) {
    case 'subscribe':
      // A.2.1: pending-out unless already subscribed; always routed.
      return { state: to ? s : { ...s, pendingOut: true }, pass: true };
    case 'subscribed':
      // A.2.2: approves a pending-in request; with none pending it is a pre-approval (§3.4),
      // kept locally and not routed.
      if (s.pendingIn) return { state: { ...s, subscription: make(to, true), pendingIn: false, approved: false }, pass: true };
      if (!from) return { state: { ...s, approved: true }, pass: false };
      return { state: s, pass: false };
    case 'unsubscribe':
      // A.2.3: drops our subscription to the contact and any pending-out; always routed.
      return { state: { ...s, subscription: make(false, from), pendingOut: false }, pass: true };
    case 'unsubscribed':
      // A.2.4: cancels the contact's subscription to us, a pending-in and a pre-approval; routed.
      return { state: { ...s, subscription: make(to, false), pendingIn: false, approved: false }, pass: true };
  }
}

/** The contact sends `type` to the user (Appendix A.3). */
export function inbound(type: SubscriptionType, s: SubState): Outcome {
  const to = hasTo(s.subscription);
  const from = hasFrom(s.subscription);
  switch (type) {
    case 'subscribe':
      // A.3.1: already subscribed: the server answers for the user. Pre-approved: likewise,
      // and the approval becomes the subscription. Else pending-in, delivered once.
      if (from) return { state: s, pass: false, autoReply: 'subscribed' };
      if (s.approved) return { state: { ...s, subscription: make(to, true), approved: false }, pass: false, autoReply: 'subscribed' };
      if (s.pendingIn) return { state: s, pass: false };
      return { state: { ...s, pendingIn: true }, pass: true };
    case 'subscribed':
      // A.3.2: only meaningful while our request is pending.
      if (!s.pendingOut) return { state: s, pass: false };
      return { state: { ...s, subscription: make(true, from), pendingOut: false }, pass: true };
    case 'unsubscribe':
      // A.3.3: the contact no longer wants our presence (or withdraws its request).
      if (!from && !s.pendingIn) return { state: s, pass: false };
      return { state: { ...s, subscription: make(to, false), pendingIn: false }, pass: true };
    case 'unsubscribed':
      // A.3.4: our subscription (or request) was refused or cancelled.
      if (!to && !s.pendingOut) return { state: s, pass: false };
      return { state: { ...s, subscription: make(false, from), pendingOut: false }, pass: true };
  }
}

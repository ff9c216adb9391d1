// Hook priorities, as named bands: a higher band runs first, and within a band handlers run in
// registration order. A module picks the band that says what its handler does to the stanza,
// never a bare number, so the order of the whole chain can be read here.
export const Priority = {
  /** Drops or refuses a stanza before anything else sees it: blocking, privacy, rate limits. */
  GATE: 1000,
  /** Takes the replies to the server's own requests before any other handler. */
  REPLY: 500,
  /** Stamps or records a stanza that goes on (an archive's stanza-id, before delivery). */
  STAMP: 100,
  /** Changes an account's state and decides the stanza's way (roster subscriptions). */
  STATE: 50,
  /** Wakes or notifies on the way (push notifications). */
  NOTIFY: 20,
  /** Holds what can wait (client state indication). */
  HOLD: 10,
  /** The ordinary handler of an event. */
  DEFAULT: 0,
  /** A fallback once the ordinary handlers let the stanza through (offline storage). */
  FALLBACK: -10,
  /** Copies of a stanza that went through the rest of the chain: archive of sent messages, carbons. */
  COPY: -100,
  /** Makes durable what was delivered, once the copies are made (stream management stores what a kept session holds). */
  SETTLE: -200,
} as const;

export type PriorityBand = (typeof Priority)[keyof typeof Priority];

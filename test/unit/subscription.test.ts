// Every transition of RFC 6121 Appendix A, table by table, as the RFC writes them.
import t from 'tap';
import { inbound, outbound, type SubState, type SubscriptionType } from '../../modules/roster/subscription.js';

// The nine states of Appendix A.1, by their RFC names.
const STATES: Record<string, SubState> = {
  None: { subscription: 'none', pendingOut: false, pendingIn: false, approved: false },
  'None + Pending Out': { subscription: 'none', pendingOut: true, pendingIn: false, approved: false },
  'None + Pending In': { subscription: 'none', pendingOut: false, pendingIn: true, approved: false },
  'None + Pending Out/In': { subscription: 'none', pendingOut: true, pendingIn: true, approved: false },
  To: { subscription: 'to', pendingOut: false, pendingIn: false, approved: false },
  'To + Pending In': { subscription: 'to', pendingOut: false, pendingIn: true, approved: false },
  From: { subscription: 'from', pendingOut: false, pendingIn: false, approved: false },
  'From + Pending Out': { subscription: 'from', pendingOut: true, pendingIn: false, approved: false },
  Both: { subscription: 'both', pendingOut: false, pendingIn: false, approved: false },
};

const name = (s: SubState) => Object.entries(STATES).find(([, v]) => v.subscription === s.subscription && v.pendingOut === s.pendingOut && v.pendingIn === s.pendingIn)?.[0];

// [existing state, new state ('same' = no state change), stanza passes on (routed / delivered)]
type Row = [string, string, boolean];

const OUTBOUND: Record<SubscriptionType, Row[]> = {
  // A.2.1 outbound subscribe: always routed.
  subscribe: [
    ['None', 'None + Pending Out', true],
    ['None + Pending Out', 'same', true],
    ['None + Pending In', 'None + Pending Out/In', true],
    ['None + Pending Out/In', 'same', true],
    ['To', 'same', true],
    ['To + Pending In', 'same', true],
    ['From', 'From + Pending Out', true],
    ['From + Pending Out', 'same', true],
    ['Both', 'same', true],
  ],
  // A.2.2 outbound subscribed: routed only when it approves a pending request.
  subscribed: [
    ['None', 'same', false],
    ['None + Pending Out', 'same', false],
    ['None + Pending In', 'From', true],
    ['None + Pending Out/In', 'From + Pending Out', true],
    ['To', 'same', false],
    ['To + Pending In', 'Both', true],
    ['From', 'same', false],
    ['From + Pending Out', 'same', false],
    ['Both', 'same', false],
  ],
  // A.2.3 outbound unsubscribe: always routed.
  unsubscribe: [
    ['None', 'same', true],
    ['None + Pending Out', 'None', true],
    ['None + Pending In', 'same', true],
    ['None + Pending Out/In', 'None + Pending In', true],
    ['To', 'None', true],
    ['To + Pending In', 'None + Pending In', true],
    ['From', 'same', true],
    ['From + Pending Out', 'From', true],
    ['Both', 'From', true],
  ],
  // A.2.4 outbound unsubscribed: always routed.
  unsubscribed: [
    ['None', 'same', true],
    ['None + Pending Out', 'same', true],
    ['None + Pending In', 'None', true],
    ['None + Pending Out/In', 'None + Pending Out', true],
    ['To', 'same', true],
    ['To + Pending In', 'To', true],
    ['From', 'None', true],
    ['From + Pending Out', 'None + Pending Out', true],
    ['Both', 'To', true],
  ],
};

const INBOUND: Record<SubscriptionType, Row[]> = {
  // A.3.1 inbound subscribe (From/Both: the server replies subscribed itself, not delivered).
  subscribe: [
    ['None', 'None + Pending In', true],
    ['None + Pending Out', 'None + Pending Out/In', true],
    ['None + Pending In', 'same', false],
    ['None + Pending Out/In', 'same', false],
    ['To', 'To + Pending In', true],
    ['To + Pending In', 'same', false],
    ['From', 'same', false],
    ['From + Pending Out', 'same', false],
    ['Both', 'same', false],
  ],
  // A.3.2 inbound subscribed.
  subscribed: [
    ['None', 'same', false],
    ['None + Pending Out', 'To', true],
    ['None + Pending In', 'same', false],
    ['None + Pending Out/In', 'To + Pending In', true],
    ['To', 'same', false],
    ['To + Pending In', 'same', false],
    ['From', 'same', false],
    ['From + Pending Out', 'Both', true],
    ['Both', 'same', false],
  ],
  // A.3.3 inbound unsubscribe.
  unsubscribe: [
    ['None', 'same', false],
    ['None + Pending Out', 'same', false],
    ['None + Pending In', 'None', true],
    ['None + Pending Out/In', 'None + Pending Out', true],
    ['To', 'same', false],
    ['To + Pending In', 'To', true],
    ['From', 'None', true],
    ['From + Pending Out', 'None + Pending Out', true],
    ['Both', 'To', true],
  ],
  // A.3.4 inbound unsubscribed.
  unsubscribed: [
    ['None', 'same', false],
    ['None + Pending Out', 'None', true],
    ['None + Pending In', 'same', false],
    ['None + Pending Out/In', 'None + Pending In', true],
    ['To', 'None', true],
    ['To + Pending In', 'None + Pending In', true],
    ['From', 'same', false],
    ['From + Pending Out', 'From', true],
    ['Both', 'From', true],
  ],
};

for (const [direction, table, fn] of [
  ['outbound', OUTBOUND, outbound],
  ['inbound', INBOUND, inbound],
] as const) {
  for (const [type, rows] of Object.entries(table)) {
    t.test(`${direction} ${type}`, async (t) => {
      t.equal(rows.length, 9, 'all nine states');
      for (const [from, to, passes] of rows) {
        const result = fn(type as SubscriptionType, STATES[from]!);
        t.equal(name(result.state), to === 'same' ? from : to, `${from} -> ${to}`);
        t.equal(result.pass, passes, `${from}: ${passes ? 'passes on' : 'stops'}`);
      }
    });
  }
}

t.test('inbound subscribe when already subscribed is answered by the server', async (t) => {
  for (const s of ['From', 'From + Pending Out', 'Both']) t.equal(inbound('subscribe', STATES[s]!).autoReply, 'subscribed', s);
  t.equal(inbound('subscribe', STATES.None!).autoReply, undefined);
});

t.test('pre-approval (RFC 6121 §3.4)', async (t) => {
  const approved = outbound('subscribed', STATES.None!);
  t.equal(approved.state.approved, true, 'subscribed with nothing pending pre-approves');
  t.equal(approved.pass, false, 'and is not routed');
  const request = inbound('subscribe', approved.state);
  t.equal(request.autoReply, 'subscribed', 'the later request is approved by the server');
  t.equal(request.pass, false, 'without bothering the user');
  t.equal(name(request.state), 'From');
  t.equal(request.state.approved, false, 'the approval is used up');
  t.equal(outbound('unsubscribed', approved.state).state.approved, false, 'unsubscribed cancels a pre-approval');
});

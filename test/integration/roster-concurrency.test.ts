// Subscription stanzas of one account sent back to back are all applied (no lost roster
// updates), on SQLite and on PostgreSQL.
import t, { type Test } from 'tap';
import { startTestServer } from '../helpers/harness.js';
import { rawLogin, type RawStream } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { RosterStore } from '../../modules/roster/store.js';

const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence'];
const ROUNDS = 6;

const gotPresence = (s: RawStream, from: string, type: string) =>
  s.until(() => s.elements.find((e) => e.name === 'presence' && e.attrs.from?.startsWith(from) && e.attrs.type === type));

/** Runs `round` ROUNDS times, each with two new accounts logged in and available. */
async function inRounds(
  t: Test,
  overrides: Record<string, unknown>,
  names: [string, string],
  round: (a: string, b: string, alice: RawStream, bob: RawStream, store: RosterStore, n: number) => Promise<void>,
): Promise<void> {
  const ts = await startTestServer(t, { modules_enabled: MODULES, ...overrides });
  const store = new RosterStore(ts.server.core.storage);
  for (let n = 0; n < ROUNDS; n++) {
    const [a, b] = [`${names[0]}${n}`, `${names[1]}${n}`];
    await ts.addUser(a);
    await ts.addUser(b);
    const { s: alice } = await rawLogin(ts.port, a, 'r');
    const { s: bob } = await rawLogin(ts.port, b, 'r');
    alice.write('<presence/>');
    bob.write('<presence/>');
    await round(a, b, alice, bob, store, n);
    alice.close();
    bob.close();
  }
}

async function backToBack(t: Test, overrides: Record<string, unknown>): Promise<void> {
  await inRounds(t, overrides, ['alice', 'bob'], async (a, b, alice, bob, store, round) => {
    alice.write(`<presence to='${b}@localhost' type='subscribe'/>`);
    await gotPresence(bob, `${a}@localhost`, 'subscribe');
    // Approve alice's request and ask for hers, in one write: handled concurrently.
    bob.write(`<presence to='${a}@localhost' type='subscribed'/><presence to='${a}@localhost' type='subscribe'/>`);
    await gotPresence(alice, `${b}@localhost`, 'subscribed');
    await gotPresence(alice, `${b}@localhost`, 'subscribe');

    const bobsItem = await store.item('localhost', b, `${a}@localhost`);
    t.match(bobsItem, { subscription: 'from', ask: true }, `round ${round}: bob's item is from + ask (his request is not lost)`);
    const alicesItem = await store.item('localhost', a, `${b}@localhost`);
    t.match(alicesItem, { subscription: 'to', ask: false }, `round ${round}: alice's item is to`);
    t.ok(await store.request('localhost', a, `${b}@localhost`), `round ${round}: bob's request waits for alice`);
    t.equal(await store.request('localhost', b, `${a}@localhost`), undefined, `round ${round}: alice's request to bob is answered`);
  });
}

/**
 * Alice and bob have asked each other, then approve each other at the same moment: on each
 * side the outbound `subscribed` (from) and the inbound one (to) change the same item at once,
 * and both must end at `both`.
 */
async function mutualApproval(t: Test, overrides: Record<string, unknown>): Promise<void> {
  await inRounds(t, overrides, ['carol', 'dave'], async (a, b, alice, bob, store, round) => {
    alice.write(`<presence to='${b}@localhost' type='subscribe'/>`);
    bob.write(`<presence to='${a}@localhost' type='subscribe'/>`);
    await gotPresence(bob, `${a}@localhost`, 'subscribe');
    await gotPresence(alice, `${b}@localhost`, 'subscribe');
    alice.write(`<presence to='${b}@localhost' type='subscribed'/>`);
    bob.write(`<presence to='${a}@localhost' type='subscribed'/>`);
    await gotPresence(bob, `${a}@localhost`, 'subscribed');
    await gotPresence(alice, `${b}@localhost`, 'subscribed');
    // Each side's own outbound handling ends before its stanza is routed: wait for both ends.
    await Promise.all(
      [alice, bob].map((s) => s.until(() => s.elements.filter((e) => e.name === 'presence' && !e.attrs.type && e.attrs.from?.startsWith(s === alice ? b : a)).length > 0)),
    );
    t.match(await store.item('localhost', a, `${b}@localhost`), { subscription: 'both', ask: false }, `round ${round}: ${a}'s item is both`);
    t.match(await store.item('localhost', b, `${a}@localhost`), { subscription: 'both', ask: false }, `round ${round}: ${b}'s item is both`);
  });
}

t.test('SQLite', async (t) => {
  await t.test('back-to-back subscribed + subscribe', (t) => backToBack(t, {}));
  await t.test('mutual approval at the same moment', (t) => mutualApproval(t, {}));
});
t.test('PostgreSQL', async (t) => {
  await t.test('back-to-back subscribed + subscribe', (t) => onPostgres(t, 'starling_roster_it', (storage) => backToBack(t, storage)));
  await t.test('mutual approval at the same moment', (t) => onPostgres(t, 'starling_roster_it', (storage) => mutualApproval(t, storage)));
});

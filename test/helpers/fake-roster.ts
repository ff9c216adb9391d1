// A roster module for tests whose subscriptions the test sets directly, registered as the
// built-in module 'test-roster' (provides the 'roster' service that other modules use).
import { defineModule, type ModuleDefinition } from '../../src/module-api/define.js';
import { parseJid, type Jid } from '../../src/jid.js';
import { builtinModules } from '../../modules/index.js';
import { RosterKey, type RosterItem, type Subscription } from '../../modules/roster/service.js';

/** 'user contact' (bare JIDs) -> subscription. */
const subscriptions = new Map<string, Subscription>();
const subKey = (user: Jid, contact: Jid) => `${user.bare} ${contact.bare}`;

/** Sets `user`'s subscription with `contact`, as if the roster said so. */
export function subscribe(user: string, contact: string, subscription: Subscription): void {
  subscriptions.set(subKey(parseJid(user), parseJid(contact)), subscription);
}

const testRoster = defineModule({
  name: 'test-roster',
  setup(ctx) {
    const itemOf = (user: Jid, contact: Jid): RosterItem | undefined => {
      const subscription = subscriptions.get(subKey(user, contact));
      return subscription && { jid: contact.bare.toString(), subscription, ask: false, approved: false, groups: [] };
    };
    ctx.provide(RosterKey, {
      async items(user) {
        return [...subscriptions.keys()].filter((k) => k.startsWith(`${user.bare} `)).map((k) => itemOf(user, parseJid(k.split(' ')[1]!))!);
      },
      async item(user, contact) {
        return itemOf(user, contact);
      },
      async sharesPresenceWith(user, contact) {
        const s = itemOf(user, contact)?.subscription;
        return s === 'from' || s === 'both';
      },
    });
  },
});
if (!builtinModules.some((m) => m.name === testRoster.name)) builtinModules.push(testRoster as ModuleDefinition);

// XEP-0012 Last Activity. To the server: its uptime. To a user's bare JID: the seconds since
// the user's last session closed, with the status of their last unavailable presence, or 0
// while they have an available resource (XEP-0012 §3). Only the user and those allowed to see
// the user's presence (a subscription from/both; a blocked entity never) get an answer; anyone
// else gets <forbidden/> (XEP-0012 §3 and Security Considerations). Queries to a full JID go
// to that client, as the router delivers every IQ to a full JID.
import { xml } from '@xmpp/xml';
import { sessionKey } from '../../src/module-api/keys.js';
import type { Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import type { Session } from '../../src/sessions/session.js';
import { StanzaError } from '../../src/stream/errors.js';
import { BlockingKey } from '../blocking/service.js';
import { RosterKey } from '../roster/service.js';
import type { Migration } from '../../src/storage/migrations.js';

export const NS_LAST = 'jabber:iq:last';
/** session.data key: the <status/> of the session's last unavailable presence. */
const STATUS = sessionKey<string>('last.status');

/** The time of a user's last logout (a keyval store, 'last'). */
export interface LastLogout {
  /** When the user's last session closed, in milliseconds since the epoch. */
  at: number;
  /** The <status/> of the last unavailable presence the user sent, '' when none. */
  status: string;
}

/** The logout was a user_data row of key 'logout'; keyval stores use the key ''. */
const lastMigrations: Migration[] = [
  {
    version: 1,
    name: 'keyval',
    up: (db) =>
      db
        .updateTable('user_data')
        .set({ key: '' })
        .where('store', '=', 'last')
        .where('key', '=', 'logout')
        .execute()
        .then(() => {}),
  },
];

export default defineModule({
  name: 'last',
  migrations: lastMigrations,
  setup(ctx) {
    const store = ctx.store.keyval<LastLogout>('last');
    const seconds = (since: number) => String(Math.max(0, Math.floor((Date.now() - since) / 1000)));
    ctx.feature(NS_LAST);

    // §5: the server's uptime, without character data.
    ctx.iq.get(NS_LAST, 'query', (iq) => iq.reply(xml('query', { xmlns: NS_LAST, seconds: seconds(ctx.server.startedAt.getTime()) })));

    /** Whether `requester` may learn `user`'s availability (XEP-0012 §3, Security Considerations). */
    const mayKnow = async (user: Jid, requester: Jid): Promise<boolean> => {
      if (requester.bare.equals(user)) return true;
      const blocking = ctx.tryUse(BlockingKey);
      if (blocking && (await blocking.isBlocked(user, requester))) return false;
      const roster = ctx.tryUse(RosterKey);
      return roster ? roster.sharesPresenceWith(user, requester.bare) : false;
    };

    ctx.iq.get(
      NS_LAST,
      'query',
      async (iq) => {
        const user = iq.to.bare;
        if (!(await mayKnow(user, iq.from))) throw new StanzaError('forbidden');
        // Across the cluster: an available resource anywhere means "online now".
        const resources = await ctx.server.live.sessions.resourcesOf(user.toString());
        if (resources.some((r) => r.available)) return iq.reply(xml('query', { xmlns: NS_LAST, seconds: '0' }));
        const last = await store.get(user.domain, user.local);
        if (!last) throw new StanzaError('item-not-found', 'no logout has been recorded for this account');
        return iq.reply(xml('query', { xmlns: NS_LAST, seconds: seconds(last.at) }, last.status || null));
      },
      { to: 'bare' },
    );

    // The status of the session's last unavailable presence. When a stream closes while still
    // available, the server broadcasts one without status for it: no status is then right.
    ctx.hook('presence/broadcast', ({ session, stanza }) => {
      if (stanza.attrs.type === 'unavailable') session.data.set(STATUS, stanza.getChildText('status') ?? '');
      else session.data.delete(STATUS);
    });

    const recordLogout = async (session: Session) => {
      const user = session.jid?.bare;
      if (!user || user.domain !== ctx.domain) return;
      if (ctx.server.sessions.resourcesOf(user).some((s) => s !== session && !s.closed)) return;
      // Sessions are also closed when their account is deleted: nothing to record then.
      if (!(await ctx.server.accounts.exists(user))) return;
      const status = session.data.get(STATUS);
      try {
        await store.set(user.domain, user.local, { at: Date.now(), status: typeof status === 'string' ? status : '' });
      } catch (err) {
        // Most likely the account was deleted in between (the foreign key refuses the row).
        if (await ctx.server.accounts.exists(user)) throw err;
      }
    };
    // A dead node's session: recorded once, by the node that cleaned up after it.
    ctx.hook('session/closed', ({ session, reaped }) => (reaped && !reaped.here ? undefined : recordLogout(session)));
  },
});

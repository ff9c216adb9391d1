// XEP-0133 Service Administration on the ad-hoc commands framework: account management,
// counts and lists of users, announcements and the message of the day. Only the host's admins
// (`admins`, global or per host) see and run the commands; everyone else gets forbidden.
import { parseJid, type Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import { AdhocKey } from '../adhoc/service.js';
import { Motd, announceCommands, headline } from './announce.js';
import { adminCommand } from './forms.js';
import { onlineCommands } from './online.js';
import { userCommands, type LastLogin } from './users.js';

export default defineModule({
  name: 'admin_adhoc',
  depends: ['adhoc'],
  setup(ctx) {
    // Read at each request: the admins of the host as configured now.
    const isAdmin = (requester: Jid) => ctx.host.options.admins.some((admin) => parseJid(admin).bare.equals(requester.bare));
    const lastLogin = ctx.store.keyval<LastLogin>('lastlogin');
    const motd = new Motd(ctx.store.archive('motd', { owner: 'service' }), ctx.domain);

    const adhoc = ctx.use(AdhocKey);
    for (const spec of [...userCommands(ctx, lastLogin), ...onlineCommands(ctx), ...announceCommands(ctx, motd)]) {
      ctx.onUnload(adhoc.add(adminCommand(spec, isAdmin)));
    }

    // get-user-lastlogin: the time of each login (a session bound).
    ctx.hook('session/bound', async ({ session }) => {
      const user = session.jid?.bare;
      if (!user || user.domain !== ctx.domain) return;
      try {
        await lastLogin.set(user.domain, user.local, { at: Date.now() });
      } catch (err) {
        ctx.log.warn({ err, jid: user.toString() }, 'recording the last login failed');
      }
    });

    // The message of the day, at the session's first available presence.
    ctx.hook('presence/broadcast', async ({ session, initial }) => {
      if (!initial || session.jid?.domain !== ctx.domain) return;
      const message = await motd.get();
      if (message !== undefined) await ctx.server.router.route(headline(ctx, session.jid.toString(), 'Message of the day', message));
    });
  },
});

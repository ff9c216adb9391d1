// New accounts: for new_account_hours after an account is created (account.created_at), the
// messages with a body its clients send to addresses with no subscription either way in its
// roster are held to new_account_messages_per_second, after a burst of new_account_burst (a
// token bucket per account, in memory on this node). Past it a message bounces with <policy-violation/> of type
// wait. The server's own services (rooms, components) do not count. Only on a host where anyone
// may register (in-band registration open without invitations): there new accounts are where
// spam comes from; accounts an admin made, or invited, are trusted.
import type { Jid } from '../../src/jid.js';
import type { ModuleContext } from '../../src/module-api/define.js';
import { preEvents, type PreRouteEvent } from '../../src/module-api/events.js';
import { Priority } from '../../src/module-api/priorities.js';
import { StanzaError } from '../../src/stream/errors.js';
import { RosterKey } from '../roster/service.js';
import type { AntiSpamConfig } from './config.js';
import { TokenBucket } from '../../src/token-bucket.js';
import { optionalService } from './uses.js';

export function setupNewAccounts(ctx: ModuleContext<AntiSpamConfig>): void {
  const { config } = ctx;
  if (config.new_account_hours === 0) return;
  const roster = optionalService(ctx, RosterKey, 'roster', "new accounts' contacts (all count as strangers)");
  const { hosts, router, storage } = ctx.server;
  const youngFor = config.new_account_hours * 3_600_000;

  /** When each account (with a session here) was created; it never changes. */
  const createdAt = new Map<string, number | null>();
  const created = async (user: Jid): Promise<number | null> => {
    const key = user.toString();
    if (createdAt.has(key)) return createdAt.get(key)!;
    const row = await storage.db.selectFrom('account').select('created_at').where('host', '=', user.domain).where('username', '=', user.local).executeTakeFirst();
    const at = row ? Number(row.created_at) : null;
    createdAt.set(key, at);
    return at;
  };
  const buckets = new Map<string, TokenBucket>();
  ctx.every(60_000, () => {
    for (const [key, bucket] of buckets) if (bucket.full(Date.now())) buckets.delete(key);
  });
  ctx.hook('session/closed', ({ session }) => {
    const user = session.jid?.bare.toString();
    if (user && !ctx.server.sessions.resourcesOf(session.jid!.bare).some((s) => s !== session)) createdAt.delete(user);
  });

  /** The user's own account, the server and its services: not strangers. */
  const serverSide = (user: Jid, to: Jid): boolean => {
    if (to.bare.equals(user)) return true;
    if (hosts.has(to.domain)) return to.local === '';
    return router.isLocal(to.domain) || to.domain.endsWith(`.${ctx.domain}`);
  };

  /** Read at each message: `starling reload` may open or close registration. */
  const registrationOpen = (): boolean => {
    const options = ctx.host.options;
    const register = options.modules.register as { allow_registration?: boolean; require_invitation?: boolean } | undefined;
    return options.modules_enabled.includes('register') && register?.allow_registration === true && register.require_invitation !== true;
  };

  const check = async ({ stanza, to, origin }: PreRouteEvent): Promise<boolean | void> => {
    if (stanza.attrs.to === undefined || !origin.jid || origin.jid.domain !== ctx.domain || !registrationOpen()) return;
    const type = stanza.attrs.type;
    // What a spammer sends has a body; chat states and receipts to someone written to are free.
    if (type === 'error' || type === 'groupchat' || !stanza.getChild('body')) return;
    const user = origin.jid.bare;
    if (serverSide(user, to)) return;
    const at = await created(user);
    if (at === null || Date.now() - at >= youngFor) return;
    if (roster) {
      const subscription = (await roster.item(user, to.bare))?.subscription;
      if (subscription !== undefined && subscription !== 'none') return;
    }
    const key = user.toString();
    let bucket = buckets.get(key);
    if (!bucket) buckets.set(key, (bucket = new TokenBucket({ rate: config.new_account_messages_per_second, burst: config.new_account_burst }, Date.now())));
    if (bucket.take(Date.now())) return;
    ctx.log.info({ jid: key, to: to.bare.toString() }, 'a new account wrote to strangers too fast: message refused');
    router.bounce(stanza, new StanzaError('policy-violation', 'new accounts may write to addresses not in their roster only so fast; try again later', 'wait'));
    return true;
  };
  for (const event of preEvents('message')) ctx.hook(event, check, Priority.GATE);
}

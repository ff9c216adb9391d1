// The host's admins (`admins`, global or per host), as configured now.
import { parseJid, type Jid } from '../../src/jid.js';
import type { ModuleContext } from '../../src/module-api/define.js';

export const admins = (ctx: ModuleContext<unknown>): Jid[] => ctx.host.options.admins.map((a) => parseJid(a).bare);

export const isAdmin = (ctx: ModuleContext<unknown>, requester: Jid): boolean => admins(ctx).some((admin) => admin.equals(requester.bare));

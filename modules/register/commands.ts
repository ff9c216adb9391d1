// `starling invite`: invitation tokens for registration with require_invitation.
import { CommandError, countOption, requireArg, type ModuleCommand } from '../../src/module-api/commands.js';
import { InviteStore } from './store.js';

export const inviteCommand: ModuleCommand = {
  name: 'invite',
  usage: 'starling invite HOST [--uses N] [--expires-in SECONDS] [--config FILE]',
  description:
    'Create an invitation token for in-band registration (modules.register with require_invitation): valid for N registrations ' +
    '(default 1) for SECONDS (default 604800, a week; 0: no expiry). Prints the token, then its XEP-0401 registration URI.',
  options: { uses: { type: 'string' }, 'expires-in': { type: 'string' } },
  async run(args, ctx) {
    const host = requireArg(args, 'HOST').toLowerCase();
    const options = ctx.config().hostOptions.get(host);
    if (!options) throw new CommandError(`${host} is not a host of this server`);
    const uses = countOption(ctx.values.uses, '--uses', 1, 1);
    const expiresInSeconds = countOption(ctx.values['expires-in'], '--expires-in', 7 * 24 * 3600, 0);
    const { token, expiresAt } = await (await InviteStore.open(await ctx.storage())).create(host, { uses, expiresInSeconds });
    console.log(token);
    console.log(`xmpp:${host}?register;preauth=${token}`);
    console.log(`valid for ${uses} registration${uses === 1 ? '' : 's'}, ${expiresAt === null ? 'without expiry' : `until ${new Date(expiresAt).toISOString()}`}`);
    const register = options.modules.register as { allow_registration?: boolean; require_invitation?: boolean } | undefined;
    if (!options.modules_enabled.includes('register')) console.error(`note: the register module is not enabled for ${host}; the token waits until it is`);
    else if (!register?.allow_registration) console.error(`note: modules.register.allow_registration is off for ${host}; the token waits until it is on`);
    else if (!register.require_invitation) console.error(`note: modules.register.require_invitation is off for ${host}: registering needs no token`);
  },
};

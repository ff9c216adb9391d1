// `starling reports HOST` and `starling block-strangers JID on|off`.
import { tryParseJid } from '../../src/jid.js';
import { CommandError, countOption, requireArg, type ModuleCommand } from '../../src/module-api/commands.js';
import { ReportStore, describeReport, strangersChoice } from './store.js';

export const reportsCommand: ModuleCommand = {
  name: 'reports',
  usage: 'starling reports HOST [--limit N] [--config FILE]',
  description: "List the abuse reports (XEP-0377) the host's users sent with their blocks, newest first (default at most 100).",
  options: { limit: { type: 'string' } },
  async run(args, ctx) {
    const host = requireArg(args, 'HOST').toLowerCase();
    if (!ctx.config().hostOptions.has(host)) throw new CommandError(`${host} is not a host of this server`);
    const limit = countOption(ctx.values.limit, '--limit', 100, 1);
    const reports = await (await ReportStore.open(await ctx.storage())).list(host, limit);
    for (const report of reports) console.log(describeReport(report));
    if (reports.length === 0) console.error(`no abuse reports for ${host}`);
  },
};

export const blockStrangersCommand: ModuleCommand = {
  name: 'block-strangers',
  usage: 'starling block-strangers JID on|off|default [--config FILE]',
  description:
    "Set whether an account refuses messages from addresses not in its roster (modules.anti_spam), whatever the host's block_strangers; " +
    "default: the host's setting again. A running server applies it within a minute.",
  async run(args, ctx) {
    const text = requireArg(args, 'JID');
    const jid = tryParseJid(text);
    if (!jid || jid.local === '' || !jid.isBare) throw new CommandError(`"${text}" is not an account's JID (user@host)`);
    const value = args[1];
    if (value !== 'on' && value !== 'off' && value !== 'default') throw new CommandError('expected on, off or default after the JID');
    if (!ctx.config().hostOptions.has(jid.domain)) throw new CommandError(`${jid.domain} is not a host of this server`);
    if (!(await (await ctx.accounts()).exists(jid))) throw new CommandError(`there is no account ${jid.toString()}`);
    const choices = strangersChoice(await ctx.storage());
    if (value === 'default') await choices.delete(jid.domain, jid.local);
    else await choices.set(jid.domain, jid.local, { block: value === 'on' });
    console.log(`${jid.toString()}: strangers ${value === 'default' ? "as the host's block_strangers says" : value === 'on' ? 'blocked' : 'allowed'}`);
  },
};

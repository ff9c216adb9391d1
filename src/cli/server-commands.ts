// The commands that talk to the running server over its control channel: status, sessions,
// kick, reload, announce; and deluser / passwd when a server is running (so that its live sessions follow).
import { AccountError } from '../auth/accounts.js';
import type { ControlClient } from '../control/client.js';
import { controlSocketPath, type AccountResult, type AnnounceResult, type KickResult, type SessionInfo, type StatusResult } from '../control/protocol.js';
import { CommandError, requireArg } from '../module-api/commands.js';
import type { ReloadReport } from '../reload.js';
import type { ModuleRegistry } from '../module-api/loader.js';
import { newPassword, readPassword } from '../password-input.js';
import { CliCommandContext, configOption, type Command, type OptionValues } from './command.js';

/** Exit status of `starling status` when no server runs (as LSB init scripts' "not running"). */
export const NOT_RUNNING = 3;

/**
 * Runs `fn` against the server running with the configuration's data directory and returns 0;
 * undefined (nothing done) when no server is running.
 */
export async function onRunningServer(values: OptionValues, registry: () => ModuleRegistry, fn: (server: ControlClient) => Promise<void>): Promise<number | undefined> {
  const ctx = new CliCommandContext(values, registry);
  try {
    const server = await ctx.runningServer();
    if (!server) return undefined;
    await fn(server);
    return 0;
  } finally {
    await ctx.dispose();
  }
}

/** Like onRunningServer, but no running server is an error. */
async function withRunningServer(values: OptionValues, registry: () => ModuleRegistry, fn: (server: ControlClient) => Promise<void>): Promise<number> {
  const ctx = new CliCommandContext(values, registry);
  try {
    const server = await ctx.runningServer();
    if (!server) throw new CommandError(`no server is running with the data directory ${ctx.config().dataDir}`);
    await fn(server);
    return 0;
  } finally {
    await ctx.dispose();
  }
}

export async function deleteOnServer(server: ControlClient, address: string): Promise<void> {
  const { jid, closed } = await server.request<AccountResult>({ command: 'deluser', jid: address });
  console.log(`deleted ${jid}${ended(closed)}`);
}

export async function passwdOnServer(server: ControlClient, address: string, values: OptionValues): Promise<void> {
  const { jid, exists } = await server.request<{ jid: string; exists: boolean }>({ command: 'exists', jid: address });
  if (!exists) throw new AccountError('item-not-found', `there is no account ${jid}`);
  const password = await readPassword(values['password-file'] as string | undefined, newPassword(`New password for ${jid}: `));
  const keepSessions = values['keep-sessions'] === true;
  const { closed } = await server.request<AccountResult>({ command: 'passwd', jid, password, keepSessions });
  console.log(`password of ${jid} changed${ended(closed)}`);
}

function ended(closed: number): string {
  return closed === 0 ? '' : `; ${closed} session${closed === 1 ? '' : 's'} ended`;
}

export function serverCommands(registry: () => ModuleRegistry): Record<string, Command> {
  return {
    status: {
      usage: 'starling status [--config FILE]',
      summary: `Report on the running server: version, uptime, hosts, connections, storage, Redis. Exit ${NOT_RUNNING} when none is running.`,
      options: configOption,
      run: async (_args, values) => {
        const ctx = new CliCommandContext(values, registry);
        try {
          const server = await ctx.runningServer();
          if (!server) {
            console.error(`starling status: not running (no server with the data directory ${ctx.config().dataDir})`);
            return NOT_RUNNING;
          }
          printStatus(await server.request<StatusResult>({ command: 'status' }), controlSocketPath(ctx.config().dataDir));
          return 0;
        } finally {
          await ctx.dispose();
        }
      },
    },
    sessions: {
      usage: 'starling sessions [HOST] [--config FILE]',
      summary:
        'List the client sessions of the running server (of HOST only, when given): full JID, IP address, since when, TLS, stream management, CSI; ' +
        "in a cluster, those of every node, with the node (stream management and CSI are known for this node's only).",
      options: configOption,
      run: (args, values) =>
        withRunningServer(values, registry, async (server) => {
          const sessions = await server.request<SessionInfo[]>({ command: 'sessions', host: args[0] });
          const clustered = sessions.some((s) => s.node !== undefined);
          printTable(
            sessions.map((s) => {
              const flags = [s.secure ? 'tls' : 'plain', s.available ? 'available' : 'unavailable', ...(s.sm ? [`sm:${s.sm}`] : []), ...(s.csi ? [`csi:${s.csi}`] : [])];
              return [s.jid, ...(clustered ? [s.node ?? ''] : []), s.ip, s.since, flags.join(' ')];
            }),
          );
        }),
    },
    kick: {
      usage: 'starling kick USER@HOST[/RESOURCE] [REASON...] [--config FILE]',
      summary:
        'End a session of the running server (a full JID), or every session of an account (a bare JID), with a ' +
        '<policy-violation/> stream error carrying REASON. Prints each JID ended.',
      options: configOption,
      run: (args, values) =>
        withRunningServer(values, registry, async (server) => {
          const jid = requireArg(args, 'USER@HOST[/RESOURCE]');
          const reason = args.slice(1).join(' ') || undefined;
          const { closed } = await server.request<KickResult>({ command: 'kick', jid, reason });
          for (const full of closed) console.log(`ended ${full}`);
        }),
    },
    reload: {
      usage: 'starling reload [--config FILE]',
      summary:
        'Reload the running server (as SIGHUP does): its certificates are read again; the configuration file is read again, ' +
        'the settings that can change live (log.level, admins, accounts, options of modules that allow it) are applied, and ' +
        'every other setting that differs from what the server runs with is named, as needing a restart.',
      options: configOption,
      run: (_args, values) =>
        withRunningServer(values, registry, async (server) => {
          const report = await server.request<ReloadReport>({ command: 'reload' });
          console.log(`reloaded: ${report.applied.join(', ')}`);
          for (const problem of report.problems) console.log(`certificate problem: ${problem}`);
          if (report.live.length > 0) console.log(`changed in the file, applied live: ${report.live.join(', ')}`);
          if (report.restart.length > 0) console.log(`changed in the file, taking effect after a restart: ${report.restart.join(', ')}`);
          if (report.live.length === 0 && report.restart.length === 0) console.log('no other change in the configuration file');
        }),
    },
    announce: {
      usage: 'starling announce HOST MESSAGE... [--config FILE]',
      summary: 'Send MESSAGE to every user of HOST online on the running server, on every node of a cluster (a headline message from HOST). Prints how many sessions got it.',
      options: configOption,
      run: (args, values) =>
        withRunningServer(values, registry, async (server) => {
          const host = requireArg(args, 'HOST');
          const message = args.slice(1).join(' ');
          if (message.trim() === '') throw new CommandError('usage: starling announce HOST MESSAGE...');
          const { sent } = await server.request<AnnounceResult>({ command: 'announce', host, message });
          console.log(`sent to ${sent} session${sent === 1 ? '' : 's'}`);
        }),
    },
  };
}

function printStatus(s: StatusResult, socket: string): void {
  console.log(`starling ${s.version}: running for ${duration(s.uptimeSeconds)} (since ${s.startedAt}; pid ${s.pid}; node ${s.node})`);
  console.log(`hosts: ${s.hosts.join(', ')}`);
  console.log(`c2s: ${s.c2s.connections} connection${s.c2s.connections === 1 ? '' : 's'}, ${s.c2s.sessions} session${s.c2s.sessions === 1 ? '' : 's'} bound`);
  console.log(`s2s: ${s.s2s.incoming} incoming, ${s.s2s.outgoing} outgoing`);
  if (s.components?.configured) console.log(`components: ${s.components.connected} of ${s.components.configured} connected`);
  console.log(`storage: ${s.storage.driver} (${s.storage.location})`);
  console.log(s.liveState.backend === 'redis' ? `redis: ${s.liveState.state ?? 'unknown'}` : 'redis: not used (live state in memory)');
  if (s.cluster) {
    console.log(`cluster: ${s.cluster.filter((n) => n.alive).length} of ${s.cluster.length} node${s.cluster.length === 1 ? '' : 's'} alive`);
    for (const n of s.cluster) {
      const sessions = n.sessions === undefined ? '' : `, ${n.sessions} session${n.sessions === 1 ? '' : 's'}`;
      console.log(`  ${n.node}${n.node === s.node ? ' (this node)' : ''}: ${n.alive ? 'alive' : 'no heartbeat'}${sessions}`);
    }
  }
  console.log(`control: ${socket}`);
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const parts = [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${seconds % 60}s`].filter(Boolean);
  return parts.join(' ');
}

/** Columns aligned with two spaces between them; the last one as it is. */
function printTable(rows: string[][]): void {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  for (const row of rows) console.log(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

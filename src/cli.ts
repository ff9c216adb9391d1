#!/usr/bin/env -S node --max-semi-space-size=64 --expose-gc
// `starling <command>`: start the server, manage accounts, check a configuration.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type LoadedConfig } from './config/load.js';
import { AccountError } from './auth/accounts.js';
import { createLogger } from './log.js';
import { ModuleRegistry } from './module-api/loader.js';
import { builtinModules } from '../modules/index.js';
import { openAccounts, startServer } from './server.js';
import { IdleCollector, missingLaunchFlags } from './idle-collector.js';
import { runCheck } from './check.js';
import { configOption, moduleCommands, type Command } from './cli/command.js';
import { deleteOnServer, onRunningServer, passwdOnServer, serverCommands } from './cli/server-commands.js';
import { pieCommands } from './cli/pie-commands.js';
import { CommandError } from './module-api/commands.js';
import { newPassword, readPassword } from './password-input.js';
import { OperatorError } from './operator-error.js';
import { VERSION } from './version.js';
import type { Storage } from './storage/database.js';

const passwordOptions = { ...configOption, 'password-file': { type: 'string' as const } };

const commands: Record<string, Command> = {
  start: {
    usage: 'starling start [--config FILE]',
    summary: 'Run the server (configuration: --config, else $STARLING_CONFIG, else ./config.toml, else defaults).',
    options: configOption,
    run: (_args, values) => start(values.config as string | undefined),
  },
  adduser: {
    usage: 'starling adduser USER@HOST [--password-file FILE] [--config FILE]',
    summary: 'Create an account. The password is asked for (without echo), read from --password-file, or from standard input.',
    options: passwordOptions,
    run: (args, values) =>
      withAccounts(values, async (accounts) => {
        const jid = accounts.userJid(requireArg(args, 'USER@HOST'));
        await accounts.create(jid, await readPassword(values['password-file'] as string | undefined, newPassword(`Password for ${jid}: `)));
        console.log(`created ${jid}`);
      }),
  },
  passwd: {
    usage: 'starling passwd USER@HOST [--keep-sessions] [--password-file FILE] [--config FILE]',
    summary: "Change an account's password. On a running server the account's sessions end (<reset/>, they log in again " + 'with the new password); --keep-sessions leaves them.',
    options: { ...passwordOptions, 'keep-sessions': { type: 'boolean' } },
    run: async (args, values) =>
      (await onRunningServer(values, registry, (server) => passwdOnServer(server, requireArg(args, 'USER@HOST'), values))) ??
      withAccounts(values, async (accounts) => {
        const jid = accounts.userJid(requireArg(args, 'USER@HOST'));
        if (!(await accounts.exists(jid))) throw new AccountError('item-not-found', `there is no account ${jid}`);
        await accounts.setPassword(jid, await readPassword(values['password-file'] as string | undefined, newPassword(`New password for ${jid}: `)));
        console.log(`password of ${jid} changed`);
      }),
  },
  deluser: {
    usage: 'starling deluser USER@HOST [--config FILE]',
    summary: "Delete an account and everything it owns (roster, offline messages, archive, ...). On a running server the account's sessions end (<not-authorized/>).",
    options: configOption,
    run: async (args, values) =>
      (await onRunningServer(values, registry, (server) => deleteOnServer(server, requireArg(args, 'USER@HOST')))) ??
      withAccounts(values, async (accounts) => {
        const jid = accounts.userJid(requireArg(args, 'USER@HOST'));
        await accounts.delete(jid);
        console.log(`deleted ${jid}`);
      }),
  },
  listusers: {
    usage: 'starling listusers HOST [--config FILE]',
    summary: 'List the accounts of a host, one per line.',
    options: configOption,
    run: (args, values) =>
      withAccounts(values, async (accounts, config, storage) => {
        const host = requireArg(args, 'HOST').toLowerCase();
        if (!config.hostOptions.has(host)) throw new AccountError('host-unknown', `${host} is not a host of this server`);
        const users = await accounts.list(host);
        for (const user of users) console.log(user);
        if (users.length === 0) console.error(`no accounts on ${host} in ${storage.location}`);
      }),
  },
  ...serverCommands(registry),
  ...pieCommands(registry),
  check: {
    usage: 'starling check [--dns-server ADDRESS[:PORT][,...]] [--config FILE]',
    summary:
      'Validate the configuration, certificates and storage without serving, and look up the DNS SRV records of each host ' +
      '(with the system resolver, or --dns-server). Prints OK or the problems (exit 1); warnings do not fail.',
    options: { ...configOption, 'dns-server': { type: 'string' } },
    run: async (_args, values) => runCheck(values.config as string | undefined, registry(), { dnsServers: (values['dns-server'] as string | undefined)?.split(',') }),
  },
  version: {
    usage: 'starling version',
    summary: 'Print the version.',
    run: async () => {
      console.log(`starling ${VERSION} (node ${process.version})`);
      return 0;
    },
  },
};

function registry(): ModuleRegistry {
  return new ModuleRegistry(builtinModules);
}

/** What the modules add (`starling invite` from the register module, ...). */
const fromModules = moduleCommands(builtinModules, Object.keys(commands), registry);

function requireArg(args: string[], name: string): string {
  const value = args[0];
  if (!value) throw new UsageError(`missing ${name}`);
  return value;
}

class UsageError extends Error {}

async function withAccounts(
  values: Record<string, string | boolean | undefined>,
  fn: (accounts: Awaited<ReturnType<typeof openAccounts>>['accounts'], config: LoadedConfig, storage: Storage) => Promise<void>,
): Promise<number> {
  const config = loadConfig(values.config as string | undefined, registry());
  const { storage, accounts } = await openAccounts(config);
  try {
    await fn(accounts, config, storage);
    return 0;
  } finally {
    await storage.close();
  }
}

async function start(configPath: string | undefined): Promise<number> {
  const config = loadConfig(configPath, registry());
  const log = createLogger(config.log);
  const server = await startServer(config, registry(), log);
  for (const a of server.addresses) {
    log.info({ address: a.address, port: a.port, tls: a.directTls ? 'direct' : 'starttls' }, 'c2s listening');
  }
  log.info(
    { version: VERSION, node: process.version, dataDir: config.dataDir, storage: server.core.storage.location, hosts: [...config.hostOptions.keys()], config: config.file },
    'Starling is running',
  );
  const missing = missingLaunchFlags();
  if (missing.length > 0) {
    log.info(
      { missing },
      'node started without the V8 flags the launchers pass (npm start, the starling command, contrib/): a busy archive runs slower and idle memory is not given back',
    );
  }
  const collector = new IdleCollector({ log });
  // The process never goes down for one bad code path: log it and keep serving.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection'));
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down');
    collector.stop();
    void server.stop().then(() => {
      log.info('stopped');
      log.flush?.();
      setTimeout(() => process.exit(0), 50).unref();
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // SIGHUP: as `starling reload` (src/reload.ts).
  process.on('SIGHUP', () => {
    server.reload().then(
      (report) => {
        for (const problem of report.problems) log.warn(`certificate problem: ${problem}`);
        log.info({ applied: report.applied, live: report.live, restart: report.restart }, 'reloaded (SIGHUP)');
      },
      (err: unknown) => log.error(err instanceof ConfigError ? `${err.message}\nnothing was reloaded` : { err }, 'reload failed'),
    );
  });
  return new Promise<number>(() => {}); // runs until a signal
}

function help(name?: string): void {
  const named = name ? (commands[name] ?? fromModules[name]) : undefined;
  if (named) {
    console.log(`usage: ${named.usage}\n\n${named.summary}${named.module ? `\n\n(from the ${named.module} module)` : ''}`);
    return;
  }
  console.log('usage: starling <command> [options]\n\ncommands:');
  for (const [n, c] of Object.entries(commands)) console.log(`  ${n.padEnd(10)} ${c.summary}`);
  if (Object.keys(fromModules).length > 0) console.log('\ncommands of modules:');
  for (const [n, c] of Object.entries(fromModules)) console.log(`  ${n.padEnd(10)} ${c.summary} (${c.module})`);
  console.log('\n`starling <command> --help` tells more.');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    help(rest[0]);
    return name ? 0 : 1;
  }
  if (name === '--version') return commands.version!.run([], {});
  const command = commands[name] ?? fromModules[name];
  if (!command) {
    console.error(`starling: unknown command "${name}"`);
    help();
    return 1;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    help(name);
    return 0;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: command.options ?? {}, allowPositionals: true });
    return await command.run(positionals, values);
  } catch (err) {
    if (err instanceof ConfigError) console.error(err.message);
    else if (err instanceof AccountError || err instanceof UsageError || err instanceof OperatorError || err instanceof CommandError)
      console.error(`starling ${name}: ${err.message}`);
    else if ((err as NodeJS.ErrnoException).code?.startsWith?.('ERR_PARSE_ARGS')) console.error(`starling ${name}: ${(err as Error).message}\nusage: ${command.usage}`);
    else console.error(`starling ${name}: ${(err as Error).stack ?? err}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);

// What `starling <command>` runs: the core commands (src/cli.ts) and those modules contribute
// (defineModule({ commands })), the latter wrapped here with their CommandContext.
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { ControlClient } from '../control/client.js';
import type { ModuleDefinition } from '../module-api/define.js';
import type { CommandContext, CommandOptions, ModuleCommand } from '../module-api/commands.js';
import type { ModuleRegistry } from '../module-api/loader.js';
import { openAccounts } from '../server.js';
import type { Accounts } from '../auth/accounts.js';
import type { Storage } from '../storage/database.js';

export type OptionValues = Record<string, string | boolean | undefined>;

export interface Command {
  usage: string;
  summary: string;
  options?: CommandOptions;
  /** The module that contributes it, for a module's command. */
  module?: string;
  run(args: string[], values: OptionValues): Promise<number>;
}

export const configOption = { config: { type: 'string' as const, short: 'c' } };

const NAME = /^[a-z][a-z0-9-]*$/;

/**
 * The commands of `definitions`, keyed by name. A name that is not lowercase-and-dashes, that a
 * core command (`reserved`) has, or that two modules give, is a programming error: thrown.
 */
export function moduleCommands(definitions: readonly ModuleDefinition[], reserved: readonly string[], registry: () => ModuleRegistry): Record<string, Command> {
  const out: Record<string, Command> = {};
  for (const definition of definitions) {
    for (const command of definition.commands ?? []) {
      if (!NAME.test(command.name)) throw new Error(`module "${definition.name}": "${command.name}" is not a command name (a-z, 0-9, -)`);
      if (reserved.includes(command.name)) throw new Error(`module "${definition.name}": "${command.name}" is a core command`);
      const other = out[command.name];
      if (other) throw new Error(`modules "${other.module}" and "${definition.name}" both add the command "${command.name}"`);
      out[command.name] = {
        usage: command.usage,
        summary: command.description,
        options: { ...configOption, ...command.options },
        module: definition.name,
        run: (args, values) => runModuleCommand(command, args, values, registry),
      };
    }
  }
  return out;
}

async function runModuleCommand(command: ModuleCommand, args: string[], values: OptionValues, registry: () => ModuleRegistry): Promise<number> {
  const ctx = new CliCommandContext(values, registry);
  try {
    return (await command.run(args, ctx)) ?? 0;
  } finally {
    await ctx.dispose();
  }
}

/** Opens what a command asks for, once, and closes it after. */
export class CliCommandContext implements CommandContext {
  private loaded: LoadedConfig | undefined;
  private opened: Promise<{ storage: Storage; accounts: Accounts }> | undefined;
  private control: Promise<ControlClient | undefined> | undefined;

  constructor(
    readonly values: OptionValues,
    private readonly registry: () => ModuleRegistry,
  ) {}

  config(): LoadedConfig {
    return (this.loaded ??= loadConfig(this.values.config as string | undefined, this.registry()));
  }

  async storage(): Promise<Storage> {
    return (await (this.opened ??= openAccounts(this.config()))).storage;
  }

  async accounts(): Promise<Accounts> {
    return (await (this.opened ??= openAccounts(this.config()))).accounts;
  }

  runningServer(): Promise<ControlClient | undefined> {
    return (this.control ??= ControlClient.connect(this.config().dataDir));
  }

  async dispose(): Promise<void> {
    const control = this.control;
    const opened = this.opened;
    this.control = this.opened = undefined;
    if (control) (await control.catch(() => undefined))?.close();
    if (opened) await (await opened.catch(() => undefined))?.storage.close();
  }
}

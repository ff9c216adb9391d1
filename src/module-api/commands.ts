// Commands a module adds to `starling` (defineModule({ commands })): listed in `starling help`,
// run by the CLI with a context that opens what the command needs on first use.
import type { Accounts } from '../auth/accounts.js';
import type { LoadedConfig } from '../config/load.js';
import type { ControlClient } from '../control/client.js';
import type { Storage } from '../storage/database.js';

/** Options as node:util parseArgs takes them; --config (-c) is always there too. */
export type CommandOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface CommandContext {
  /** The parsed options, by long name. */
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  /** The configuration (--config, else $STARLING_CONFIG, else ./config.toml, else defaults), loaded on first use. */
  config(): LoadedConfig;
  /** The configured storage, opened on first use and closed when the command ends. */
  storage(): Promise<Storage>;
  /** Accounts over that storage. */
  accounts(): Promise<Accounts>;
  /** The server running with this configuration's data directory, if one is (its control channel). */
  runningServer(): Promise<ControlClient | undefined>;
}

export interface ModuleCommand {
  /** `starling <name>`: lowercase letters, digits and dashes. */
  name: string;
  /** One line: `starling name ARG [--option VALUE] [--config FILE]`. */
  usage: string;
  /** What it does, for `starling help` and `starling <name> --help`. */
  description: string;
  options?: CommandOptions;
  /** Exit status: 0 (or nothing) for success. Throw CommandError for a one-line failure. */
  run(args: string[], ctx: CommandContext): Promise<number | void>;
}

/** A failure the CLI prints as one line, `starling <command>: <message>`, with exit status 1 (no stack trace). */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

/** The first positional argument, or a CommandError naming what is missing. */
export function requireArg(args: readonly string[], name: string): string {
  const value = args[0];
  if (!value) throw new CommandError(`missing ${name}`);
  return value;
}

/** A whole-number option: its default when absent, a CommandError when not a number >= min. */
export function countOption(value: string | boolean | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new CommandError(`${name} must be a whole number of at least ${min}`);
  return n;
}

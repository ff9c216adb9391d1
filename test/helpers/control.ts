// For tests of the control channel: accounts created in-process on a configuration's storage
// (faster than `starling adduser` per account), and waiting for a `starling start` to exit.
import { loadConfig } from '../../src/config/load.js';
import { makeJid } from '../../src/jid.js';
import { ModuleRegistry } from '../../src/module-api/loader.js';
import { openAccounts } from '../../src/server.js';
import { builtinModules } from '../../modules/index.js';
import type { RunningStarling } from './cli.js';

export async function addUsers(config: string, password: string, ...users: string[]): Promise<void> {
  const { storage, accounts } = await openAccounts(loadConfig(config, new ModuleRegistry(builtinModules)));
  try {
    for (const user of users) await accounts.create(makeJid(user, 'localhost'), password);
  } finally {
    await storage.close();
  }
}

/** Sends `signal` and resolves with the exit code. */
export function stopped(server: RunningStarling, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const exit = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
  server.child.kill(signal);
  return exit;
}

// `starling export` and `starling import`: account data as XEP-0227 files (src/pie).
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { CommandError, requireArg } from '../module-api/commands.js';
import type { ModuleRegistry } from '../module-api/loader.js';
import { OperatorError, reasonOf } from '../operator-error.js';
import { exportTo } from '../pie/export.js';
import { readPieFile, type PieUser } from '../pie/files.js';
import { ImportProblem, importUser } from '../pie/import.js';
import { openPieStores } from '../pie/stores.js';
import { CliCommandContext, configOption, type Command, type OptionValues } from './command.js';

async function withContext(values: OptionValues, registry: () => ModuleRegistry, fn: (ctx: CliCommandContext) => Promise<number>): Promise<number> {
  const ctx = new CliCommandContext(values, registry);
  try {
    return await fn(ctx);
  } finally {
    await ctx.dispose();
  }
}

/** The files to import: those named; of a directory, each *.xml file no other one there includes. */
function importFiles(args: string[]): string[] {
  const files: string[] = [];
  for (const arg of args) {
    if (!existsSync(arg)) throw new OperatorError(`${arg}: no such file or directory`);
    if (!statSync(arg).isDirectory()) {
      files.push(path.resolve(arg));
      continue;
    }
    const all = readdirSync(arg)
      .filter((f) => f.endsWith('.xml'))
      .sort()
      .map((f) => path.resolve(arg, f));
    const included = new Set<string>();
    for (const f of all) {
      const seen = new Set<string>();
      readPieFile(f, seen);
      for (const s of seen) if (s !== f) included.add(s);
    }
    files.push(...all.filter((f) => !included.has(f)));
  }
  return files;
}

export function pieCommands(registry: () => ModuleRegistry): Record<string, Command> {
  return {
    export: {
      usage: 'starling export FILE|DIRECTORY [HOST] [--config FILE]',
      summary:
        'Write the accounts (of HOST, else of every host) as XEP-0227 data: SCRAM keys, rosters, vCards, private XML, PEP nodes ' +
        '(bookmarks among them), offline messages, message archives. To FILE, or into DIRECTORY (an existing one, or a name ending in /): ' +
        'index.xml including one HOST.xml per host. The files are readable by their owner only.',
      options: configOption,
      run: (args, values) =>
        withContext(values, registry, async (ctx) => {
          const target = requireArg(args, 'FILE|DIRECTORY');
          const config = ctx.config();
          const host = args[1]?.toLowerCase();
          if (host && !config.hostOptions.has(host)) throw new CommandError(`${host} is not a host of this server`);
          const hosts = host ? [host] : [...config.hostOptions.keys()];
          const directory = target.endsWith('/') || (existsSync(target) && statSync(target).isDirectory());
          const stores = await openPieStores(await ctx.storage(), config, registry());
          try {
            const result = await exportTo(target, directory, hosts, (await ctx.accounts()).store, stores);
            console.log(`exported ${result.accounts} account${result.accounts === 1 ? '' : 's'} of ${hosts.join(', ')} to ${result.files.join(', ')}`);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code && /^E[A-Z]+$/.test(code)) throw new OperatorError(`${target}: ${reasonOf(err)}`);
            throw err;
          }
          return 0;
        }),
    },
    import: {
      usage: 'starling import FILE|DIRECTORY... [--config FILE]',
      summary:
        "Read accounts from XEP-0227 files (as `starling export`, Prosody's migrator or ejabberd's export_piefxis write them; " +
        'includes followed; of a DIRECTORY, each .xml file that no other one includes) into the storage, with the server stopped. ' +
        'A plaintext password becomes SCRAM keys. An account that exists already is named and left as it is (exit 1).',
      options: configOption,
      run: (args, values) =>
        withContext(values, registry, async (ctx) => {
          if (args.length === 0) throw new CommandError('missing FILE');
          if (await ctx.runningServer()) throw new CommandError(`a server is running with the data directory ${ctx.config().dataDir}: stop it first`);
          const users: PieUser[] = [];
          for (const file of importFiles(args)) users.push(...readPieFile(file));
          const config = ctx.config();
          const accounts = await ctx.accounts();
          const stores = await openPieStores(await ctx.storage(), config, registry());
          let imported = 0;
          let failed = 0;
          for (const u of users) {
            try {
              const outcome = await importUser(accounts, stores, u);
              if ('imported' in outcome) imported++;
              else {
                failed++;
                console.error(`${outcome.exists}: exists already; not imported (${u.file})`);
              }
            } catch (err) {
              // Anything else (the storage failing) stops the import: one line, the accounts before it stay imported.
              if (!(err instanceof ImportProblem)) throw new OperatorError(`${u.name}@${u.host}: importing failed: ${reasonOf(err)} (${imported} imported before it)`);
              failed++;
              console.error(`${u.name}@${u.host}: not imported: ${err.message} (${u.file})`);
            }
          }
          console.log(`imported ${imported} account${imported === 1 ? '' : 's'}${failed > 0 ? `; ${failed} not imported` : ''}`);
          return failed > 0 ? 1 : 0;
        }),
    },
  };
}

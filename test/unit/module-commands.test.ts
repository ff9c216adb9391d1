// defineModule({ commands }): how the CLI gathers the commands modules contribute.
import t from 'tap';
import { builtinModules } from '../../modules/index.js';
import { moduleCommands } from '../../src/cli/command.js';
import { CommandError, countOption, type ModuleCommand } from '../../src/module-api/commands.js';
import { defineModule, type ModuleDefinition } from '../../src/module-api/define.js';
import { ModuleRegistry } from '../../src/module-api/loader.js';

const registry = () => new ModuleRegistry(builtinModules);
const command = (name: string): ModuleCommand => ({ name, usage: `starling ${name}`, description: name, run: async () => 0 });
const mod = (name: string, ...commands: ModuleCommand[]) => defineModule({ name, setup() {}, commands }) as ModuleDefinition;

t.test('the register module contributes `starling invite`, with --config added', async (t) => {
  const commands = moduleCommands(builtinModules, ['start', 'adduser'], registry);
  t.ok(commands.invite, 'invite is there');
  t.equal(commands.invite!.module, 'register');
  t.match(commands.invite!.usage, /^starling invite HOST/);
  t.ok(commands.invite!.options?.config, '--config is always an option');
  t.ok(commands.invite!.options?.uses);
});

t.test('names are checked', async (t) => {
  t.throws(() => moduleCommands([mod('a', command('start'))], ['start'], registry), /"start" is a core command/);
  t.throws(() => moduleCommands([mod('a', command('x')), mod('b', command('x'))], [], registry), /modules "a" and "b" both add the command "x"/);
  t.throws(() => moduleCommands([mod('a', command('Bad Name'))], [], registry), /not a command name/);
  t.same(Object.keys(moduleCommands([mod('a', command('one'), command('two-2'))], [], registry)), ['one', 'two-2']);
});

t.test('countOption', async (t) => {
  t.equal(countOption(undefined, '--n', 7, 1), 7);
  t.equal(countOption(' 12 ', '--n', 7, 1), 12);
  t.throws(() => countOption('0', '--n', 7, 1), CommandError);
  t.throws(() => countOption('1.5', '--n', 7, 0), /--n must be a whole number of at least 0/);
  t.throws(() => countOption(true, '--n', 7, 0), CommandError);
});

// The `starling` command run as a real process from another directory than its configuration.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { configDir, runStarling } from '../helpers/cli.js';

t.test('relative paths are relative to the configuration file, not the current directory', async (t) => {
  const { dir: confDir, config } = configDir(t, 'relative', () => 'data_dir = "state"\n[accounts]\nmin_password_length = 8\n');
  const elsewhere = configDir(t, 'elsewhere', () => '').dir;
  const passwordFile = path.join(confDir, 'password');
  writeFileSync(passwordFile, 'a good password\n');
  let r = runStarling(['adduser', 'erin@localhost', '--password-file', passwordFile, '--config', config], { cwd: confDir });
  t.equal(r.code, 0, r.err);
  r = runStarling(['listusers', 'localhost', '--config', config], { cwd: elsewhere });
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'erin\n', 'run from another directory, it lists the same accounts');
  t.notOk(existsSync(path.join(elsewhere, 'state')), 'no state directory made in the current directory');
  t.ok(existsSync(path.join(confDir, 'state', 'starling.db')), 'the database is beside the configuration');
});

t.test('an empty account list says which database it read', async (t) => {
  const { dir, config } = configDir(t, 'empty', () => 'data_dir = "data"\n');
  const r = runStarling(['listusers', 'localhost', '--config', config]);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, '', 'nothing on standard output');
  t.match(r.err, `no accounts on localhost in sqlite:${path.join(dir, 'data', 'starling.db')}`);
});

// The control socket over a server's life: absent before, removed on a clean stop, left by a
// killed server and then replaced; a second server on the same data directory does not start.
import { existsSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { configDir, loopbackServerToml, runStarling, startStarling } from '../helpers/cli.js';
import { addUsers, stopped } from '../helpers/control.js';

const { dir, config } = configDir(t, 'control-life', loopbackServerToml);
const socket = path.join(dir, 'data', 'control.sock');
const starling = (args: string[], input?: string) => runStarling([...args, '--config', config], { cwd: dir, input });

t.test('no server: status exits 3 with one line', async (t) => {
  const r = starling(['status']);
  t.equal(r.code, 3);
  t.equal(r.err, `starling status: not running (no server with the data directory ${path.join(dir, 'data')})\n`);
});

t.test('a clean stop removes the socket', async (t) => {
  const server = await startStarling(config, { cwd: dir });
  t.teardown(() => void server.child.kill('SIGKILL'));
  t.ok(existsSync(socket));
  t.equal(await stopped(server), 0);
  t.notOk(existsSync(socket), 'removed');
});

t.test('a socket left by a killed server is replaced; a live one stops a second server', async (t) => {
  await addUsers(config, 'a long enough password', 'dave');
  const first = await startStarling(config, { cwd: dir });
  t.teardown(() => void first.child.kill('SIGKILL'));
  const second = await startStarling(config, { cwd: dir }).catch((err: Error) => err);
  t.type(second, Error, 'a second server on the same data directory does not start');
  t.match((second as Error).message, /another Starling process is running with this data directory/);

  await stopped(first, 'SIGKILL');
  t.ok(existsSync(socket), 'the killed server left its socket');
  const r = starling(['deluser', 'dave@localhost']);
  t.equal(r.code, 0, `a stale socket: deluser works on the database: ${r.err}`);
  t.equal(r.out, 'deleted dave@localhost\n', 'and says nothing about the socket');

  const third = await startStarling(config, { cwd: dir });
  t.teardown(() => void third.child.kill('SIGKILL'));
  t.equal(starling(['status']).code, 0, 'the new server took the socket over');
  t.equal(await stopped(third), 0);
});

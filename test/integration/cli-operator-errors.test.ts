// Operator mistakes get one line naming the thing (port, path, URL, file) and a non-zero exit:
// `starling` run as a real process.
import net from 'node:net';
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { LOOPBACK_HTTP_TOML, closedPort, configDir, runStarling } from '../helpers/cli.js';

const listeners = (port: number) => `[c2s]
listeners = [{ interfaces = ["127.0.0.1"], port = ${port}, direct_tls = false }]
[s2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }]
${LOOPBACK_HTTP_TOML}`;

/** One line on stderr, no stack trace, a non-zero exit. */
function oneLine(t: Test, r: { code: number | null; err: string }, pattern: RegExp): void {
  t.not(r.code, 0, 'non-zero exit');
  t.not(r.code, null, 'it ended on its own');
  t.match(r.err, pattern);
  t.notMatch(r.err, /\n\s+at /, 'no stack trace');
  t.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
}

t.test('the c2s port is in use', async (t) => {
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const { port } = busy.address() as net.AddressInfo;
  const { config } = configDir(t, 'busy', (dir) => `data_dir = "${dir}/data"\n${listeners(port)}`);
  const r = runStarling(['start', '--config', config], { timeoutMs: 60_000 });
  oneLine(t, r, new RegExp(`^starling start: c2s listener 127\\.0\\.0\\.1:${port}: address already in use`));
});

t.test('the data directory is read-only', async (t) => {
  let dataDir: string;
  if (process.getuid?.() === 0)
    dataDir = '/sys/starling-data'; // root writes anywhere but on a read-only file system
  else {
    const { dir } = configDir(t, 'ro', () => '');
    mkdirSync(path.join(dir, 'ro'));
    chmodSync(path.join(dir, 'ro'), 0o555);
    dataDir = path.join(dir, 'ro', 'data');
  }
  const { config } = configDir(t, 'readonly', () => `data_dir = "${dataDir}"\n${listeners(0)}`);
  const r = runStarling(['start', '--config', config], { timeoutMs: 60_000 });
  oneLine(t, r, new RegExp(`^starling start: data directory ${dataDir}: read-only`));
});

t.test('PostgreSQL is unreachable at start', async (t) => {
  const url = `postgres://postgres@127.0.0.1:${await closedPort()}/test`;
  const { config } = configDir(t, 'pg', (dir) => `data_dir = "${dir}/data"\n${listeners(0)}[storage]\ndriver = "postgres"\npostgres_url = "${url}"\n`);
  const r = runStarling(['start', '--config', config], { timeoutMs: 60_000 });
  oneLine(t, r, new RegExp(`^starling start: storage \\(postgres ${url.replace(/[.]/g, '\\.')}\\): .*ECONNREFUSED`));
});

t.test('a --password-file that does not exist', async (t) => {
  const { dir, config } = configDir(t, 'pwfile', (dir) => `data_dir = "${dir}/data"\n`);
  const missing = path.join(dir, 'no-such-file');
  const r = runStarling(['adduser', 'frank@localhost', '--password-file', missing, '--config', config], { timeoutMs: 60_000 });
  oneLine(t, r, new RegExp(`^starling adduser: --password-file ${missing}: no such file`));
});

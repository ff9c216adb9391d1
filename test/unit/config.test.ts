// Configuration: the example file documents every option with its default, and bad input is
// reported with the key path.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse as parseToml } from 'smol-toml';
import { ConfigError, parseConfigText, validateConfig } from '../../src/config/load.js';
import { ConfigSchema, HostOptions } from '../../src/config/schema.js';
import { ModuleRegistry } from '../../src/module-api/loader.js';
import { builtinModules } from '../../modules/index.js';

const registry = new ModuleRegistry(builtinModules);
const example = readFileSync(new URL('../../config.example.toml', import.meta.url), 'utf8');

/** Every key path a zod object schema defines (records and arrays are leaves). */
function keyPaths(schema: unknown, prefix = ''): string[] {
  let s = schema as { def?: { innerType?: unknown }; shape?: Record<string, unknown> };
  while (s?.def?.innerType) s = s.def.innerType as typeof s;
  if (!s?.shape) return [prefix];
  return Object.entries(s.shape).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

function has(obj: unknown, path: string): boolean {
  let v: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || !(part in v)) return false;
    v = (v as Record<string, unknown>)[part];
  }
  return true;
}

t.test('config.example.toml loads and equals the defaults', async (t) => {
  const fromExample = parseConfigText(example, 'config.example.toml', registry);
  const defaults = validateConfig({}, '(defaults)', registry);
  // The raw global module tables differ (empty vs written out); their parsed values are in hostOptions.
  const strip = (c: typeof defaults) => ({ ...c, file: '', modules: {} });
  t.same(strip(fromExample), strip(defaults), 'every value in the example is the default');
});

t.test('config.example.toml documents every option', async (t) => {
  const raw = parseToml(example);
  for (const path of keyPaths(ConfigSchema).filter((p) => p !== 'hosts' && p !== 'modules')) {
    t.ok(has(raw, path), `${path} is in config.example.toml`);
  }
  for (const name of registry.names()) {
    for (const path of keyPaths(registry.schema(name)).filter(Boolean)) {
      t.ok(has(raw, `modules.${name}.${path}`), `modules.${name}.${path} is in config.example.toml`);
    }
  }
});

t.test('a misspelt key is reported with its path and a suggestion', async (t) => {
  const err = t.throws(() => parseConfigText('[storage]\ndriverr = "sqlite"\n', 'bad.toml', registry)) as ConfigError;
  t.ok(err instanceof ConfigError);
  t.match(err.message, /bad\.toml/);
  t.match(err.message, /storage\.driverr: unknown key \(did you mean "driver"\?\)/);
});

t.test('a bad value says what was expected', async (t) => {
  const err = t.throws(() => parseConfigText('[c2s]\nauth_timeout = "soon"\n', 'bad.toml', registry)) as ConfigError;
  t.match(err.message, /c2s\.auth_timeout: .*number.*"soon"/);
});

t.test('TOML syntax errors give the line', async (t) => {
  const err = t.throws(() => parseConfigText('data_dir = \n', 'bad.toml', registry)) as ConfigError;
  t.match(err.message, /line 1/);
});

t.test('per-host overrides merge over the global options', async (t) => {
  const c = parseConfigText(`[accounts]\nmin_password_length = 10\n[hosts."Example.ORG".accounts]\nmax_sessions_per_user = 3\n[hosts."other.example"]\n`, 'hosts.toml', registry);
  t.same([...c.hostOptions.keys()], ['example.org', 'other.example'], 'domains are prepared');
  t.equal(c.hostOptions.get('example.org')!.accounts.max_sessions_per_user, 3);
  t.equal(c.hostOptions.get('example.org')!.accounts.min_password_length, 10, 'global value kept');
  t.equal(c.hostOptions.get('other.example')!.accounts.max_sessions_per_user, 10);
});

t.test('admins: global, overridden per host, bare JIDs only', async (t) => {
  const c = parseConfigText(`admins = ["root@example.org"]\n[hosts."example.org"]\n[hosts."other.example"]\nadmins = ["boss@other.example"]\n`, 'admins.toml', registry);
  t.same(c.hostOptions.get('example.org')!.admins, ['root@example.org']);
  t.same(c.hostOptions.get('other.example')!.admins, ['boss@other.example']);
  const err = t.throws(() => parseConfigText(`admins = ["root@example.org/laptop"]\n`, 'admins.toml', registry)) as ConfigError;
  t.match(err.message, /admins\[0\]: expected a bare JID/);
});

t.test('a bad host override names the host', async (t) => {
  const err = t.throws(() => parseConfigText(`[hosts."a.example".accounts]\nmin_pasword_length = 3\n`, 'h.toml', registry)) as ConfigError;
  t.match(err.message, /hosts\.a\.example|hosts\."a\.example"/);
  t.match(err.message, /min_pasword_length: unknown key/);
});

t.test('module options are checked by the module schema', async (t) => {
  const err = t.throws(() => parseConfigText(`[modules.sasl]\nmechanisms = ["MD5"]\n`, 'm.toml', registry)) as ConfigError;
  t.match(err.message, /modules\.sasl\.mechanisms\[0\]/);
  const unknown = t.throws(() => parseConfigText(`modules_enabled = ["sasl", "nope"]\n`, 'm.toml', registry)) as ConfigError;
  t.match(unknown.message, /no module named "nope"/);
});

t.test('env: values come from the environment', async (t) => {
  process.env.STARLING_TEST_DB = 'postgres://u:p@db/x';
  const c = parseConfigText(`[storage]\ndriver = "postgres"\npostgres_url = "env:STARLING_TEST_DB"\n`, 'e.toml', registry);
  t.equal(c.storage.postgres_url, 'postgres://u:p@db/x');
  const err = t.throws(() => parseConfigText(`[storage]\npostgres_url = "env:STARLING_UNSET_VAR"\n`, 'e.toml', registry)) as ConfigError;
  t.match(err.message, /storage\.postgres_url: environment variable STARLING_UNSET_VAR is not set/);
});

t.test('modules.external_services: the TURN secret from the environment, services checked', async (t) => {
  process.env.STARLING_TEST_TURN_SECRET = 's3cret';
  const c = parseConfigText(
    `[modules.external_services]\nsecret = "env:STARLING_TEST_TURN_SECRET"\nservices = [{ type = "turn", host = "turn.example.org", transport = "udp" }]\n`,
    'x.toml',
    registry,
  );
  const options = c.hostOptions.get('localhost')!.modules.external_services;
  t.equal(options.secret, 's3cret');
  t.equal(options.ttl, 86400);
  t.same(options.services, [{ type: 'turn', host: 'turn.example.org', port: 3478, transport: 'udp' }]);
  const err = t.throws(() => parseConfigText(`[modules.external_services]\nservices = [{ type = "sip", host = "x" }]\n`, 'x.toml', registry)) as ConfigError;
  t.match(err.message, /modules\.external_services\.services\[0\]\.type: Invalid option/);
});

t.test('postgres needs a URL', async (t) => {
  const err = t.throws(() => parseConfigText(`[storage]\ndriver = "postgres"\n`, 'p.toml', registry)) as ConfigError;
  t.match(err.message, /storage\.postgres_url: required/);
});

t.test('HostOptions keys are all global keys too', async (t) => {
  for (const k of Object.keys(HostOptions.shape)) t.ok(k in ConfigSchema.shape, k);
});

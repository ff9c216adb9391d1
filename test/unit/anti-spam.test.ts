// anti_spam's pure parts: the token bucket (of new accounts, reports, rate limits) and the bounded memory of whom a
// user wrote to.
import t from 'tap';
import { TokenBucket } from '../../src/token-bucket.js';
import { Correspondents } from '../../modules/anti_spam/strangers.js';
import { builtinModules } from '../../modules/index.js';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { ModuleRegistry } from '../../src/module-api/loader.js';

t.test('a bucket gives its burst, then its rate', async (t) => {
  const b = new TokenBucket({ rate: 2, burst: 3 }, 0);
  t.same([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false], 'the burst');
  t.notOk(b.take(400), 'less than a token back after 0.4 s at 2/s');
  t.ok(b.take(500), 'one token back after 0.5 s');
  t.notOk(b.full(500));
  t.ok(b.full(5000), 'full again after a while');
  t.same([b.take(5000), b.take(5000), b.take(5000), b.take(5000)], [true, true, true, false], 'never more than the burst');
});

t.test('correspondents: written to for a while, presence until it ends', async (t) => {
  const c = new Correspondents(1000);
  c.wrote('u', 'a', 0);
  t.ok(c.knows('u', 'a', 999));
  t.notOk(c.knows('u', 'a', 1000), 'forgotten after the time');
  t.notOk(c.knows('v', 'a', 0), 'per user');
  c.presence('u', 'room', true);
  t.ok(c.knows('u', 'room', 10_000_000), 'directed presence does not expire');
  c.presence('u', 'room', false);
  t.notOk(c.knows('u', 'room', 0));
  c.presence('u', 'room', true);
  c.gone('u');
  t.notOk(c.knows('u', 'room', 0), 'the last session gone: presence over');
  for (let i = 0; i < 600; i++) c.wrote('u', `p${i}`, 0);
  t.notOk(c.knows('u', 'p0', 0), 'bounded: the oldest go first');
  t.ok(c.knows('u', 'p599', 0));
  c.sweep(5000);
  t.notOk(c.knows('u', 'p599', 0));
});

t.test('block_strangers per host; on by default, with strangers allowed', async (t) => {
  const registry = new ModuleRegistry(builtinModules);
  const config = parseConfigText(
    `[modules.anti_spam]\nnew_account_hours = 12\n[hosts."a.example"]\n[hosts."b.example".modules.anti_spam]\nblock_strangers = true\n`,
    'h.toml',
    registry,
  );
  const a = config.hostOptions.get('a.example')!;
  const b = config.hostOptions.get('b.example')!;
  t.ok(a.modules_enabled.includes('anti_spam'), 'enabled by default');
  t.match(a.modules.anti_spam, { block_strangers: false, allow_local_users: false, new_account_hours: 12 });
  t.match(b.modules.anti_spam, { block_strangers: true, new_account_hours: 12 }, 'the host overrides one key, keeps the rest');
  const err = t.throws(() => parseConfigText(`[modules.anti_spam]\nblock_strangers = "yes"\n`, 'bad.toml', registry)) as ConfigError;
  t.match(err.message, /modules\.anti_spam\.block_strangers/);
});

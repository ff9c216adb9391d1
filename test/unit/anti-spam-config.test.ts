// [modules.anti_spam]: the defaults (rate limits on, no blocklist), and bad values named by
// their key path in one line.
import t from 'tap';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { ModuleRegistry } from '../../src/module-api/loader.js';
import { builtinModules } from '../../modules/index.js';

const registry = new ModuleRegistry(builtinModules);

t.test('on by default, with the documented limits and no blocklist', async (t) => {
  const c = parseConfigText('', 'a.toml', registry);
  t.ok(c.hostOptions.get('localhost')!.modules_enabled.includes('anti_spam'), 'enabled by default');
  const options = c.hostOptions.get('localhost')!.modules.anti_spam;
  t.match(options, { messages_per_second: 30, burst: 100, close_after: 50, s2s: { messages_per_second: 100 }, rtbl: [], rtbl_refresh: 600 });
});

t.test('blocklists and limits are checked', async (t) => {
  const c = parseConfigText(`[modules.anti_spam]\nrtbl = [ { service = "xmppbl.org", node = "muc_bans_sha256" } ]\n`, 'a.toml', registry);
  t.same(c.hostOptions.get('localhost')!.modules.anti_spam.rtbl, [{ service: 'xmppbl.org', node: 'muc_bans_sha256' }]);
  const service = t.throws(() => parseConfigText(`[modules.anti_spam]\nrtbl = [ { service = "xmppbl.org/res", node = "n" } ]\n`, 'a.toml', registry)) as ConfigError;
  t.match(service.message, /modules\.anti_spam\.rtbl\[0\]\.service.*pubsub service address/);
  t.notMatch(service.message, /\n\s+at /, 'no stack trace');
  const node = t.throws(() => parseConfigText(`[modules.anti_spam]\nrtbl = [ { service = "xmppbl.org" } ]\n`, 'a.toml', registry)) as ConfigError;
  t.match(node.message, /modules\.anti_spam\.rtbl\[0\]\.node/);
  const burst = t.throws(() => parseConfigText(`[modules.anti_spam.s2s]\nburst = 0\n`, 'a.toml', registry)) as ConfigError;
  t.match(burst.message, /modules\.anti_spam\.s2s\.burst/);
});

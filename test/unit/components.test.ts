// External components (XEP-0114): the handshake digest and its check, and the [components]
// configuration (domains, secrets from the environment, a domain that is a host).
import { createHash } from 'node:crypto';
import t from 'tap';
import { handshakeDigest, handshakeMatches } from '../../src/component/handshake.js';
import { ConfigError, parseConfigText } from '../../src/config/load.js';

t.test('the handshake is the hex SHA-1 of the stream id and the secret', async (t) => {
  const expected = createHash('sha1').update(Buffer.from('3BF96D32s3cr3t é', 'utf8')).digest('hex');
  t.equal(handshakeDigest('3BF96D32', 's3cr3t é'), expected, 'over the UTF-8 bytes, lowercase hex');
  t.ok(handshakeMatches(expected, '3BF96D32', 's3cr3t é'), 'the digest matches');
  t.ok(handshakeMatches(` ${expected.toUpperCase()}\n`, '3BF96D32', 's3cr3t é'), 'hex in capitals and surrounding whitespace too');
  t.notOk(handshakeMatches(expected, '3BF96D33', 's3cr3t é'), 'not for another stream id');
  t.notOk(handshakeMatches(handshakeDigest('3BF96D32', 'other'), '3BF96D32', 's3cr3t é'), 'not with another secret');
  t.notOk(handshakeMatches(expected.slice(1), '3BF96D32', 's3cr3t é'), 'not a shorter string');
  t.notOk(handshakeMatches('', '3BF96D32', 's3cr3t é'), 'not an empty handshake');
});

t.test('[components]: secrets from the environment, defaults, and mistakes', async (t) => {
  process.env.STARLING_TEST_BOT_SECRET = 'from-env';
  t.teardown(() => delete process.env.STARLING_TEST_BOT_SECRET);
  const c = parseConfigText('[components."bot.example.org"]\nsecret = "env:STARLING_TEST_BOT_SECRET"\n[hosts."example.org"]\n', 'c.toml');
  t.same(c.components['bot.example.org'], { secret: 'from-env', replace: true, name: '' }, 'the secret comes from the environment; replace defaults to true');
  t.same(c.component_listener.interfaces, ['127.0.0.1', '::1'], 'the listener is on loopback by default');
  t.equal(c.component_listener.port, 5347);

  const missing = t.throws(() => parseConfigText('[components."bot.example.org"]\nsecret = "env:STARLING_TEST_NO_SUCH_VAR"\n', 'c.toml')) as ConfigError;
  t.match(missing.message, /components\."bot\.example\.org"\.secret: environment variable STARLING_TEST_NO_SUCH_VAR is not set/, 'an unset variable is named');
  const host = t.throws(() => parseConfigText('[components."example.org"]\nsecret = "x"\n[hosts."example.org"]\n', 'c.toml')) as ConfigError;
  t.match(host.message, /example\.org is a host of this server/, 'a host cannot be a component');
  const bad = t.throws(() => parseConfigText('[components."not a domain"]\nsecret = "x"\n', 'c.toml')) as ConfigError;
  t.match(bad.message, /not a valid domain/);
  const empty = t.throws(() => parseConfigText('[components."bot.example.org"]\nsecret = ""\n', 'c.toml')) as ConfigError;
  t.match(empty.message, /non-empty secret/);
});

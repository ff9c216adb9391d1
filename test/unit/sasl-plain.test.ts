// SASL PLAIN does the same password derivation for unknown users as for known ones, so its
// answer time cannot be used to find out which accounts exist.
import t from 'tap';
import { InternalAuthBackend, type DeriveSaltedPassword } from '../../src/auth/backend.js';
import { saltedPassword, deriveAllCredentials } from '../../src/auth/scram.js';
import { AccountStore } from '../../src/storage/accounts.js';
import { openStorage } from '../../src/storage/database.js';
import { plainFactory } from '../../modules/sasl/plain.js';
import type { ClientStream } from '../../src/sessions/session.js';

t.test('PLAIN runs PBKDF2 with the same cost for unknown users', async (t) => {
  const storage = await openStorage({ driver: 'sqlite', sqlitePath: ':memory:', sqliteSynchronous: 'normal', postgresUrl: '', postgresSchema: 'public', poolSize: 1 });
  t.teardown(() => storage.close());
  const store = new AccountStore(storage.db);
  await store.create('example.org', 'alice', await deriveAllCredentials('a good password', 5000));

  const calls: { hash: string; iterations: number; saltBytes: number }[] = [];
  const derive: DeriveSaltedPassword = (hash, password, salt, iterations) => {
    calls.push({ hash, iterations, saltBytes: salt.length });
    return saltedPassword(hash, password, salt, iterations);
  };
  const backend = new InternalAuthBackend(store, { derive, iterationsFor: () => 5000 });
  const stream = { host: 'example.org', secure: true } as unknown as ClientStream;
  const plain = plainFactory(backend, false);
  const attempt = async (user: string, password: string) => {
    calls.length = 0;
    const step = await plain.create(stream).start(Buffer.from(`\0${user}\0${password}`));
    return { kind: step.kind, calls: [...calls] };
  };

  const good = await attempt('alice', 'a good password');
  t.equal(good.kind, 'success');
  const known = await attempt('alice', 'a wrong password');
  t.equal(known.kind, 'failure');
  t.same(known.calls, [{ hash: 'sha256', iterations: 5000, saltBytes: 16 }], 'a known user: one PBKDF2');
  for (const [what, user, password] of [
    ['an unknown user', 'mallory', 'a wrong password'],
    ['an invalid username', 'bad user@', 'a wrong password'],
    ['a password that cannot be prepared', 'alice', 'bad\u0007password'],
  ] as const) {
    const r = await attempt(user, password);
    t.equal(r.kind, 'failure', what);
    t.same(r.calls, known.calls, `${what}: the same derivation as for a known user`);
  }
});

t.test('PLAIN checks an account that has SCRAM-SHA-1 keys only (imported from Prosody) against them', async (t) => {
  const storage = await openStorage({ driver: 'sqlite', sqlitePath: ':memory:', sqliteSynchronous: 'normal', postgresUrl: '', postgresSchema: 'public', poolSize: 1 });
  t.teardown(() => storage.close());
  const store = new AccountStore(storage.db);
  const sha1 = (await deriveAllCredentials('an old password', 4096)).filter((c) => c.mechanism === 'SCRAM-SHA-1');
  await store.create('example.org', 'bob', sha1);
  const backend = new InternalAuthBackend(store);
  t.equal(await backend.verifyPassword('example.org', 'bob', 'an old password'), true);
  t.equal(await backend.verifyPassword('example.org', 'bob', 'a wrong password'), false);
});

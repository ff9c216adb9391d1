// Creates the bench users in bulk, in the storage a Starling configuration names.
//
//   npx tsx test/bench/create-users.ts --config FILE --count N [--prefix bench] [--password X] [--unique-salts]
//
// The SCRAM credentials (SHA-1 and SHA-256, the configured scram_iterations) are derived once
// and stored for every user, so 5,000 users take seconds instead of 10,000 PBKDF2 runs; with
// --unique-salts every account goes through Accounts.create like `starling adduser`.
// Logging in costs the server the same either way (it runs PBKDF2 on every PLAIN login).
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config/load.js';
import { ModuleRegistry } from '../../src/module-api/loader.js';
import { builtinModules } from '../../modules/index.js';
import { openAccounts } from '../../src/server.js';
import { preparePassword } from '../../src/auth/accounts.js';
import { deriveAllCredentials } from '../../src/auth/scram.js';
import { makeJid } from '../../src/jid.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    config: { type: 'string' },
    count: { type: 'string', default: '5000' },
    prefix: { type: 'string', default: 'bench' },
    password: { type: 'string', default: 'bench-password' },
    host: { type: 'string', default: '' },
    'unique-salts': { type: 'boolean', default: false },
  },
});

const config = loadConfig(values.config, new ModuleRegistry(builtinModules));
const host = values.host || [...config.hostOptions.keys()][0]!;
const options = config.hostOptions.get(host);
if (!options) throw new Error(`${host} is not a host of this configuration`);
// One-off bulk load: no fsync per account (the server itself runs with the configured setting).
const { storage, accounts } = await openAccounts({ ...config, storage: { ...config.storage, sqlite_synchronous: 'normal' } });
const count = Number(values.count);
const started = Date.now();
let created = 0;
let existing = 0;
try {
  const shared = values['unique-salts'] ? undefined : await deriveAllCredentials(preparePassword(values.password!), options.accounts.scram_iterations);
  for (let i = 0; i < count; i++) {
    const jid = makeJid(`${values.prefix}${i}`, host);
    if (await accounts.store.exists(host, jid.local)) {
      existing++;
      continue;
    }
    if (shared) await accounts.store.create(host, jid.local, shared);
    else await accounts.create(jid, values.password!);
    created++;
  }
} finally {
  await storage.close();
}
console.log(
  `${created} users created, ${existing} existed (${values.prefix}0..${values.prefix}${count - 1}@${host}, ${options.accounts.scram_iterations} iterations) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);

// Existing installations keep their data: the tables modules kept before the store kinds (as
// their version-1 migrations created them, with rows in them) are copied into the store kinds'
// tables by the modules' migrations, read back through the stores, and dropped.
import t from 'tap';
import { sql } from 'kysely';
import blocking from '../../modules/blocking/index.js';
import last from '../../modules/last/index.js';
import mam from '../../modules/mam/index.js';
import mucMam from '../../modules/muc-mam/index.js';
import offline from '../../modules/offline/index.js';
import privateStorage from '../../modules/private/index.js';
import push from '../../modules/push/index.js';
import vcard from '../../modules/vcard/index.js';
import type { ModuleDefinition } from '../../src/module-api/define.js';
import { AccountStore } from '../../src/storage/accounts.js';
import { ArchiveStore } from '../../src/storage/archive/store.js';
import { tableExists } from '../../src/storage/migrations.js';
import { KeyvalStore, MapStore, text } from '../../src/storage/stores.js';
import { storeOnBothDatabases } from '../helpers/databases.js';

const H = 'x.example';
/** An archive id and its time. */
const ID = '01HQ2Z8X9V0000000000000000';

/** The old tables, with one row each, as the modules' version-1 migrations left them. */
const OLD_SCHEMA = [
  `create table vcard (host varchar(1023) not null, username varchar(1023) not null, vcard text not null, updated_at bigint not null)`,
  `insert into vcard values ('${H}', 'ann', '<vCard xmlns="vcard-temp"><FN>Ann</FN></vCard>', 1)`,
  `create table private_xml (host varchar(1023) not null, username varchar(1023) not null, namespace varchar(1023) not null, name varchar(1023) not null, xml text not null, size integer not null, updated_at bigint not null)`,
  `insert into private_xml values ('${H}', 'ann', 'urn:example', 'prefs', '<prefs xmlns="urn:example"/>', 28, 1)`,
  `create table blocklist_item (host varchar(1023) not null, username varchar(1023) not null, jid varchar(3071) not null)`,
  `insert into blocklist_item values ('${H}', 'ann', 'bad@y.example'), ('${H}', 'ann', 'y.example')`,
  `create table push_registration (host varchar(1023) not null, username varchar(1023) not null, service varchar(1023) not null, node varchar(1023) not null, form text, updated_at bigint not null)`,
  `insert into push_registration values ('${H}', 'ann', 'push.y.example', 'n1', null, 5)`,
  `insert into user_data values ('${H}', 'ann', 'last', 'logout', '{"at":7,"status":"bye"}', null)`,
  `create table archive_message (host varchar(1023) not null, username varchar(1023) not null, ts bigint not null, id varchar(32) not null, with_bare varchar(2047) not null, with_resource varchar(1023) not null, direction varchar(3) not null, stanza text not null)`,
  `insert into archive_message values ('${H}', 'ann', 1708423148859, '${ID}', 'bob@y.example', 'phone', 'in', '<message><body>hi</body></message>')`,
  `create table archive_prefs (host varchar(1023) not null, username varchar(1023) not null, default_mode varchar(8) not null, always_jids text not null, never_jids text not null)`,
  `insert into archive_prefs values ('${H}', 'ann', 'roster', '["bob@y.example"]', '[]')`,
  `create table muc_archive (service varchar(1023) not null, room varchar(1023) not null, ts bigint not null, id varchar(32) not null, with_bare varchar(2047) not null, with_resource varchar(1023) not null, direction varchar(3) not null, stanza text not null)`,
  `insert into muc_archive values ('rooms.${H}', 'lobby', 1708423148859, '${ID}', 'ann@${H}', 'Ann', 'in', '<message><body>hello</body></message>')`,
  `create table offline_message (host varchar(1023) not null, username varchar(1023) not null, seq integer not null, stanza text not null, created_at bigint not null)`,
  `insert into offline_message values ('${H}', 'ann', 2, '<message id="second"/>', 1000), ('${H}', 'ann', 1, '<message id="first"/>', 1000)`,
];

const MODULES = [vcard, privateStorage, blocking, push, last, mam, mucMam, offline] as ModuleDefinition[];

storeOnBothDatabases(t, 'legacy', async (t, storage) => {
  await new AccountStore(storage.db).create(H, 'ann', []);
  for (const statement of OLD_SCHEMA) await sql.raw(statement).execute(storage.db);
  const v1 = MODULES.filter((m) => m.name !== 'last').map((m) => `('${m.name}', 1, 'legacy', 0)`);
  await sql.raw(`insert into schema_migration (component, version, name, applied_at) values ${v1.join(', ')}`).execute(storage.db);

  for (const m of MODULES) await storage.migrate(m.name, m.migrations!);

  t.equal(await new KeyvalStore(storage, 'vcard', text).get(H, 'ann'), '<vCard xmlns="vcard-temp"><FN>Ann</FN></vCard>');
  t.equal(await new MapStore(storage, 'private', text).get(H, 'ann', '{urn:example}prefs'), '<prefs xmlns="urn:example"/>');
  t.same([...(await new MapStore(storage, 'blocking').all(H, 'ann')).keys()], ['bad@y.example', 'y.example']);
  t.same([...(await new MapStore(storage, 'push').all(H, 'ann')).values()], [{ service: 'push.y.example', node: 'n1', form: null, updatedAt: 5 }]);
  t.same(await new KeyvalStore(storage, 'last').get(H, 'ann'), { at: 7, status: 'bye' });
  t.same(await new KeyvalStore(storage, 'mam_prefs').get(H, 'ann'), { default: 'roster', always: ['bob@y.example'], never: [] });
  t.match(await new ArchiveStore(storage, 'mam').get(H, 'ann', ID), { withBare: 'bob@y.example', withResource: 'phone', stanza: '<message><body>hi</body></message>' });
  t.match(await new ArchiveStore(storage, 'muc_mam', 'service').get(`rooms.${H}`, 'lobby', ID), { withResource: 'Ann', stanza: '<message><body>hello</body></message>' });
  const queued: string[] = [];
  await new ArchiveStore(storage, 'offline').consume(H, 'ann', (items) => (queued.push(...items.map((i) => `${i.ts} ${i.stanza}`)), items.length));
  t.same(queued, ['1000 <message id="first"/>', '1000 <message id="second"/>'], 'the offline queue keeps its order and times');

  for (const table of ['vcard', 'private_xml', 'blocklist_item', 'push_registration', 'archive_message', 'archive_prefs', 'muc_archive', 'offline_message']) {
    t.notOk(await tableExists(storage.db, storage.driver, table), `${table} is dropped`);
  }
  for (const m of MODULES) t.same(await storage.migrate(m.name, m.migrations!), [], `${m.name}: nothing the second time`);
});

t.test('a new database creates none of the old tables', async (t) => {
  storeOnBothDatabases(t, 'fresh', async (t, storage) => {
    for (const m of MODULES) await storage.migrate(m.name, m.migrations!);
    t.notOk(await tableExists(storage.db, storage.driver, 'vcard'));
    t.notOk(await tableExists(storage.db, storage.driver, 'archive_message'));
  });
});

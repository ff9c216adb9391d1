// The module API: load order and dependency checks, one handler per IQ key, hook chains,
// provide/use, and unloading that undoes every registration.
import t from 'tap';
import { z } from 'zod';
import { defineModule, type ModuleDefinition } from '../../src/module-api/define.js';
import { HookBus } from '../../src/module-api/hooks.js';
import { Host } from '../../src/module-api/host.js';
import { ModuleRegistry, loadHostModules, unloadModules } from '../../src/module-api/loader.js';
import type { ServerCore } from '../../src/module-api/core.js';
import { HostOptions } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { serviceKey } from '../../src/module-api/keys.js';
import { StanzaError } from '../../src/stream/errors.js';
import { isStorageUnavailable, storageStanzaError } from '../../src/storage/errors.js';

const core = {} as ServerCore;
const host = (enabled: string[], modules: Record<string, Record<string, unknown>> = {}) =>
  new Host('example.org', HostOptions.parse({ modules_enabled: enabled, modules }), silentLogger);

const AService = serviceKey<{ hello(): string }>('a.service');
const a = defineModule({ name: 'a', setup: (ctx) => ctx.provide(AService, { hello: () => 'from a' }) });
const b = defineModule({
  name: 'b',
  depends: ['a'],
  config: z.strictObject({ greeting: z.string().default('hi') }),
  setup(ctx) {
    ctx.feature('urn:example:b');
    ctx.iq.get('urn:example:b', 'query', (iq) => iq.reply());
    ctx.hook('session/bound', () => {});
    ctx.use(AService);
  },
});
const registry = new ModuleRegistry([b, a] as ModuleDefinition[]);

t.test('dependencies load first', async (t) => {
  t.same(
    registry.loadOrder(['b', 'a']).map((m) => m.name),
    ['a', 'b'],
  );
});

t.test('a missing dependency stops the boot with what to do', async (t) => {
  t.throws(() => registry.loadOrder(['b']), /module "b" needs module "a": add it to modules_enabled/);
});

t.test('a dependency circle is reported', async (t) => {
  const x = defineModule({ name: 'x', depends: ['y'], setup() {} });
  const y = defineModule({ name: 'y', depends: ['x'], setup() {} });
  t.throws(() => new ModuleRegistry([x, y] as ModuleDefinition[]).loadOrder(['x', 'y']), /circle: x -> y -> x/);
});

t.test('loading registers, unloading undoes everything', async (t) => {
  const h = host(['a', 'b']);
  const contexts = await loadHostModules(h, registry, core);
  t.ok(h.discoFeatures.has('urn:example:b'));
  t.ok(h.iq.find('get', 'host', 'urn:example:b', 'query'));
  t.ok(h.hooks.has('session/bound'));
  t.ok(h.services.has('a.service'));
  await unloadModules(contexts);
  t.notOk(h.discoFeatures.has('urn:example:b'));
  t.notOk(h.iq.find('get', 'host', 'urn:example:b', 'query'));
  t.notOk(h.hooks.has('session/bound'));
  t.notOk(h.services.has('a.service'));
});

t.test('one handler per IQ key; a failed boot undoes what it set up', async (t) => {
  const twin = defineModule({ name: 'twin', depends: ['b'], setup: (ctx) => ctx.iq.get('urn:example:b', 'query', (iq) => iq.reply()) });
  const h = host(['a', 'b', 'twin']);
  await t.rejects(loadHostModules(h, new ModuleRegistry([a, b, twin] as ModuleDefinition[]), core), /handled by "b" already/);
  t.notOk(h.iq.find('get', 'host', 'urn:example:b', 'query'), 'b was unloaded again');
  t.notOk(h.services.has('a.service'));
});

t.test('use() of a service nobody provides says which', async (t) => {
  const lonely = defineModule({ name: 'lonely', setup: (ctx) => void ctx.use(serviceKey<unknown>('nothing')) });
  await t.rejects(loadHostModules(host(['lonely']), new ModuleRegistry([lonely] as ModuleDefinition[]), core), /uses service "nothing", which no loaded module provides/);
});

t.test('hooks: priority order, stop, and a throwing handler does not break the chain', async (t) => {
  const bus = new HookBus<{ e: { seen: string[] } }>(silentLogger);
  bus.on('e', (ev) => void ev.seen.push('low'), -10);
  bus.on('e', (ev) => void ev.seen.push('high'), 10);
  bus.on(
    'e',
    () => {
      throw new Error('boom');
    },
    5,
  );
  bus.on('e', (ev) => void ev.seen.push('mid'), 0);
  const ev = { seen: [] as string[] };
  t.equal(await bus.fire('e', ev), false);
  t.same(ev.seen, ['high', 'mid', 'low']);
  const undo = bus.on('e', (ev) => (ev.seen.push('stopper'), true), 1);
  const ev2 = { seen: [] as string[] };
  t.equal(await bus.fire('e', ev2), true, 'stopped');
  t.same(ev2.seen, ['high', 'stopper']);
  undo();
  const ev3 = { seen: [] as string[] };
  await bus.fire('e', ev3);
  t.same(ev3.seen, ['high', 'mid', 'low'], 'undo removes the handler');
});

t.test("hooks on a stanza's path: a StanzaError or a storage outage refuses the stanza, a bug does not", async (t) => {
  const bus = new HookBus<{ e: { seen: string[] } }>(silentLogger);
  let throwing: unknown = new Error('a bug');
  bus.on('e', (ev) => void ev.seen.push('first'), 10);
  bus.on(
    'e',
    () => {
      throw throwing;
    },
    5,
  );
  bus.on('e', (ev) => void ev.seen.push('after'), 0);
  const ev = { seen: [] as string[] };
  t.equal(await bus.fireRoute('e', ev), false);
  t.same(ev.seen, ['first', 'after'], 'a bug is logged and the chain goes on');

  throwing = new StanzaError('service-unavailable', 'not stored');
  const ev2 = { seen: [] as string[] };
  await t.rejects(bus.fireRoute('e', ev2), throwing as Error, 'the StanzaError reaches the caller');
  t.same(ev2.seen, ['first'], 'and stops the chain');
  t.equal(await bus.fire('e', { seen: [] }), false, 'fire() never rejects');

  throwing = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  await t.rejects(bus.fireRoute('e', { seen: [] }), { code: 'ECONNREFUSED' }, 'storage unavailable reaches the caller');
  throwing = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
  await t.rejects(bus.fireRoute('e', { seen: [] }), { code: '57P01' });
});

t.test('storage errors: unavailable is resource-constraint (wait), anything else internal-server-error', async (t) => {
  const down = storageStanzaError(Object.assign(new Error('Connection terminated unexpectedly'), {}), 'not stored');
  t.equal(down.condition, 'resource-constraint');
  t.equal(down.type, 'wait');
  t.match(down.text, /not stored: storage is unavailable/);
  t.ok(isStorageUnavailable(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })));
  t.ok(isStorageUnavailable(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })])));
  const bug = storageStanzaError(Object.assign(new Error('duplicate key'), { code: '23505' }), 'not stored');
  t.equal(bug.condition, 'internal-server-error');
  t.notOk(isStorageUnavailable(new TypeError('undefined is not a function')));
});

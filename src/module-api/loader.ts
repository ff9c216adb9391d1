// Loads each host's enabled modules in dependency order and unloads them in reverse.
import { OperatorError } from '../operator-error.js';
import type { ModuleSchemas } from '../config/load.js';
import type { ServerCore } from './core.js';
import { ModuleContext, type ModuleDefinition } from './define.js';
import type { Host } from './host.js';
import type { Storage } from '../storage/database.js';

export class ModuleRegistry implements ModuleSchemas {
  private readonly definitions = new Map<string, ModuleDefinition>();

  constructor(definitions: readonly ModuleDefinition[]) {
    for (const d of definitions) {
      if (this.definitions.has(d.name)) throw new Error(`two modules are named "${d.name}"`);
      this.definitions.set(d.name, d);
    }
  }

  has(name: string): boolean {
    return this.definitions.has(name);
  }

  schema(name: string) {
    return this.definitions.get(name)?.config;
  }

  get(name: string): ModuleDefinition | undefined {
    return this.definitions.get(name);
  }

  names(): string[] {
    return [...this.definitions.keys()];
  }

  /** The enabled modules in an order where each comes after what it depends on. */
  loadOrder(enabled: readonly string[]): ModuleDefinition[] {
    const order: ModuleDefinition[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (name: string, path: string[]) => {
      if (state.get(name) === 'done') return;
      if (state.get(name) === 'visiting') throw new Error(`modules depend on each other in a circle: ${[...path, name].join(' -> ')}`);
      const definition = this.definitions.get(name);
      if (!definition) throw new Error(`no module named "${name}"`);
      state.set(name, 'visiting');
      for (const dep of definition.depends ?? []) {
        if (!enabled.includes(dep)) throw new Error(`module "${name}" needs module "${dep}": add it to modules_enabled`);
        visit(dep, [...path, name]);
      }
      state.set(name, 'done');
      order.push(definition);
    };
    for (const name of enabled) visit(name, []);
    return order;
  }
}

/**
 * Runs the migrations of the modules that any host enables, once, before any host loads them;
 * returns the names of those applied.
 */
export async function migrateModules(registry: ModuleRegistry, hosts: Iterable<Host>, storage: Storage): Promise<string[]> {
  const applied: string[] = [];
  const seen = new Set<string>();
  for (const host of hosts) {
    for (const definition of registry.loadOrder(host.options.modules_enabled)) {
      if (seen.has(definition.name) || !definition.migrations) continue;
      seen.add(definition.name);
      applied.push(...(await storage.migrate(definition.name, definition.migrations)));
    }
  }
  return applied;
}

/** Sets up a host's modules; on failure, undoes what was set up and rethrows. */
export async function loadHostModules(host: Host, registry: ModuleRegistry, core: ServerCore): Promise<ModuleContext[]> {
  const contexts: ModuleContext[] = [];
  try {
    for (const definition of registry.loadOrder(host.options.modules_enabled)) {
      const ctx = new ModuleContext(definition.name, host, host.options.modules[definition.name] ?? {}, core);
      contexts.push(ctx);
      await definition.setup(ctx);
      host.modules.push(definition.name);
    }
  } catch (err) {
    await unloadModules(contexts);
    const message = `${host.domain}: loading module "${contexts.at(-1)?.name ?? '?'}" failed: ${(err as Error).message}`;
    // An operator mistake (a module's port in use) stays one line without a stack trace.
    if (err instanceof OperatorError) throw new OperatorError(message);
    throw new Error(message, { cause: err });
  }
  return contexts;
}

export async function unloadModules(contexts: ModuleContext[]): Promise<void> {
  for (const ctx of [...contexts].reverse()) await ctx.unload();
}

// Where each kind of account data lives, for export and import (XEP-0227): the modules' own
// stores over the configured storage, with the modules' migrations applied (a fresh data
// directory has only the core tables until a server or this has run them).
import type { LoadedConfig } from '../config/load.js';
import type { ModuleRegistry } from '../module-api/loader.js';
import type { Storage } from '../storage/database.js';
import { KeyvalStore, MapStore, text } from '../storage/stores.js';
import { ArchiveStore } from '../storage/archive/store.js';
import { RosterStore } from '../../modules/roster/store.js';
import { PubsubStore } from '../../modules/pubsub/store.js';

export interface PieStores {
  storage: Storage;
  roster: RosterStore;
  /** modules/vcard: one vCard per account, XML text. */
  vcard: KeyvalStore<string>;
  /** modules/private: one entry per element, keyed {namespace}name, XML text. */
  private: MapStore<string>;
  /** modules/pubsub: PEP nodes are those of the service named by the account's bare JID. */
  pubsub: PubsubStore;
  offline: ArchiveStore;
  mam: ArchiveStore;
  /** The most items a PEP node keeps on `host` (its pubsub max_items). */
  maxItems(host: string): number;
}

/** The modules whose data the format carries. */
const MODULES = ['roster', 'vcard', 'private', 'pubsub', 'offline', 'mam'];

export async function openPieStores(storage: Storage, config: LoadedConfig, registry: ModuleRegistry): Promise<PieStores> {
  // Their tables, whether or not a host enables them (as a server start would create them).
  for (const name of MODULES) {
    const migrations = registry.get(name)?.migrations;
    if (migrations) await storage.migrate(name, migrations);
  }
  return {
    storage,
    roster: new RosterStore(storage),
    vcard: new KeyvalStore(storage, 'vcard', text),
    private: new MapStore(storage, 'private', text),
    pubsub: new PubsubStore(storage),
    offline: new ArchiveStore(storage, 'offline'),
    mam: new ArchiveStore(storage, 'mam'),
    maxItems: (host) => Number((config.hostOptions.get(host)?.modules.pubsub as { max_items?: number } | undefined)?.max_items ?? 256),
  };
}

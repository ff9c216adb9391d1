// The built-in modules. A host loads the ones its modules_enabled names.
import type { ModuleDefinition } from '../src/module-api/define.js';
import disco from './disco/index.js';
import offline from './offline/index.js';
import ping from './ping/index.js';
import presence from './presence/index.js';
import roster from './roster/index.js';
import sasl from './sasl/index.js';
import sm from './sm/index.js';
import version from './version/index.js';
import time from './time/index.js';
import last from './last/index.js';
import vcard from './vcard/index.js';
import privateStorage from './private/index.js';
import blocking from './blocking/index.js';
import register from './register/index.js';
import caps from './caps/index.js';
import push from './push/index.js';
import carbons from './carbons/index.js';
import csi from './csi/index.js';
import mam from './mam/index.js';
import muc from './muc/index.js';
import mucMam from './muc-mam/index.js';
import pubsub from './pubsub/index.js';
import externalServices from './external_services/index.js';
import httpUpload from './http-upload/index.js';
import bookmarks from './bookmarks/index.js';
import vcardAvatar from './vcard-avatar/index.js';
import proxy65 from './proxy65/index.js';
import adhoc from './adhoc/index.js';
import adminAdhoc from './admin_adhoc/index.js';
import antiSpam from './anti_spam/index.js';

export const builtinModules: ModuleDefinition[] = [
  sasl,
  ping,
  disco,
  roster,
  presence,
  offline,
  version,
  time,
  last,
  vcard,
  privateStorage,
  blocking,
  register,
  caps,
  sm,
  push,
  carbons,
  csi,
  mam,
  muc,
  mucMam,
  pubsub,
  externalServices,
  httpUpload,
  bookmarks,
  vcardAvatar,
  proxy65,
  adhoc,
  adminAdhoc,
  antiSpam,
] as ModuleDefinition[];

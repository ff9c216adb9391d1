// The services of other modules that anti_spam builds on (blocking, roster, adhoc): each is
// optional, and one that is enabled but listed after anti_spam in modules_enabled is not there
// yet when anti_spam sets up, which the operator is told in one line.
import type { ModuleContext } from '../../src/module-api/define.js';
import type { ServiceKey } from '../../src/module-api/keys.js';

export function optionalService<T>(ctx: ModuleContext<unknown>, key: ServiceKey<T>, module: string, what: string): T | undefined {
  const service = ctx.tryUse(key);
  if (service) return service;
  const enabled = ctx.host.options.modules_enabled;
  if (enabled.includes(module)) ctx.log.warn(`list "${module}" before "${ctx.name}" in modules_enabled: ${what} is off until then`);
  else ctx.log.info(`the ${module} module is not enabled: ${what} is off`);
  return undefined;
}

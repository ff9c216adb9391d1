// Abuse controls: spam reports with blocks (XEP-0377), blocking strangers, a stricter pace for
// new accounts writing to strangers, rate limits for client sessions and remote servers, and
// real-time blocklists. Each part is a setup function in a file of its own; this module only
// puts them together.
import { defineModule } from '../../src/module-api/define.js';
import { blockStrangersCommand, reportsCommand } from './commands.js';
import { AntiSpamConfig } from './config.js';
import { setupNewAccounts } from './new-accounts.js';
import { setupRateLimits } from './rate-limits.js';
import { setupReports } from './reports.js';
import { setupRtbl } from './rtbl.js';
import { antiSpamMigrations } from './store.js';
import { setupStrangers } from './strangers.js';

export default defineModule({
  name: 'anti_spam',
  config: AntiSpamConfig,
  migrations: antiSpamMigrations,
  commands: [reportsCommand, blockStrangersCommand],
  async setup(ctx) {
    setupReports(ctx);
    setupStrangers(ctx);
    setupNewAccounts(ctx);
    setupRateLimits(ctx, ctx.config);
    await setupRtbl(ctx, ctx.config);
  },
});

// Abuse controls: spam reports with blocks (XEP-0377), blocking strangers, and a stricter
// pace for new accounts writing to strangers. Each part is a setup function in a file of its
// own; this module only puts them together.
import { defineModule } from '../../src/module-api/define.js';
import { blockStrangersCommand, reportsCommand } from './commands.js';
import { AntiSpamConfig } from './config.js';
import { setupNewAccounts } from './new-accounts.js';
import { setupReports } from './reports.js';
import { antiSpamMigrations } from './store.js';
import { setupStrangers } from './strangers.js';

export default defineModule({
  name: 'anti_spam',
  config: AntiSpamConfig,
  migrations: antiSpamMigrations,
  commands: [reportsCommand, blockStrangersCommand],
  setup(ctx) {
    setupReports(ctx);
    setupStrangers(ctx);
    setupNewAccounts(ctx);
  },
});

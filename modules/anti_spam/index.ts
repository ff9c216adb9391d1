// Abuse controls: rate limits for client sessions and remote servers (rate-limits.ts).
import { defineModule } from '../../src/module-api/define.js';
import { AntiSpamConfig } from './config.js';
import { setupRateLimits } from './rate-limits.js';

export default defineModule({
  name: 'anti_spam',
  config: AntiSpamConfig,
  setup(ctx) {
    setupRateLimits(ctx, ctx.config);
  },
});

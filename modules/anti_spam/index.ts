// Abuse controls: rate limits for client sessions and remote servers (rate-limits.ts), and
// real-time blocklists (rtbl.ts).
import { defineModule } from '../../src/module-api/define.js';
import { AntiSpamConfig } from './config.js';
import { setupRateLimits } from './rate-limits.js';
import { setupRtbl } from './rtbl.js';

export default defineModule({
  name: 'anti_spam',
  config: AntiSpamConfig,
  async setup(ctx) {
    setupRateLimits(ctx, ctx.config);
    await setupRtbl(ctx, ctx.config);
  },
});

// The options of the anti_spam module, `[modules.anti_spam]`: each part's own schema, side by side.
import { z } from 'zod';
import { RateLimitsConfig } from './rate-limits.js';
import { RtblConfig } from './rtbl.js';

export const AntiSpamConfig = z.strictObject({
  ...RateLimitsConfig.shape,
  ...RtblConfig.shape,
});
export type AntiSpamConfig = z.infer<typeof AntiSpamConfig>;

// The options of the anti_spam module, [modules.anti_spam] (per host under
// [hosts."example.org".modules.anti_spam]): those of reports, strangers and new accounts here,
// and each other part's own schema, side by side.
import { z } from 'zod';
import { RateLimitsConfig } from './rate-limits.js';
import { RtblConfig } from './rtbl.js';

export const AntiSpamConfig = z.strictObject({
  /** Abuse reports one account may send per hour (kept and told to the admins); past it the block is made, the report dropped. */
  reports_per_hour: z.number().int().min(1).default(10),
  /** Messages and IQs from JIDs not in the user's roster (no subscription either way) bounce; accounts may opt in or out. */
  block_strangers: z.boolean().default(false),
  /** With block_strangers: users of the server's own hosts count as contacts. */
  allow_local_users: z.boolean().default(false),
  /** Minutes after a user last sent a stanza to an address during which that address may write back. */
  recent_contact_minutes: z.number().min(0).default(15),
  /** Accounts younger than this many hours are held to new_account_messages_per_second; 0: off. */
  new_account_hours: z.number().min(0).default(24),
  /** Messages a new account may send per second to addresses not in its roster (on average). */
  new_account_messages_per_second: z.number().positive().default(1),
  /** How many such messages a new account may send at once before the rate applies. */
  new_account_burst: z.number().int().min(1).default(10),
  ...RateLimitsConfig.shape,
  ...RtblConfig.shape,
});
export type AntiSpamConfig = z.infer<typeof AntiSpamConfig>;

// `[modules.pubsub]`: limits of the PEP service every account has (XEP-0163).
import { z } from 'zod';

export const PubsubConfig = z.strictObject({
  /** Nodes one account may have on its PEP service. */
  max_nodes: z.number().int().min(1).default(256),
  /** Largest item payload accepted, in bytes of its XML. */
  max_item_size: z.number().int().min(1024).default(262144),
  /** Most items a node keeps; what pubsub#max_items = "max" means. */
  max_items: z.number().int().min(1).default(256),
});
export type PubsubConfig = z.infer<typeof PubsubConfig>;

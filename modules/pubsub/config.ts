// `[modules.pubsub]`: limits of the PEP service every account has (XEP-0163), and the general
// pubsub service of the host (its domain, who creates nodes there).
import { z } from 'zod';

export const PubsubConfig = z.strictObject({
  /** Nodes one account may have on its PEP service. */
  max_nodes: z.number().int().min(1).default(256),
  /** Largest item payload accepted, in bytes of its XML. */
  max_item_size: z.number().int().min(1024).default(262144),
  /** Most items a node keeps; what pubsub#max_items = "max" means. */
  max_items: z.number().int().min(1).default(256),
  /** The general service's domain ("{host}" stands for the host's domain); empty: no general service. */
  service: z.string().default('pubsub.{host}'),
  /** The general service's name in service discovery. */
  service_name: z.string().default('Publish-Subscribe'),
  /** Who may create nodes on the general service: "users" (accounts of the host) or "admins" (the host's admins). */
  node_creation: z.enum(['users', 'admins']).default('users'),
  /** Nodes the general service may have. */
  service_max_nodes: z.number().int().min(1).default(10000),
});
export type PubsubConfig = z.infer<typeof PubsubConfig>;

// The configuration schema: one place that says every option, its type and its default.
// config.example.toml documents the same options; test/unit/config.test.ts keeps them in step.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const seconds = z.number().min(0);

/** Options that a `[hosts."example.org"]` table may override. */
export const HostOptions = z.strictObject({
  /** Modules to load for this host, by name. */
  modules_enabled: z.array(z.string()).default(['sasl', 'ping', 'disco']),
  /** Module options, `[modules.<name>]`, each checked by that module's own schema. */
  modules: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  accounts: z
    .strictObject({
      min_password_length: z.number().int().min(1).default(8),
      scram_iterations: z.number().int().min(4096).default(4096),
      max_sessions_per_user: z.number().int().min(1).default(10),
    })
    .prefault({}),
  /** PEM certificate chain for the host; empty: look in tls.certificates_dir, else self-signed. */
  certificate: z.string().default(''),
  /** PEM private key of that certificate. */
  key: z.string().default(''),
});
export type HostOptions = z.infer<typeof HostOptions>;

const Listener = z.strictObject({
  interfaces: z.array(z.string()).default(['0.0.0.0', '::']),
  port,
  /** Direct TLS (XEP-0368) instead of STARTTLS. */
  direct_tls: z.boolean().default(false),
});

export const ConfigSchema = z.strictObject({
  data_dir: z.string().default('./data'),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
      format: z.enum(['auto', 'json', 'pretty']).default('auto'),
    })
    .prefault({}),
  storage: z
    .strictObject({
      driver: z.enum(['sqlite', 'postgres']).default('sqlite'),
      sqlite_path: z.string().default(''),
      sqlite_synchronous: z.enum(['full', 'normal']).default('full'),
      postgres_url: z.string().default(''),
      postgres_schema: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('public'),
      pool_size: z.number().int().min(1).max(1000).default(10),
    })
    .prefault({}),
  live_state: z
    .strictObject({
      backend: z.enum(['memory', 'redis']).default('memory'),
      redis_url: z.string().default('redis://127.0.0.1:6379'),
    })
    .prefault({}),
  c2s: z
    .strictObject({
      listeners: z.array(Listener).default([
        { interfaces: ['0.0.0.0', '::'], port: 5222, direct_tls: false },
        { interfaces: ['0.0.0.0', '::'], port: 5223, direct_tls: true },
      ]),
      require_encryption: z.boolean().default(true),
      allow_plain_without_tls: z.boolean().default(false),
      max_stanza_size: z.number().int().min(10_000).default(262_144),
      max_depth: z.number().int().min(4).default(64),
      max_attributes: z.number().int().min(4).default(64),
      auth_timeout: seconds.default(30),
      idle_ping_interval: seconds.default(300),
      idle_ping_timeout: seconds.default(60),
      max_unauthenticated_per_ip: z.number().int().min(1).default(20),
      auth_failures_per_ip_per_minute: z.number().int().min(1).default(10),
      auth_failure_delay: seconds.default(1),
    })
    .prefault({}),
  tls: z
    .strictObject({
      /** Let's Encrypt layout: <dir>/live/<domain>/fullchain.pem and privkey.pem. */
      certificates_dir: z.string().default(''),
      min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    })
    .prefault({}),
  /** Global defaults of the per-host options; each `[hosts."domain"]` may override them
   *  (checked against HostOptions after merging, see load.ts). */
  ...HostOptions.shape,
  hosts: z
    .record(z.string(), z.record(z.string(), z.unknown()))
    .default({ localhost: {} }),
});
export type Config = z.infer<typeof ConfigSchema>;

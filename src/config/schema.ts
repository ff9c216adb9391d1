// The configuration schema: one place that says every option, its type and its default.
// config.example.toml documents the same options; test/unit/config.test.ts keeps them in step.
import { z } from 'zod';
import { parseRouteTarget, ROUTE_TARGET_HELP } from '../s2s/route-target.js';
import { prepareDomain } from '../precis.js';
import { tryParseJid } from '../jid.js';

function isDomain(s: string): boolean {
  try {
    prepareDomain(s);
    return true;
  } catch {
    return false;
  }
}

function isBareJid(s: string): boolean {
  const jid = tryParseJid(s);
  return jid !== null && jid.isBare && jid.local !== '';
}

const port = z.number().int().min(0).max(65535);
const seconds = z.number().min(0);

/** Options that a `[hosts."example.org"]` table may override. */
export const HostOptions = z.strictObject({
  /** Modules to load for this host, by name. */
  modules_enabled: z
    .array(z.string())
    .default([
      'sasl',
      'ping',
      'disco',
      'caps',
      'roster',
      'presence',
      'offline',
      'sm',
      'carbons',
      'csi',
      'mam',
      'push',
      'version',
      'time',
      'last',
      'vcard',
      'private',
      'blocking',
      'register',
      'muc',
      'muc_mam',
      'pubsub',
      'bookmarks',
      'vcard_avatar',
      'external_services',
      'http_upload',
      'proxy65',
      'adhoc',
      'admin_adhoc',
      'anti_spam',
    ]),
  /** Module options, `[modules.<name>]`, each checked by that module's own schema. */
  modules: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  accounts: z
    .strictObject({
      min_password_length: z.number().int().min(1).default(8),
      scram_iterations: z.number().int().min(4096).default(4096),
      max_sessions_per_user: z.number().int().min(1).default(10),
    })
    .prefault({}),
  /** Bare JIDs of the host's administrators, to whom modules give rights (pubsub node creation). */
  admins: z.array(z.string().refine(isBareJid, { message: 'expected a bare JID such as "admin@example.org"' })).default([]),
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

/** One external component (XEP-0114): the secret of its handshake, and what a second connection does. */
const Component = z.strictObject({
  /** The shared secret ("env:NAME" reads it from the environment). */
  secret: z.string().min(1, { message: 'a component needs a non-empty secret' }),
  /** A second connection for the domain replaces the first (true), or is refused (false); the loser gets <conflict/>. */
  replace: z.boolean().default(true),
  /** Its name in the parent host's disco#items. */
  name: z.string().default(''),
});
export type ComponentOptions = z.infer<typeof Component>;

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
      postgres_schema: z
        .string()
        .regex(/^[a-z_][a-z0-9_]*$/)
        .default('public'),
      pool_size: z.number().int().min(1).max(1000).default(10),
    })
    .prefault({}),
  live_state: z
    .strictObject({
      backend: z.enum(['memory', 'redis']).default('memory'),
      redis_url: z.string().default('redis://127.0.0.1:6379'),
      /** Prefix of every Redis key (several clusters, or tests, on one Redis). */
      key_prefix: z.string().min(1).default('starling:'),
    })
    .prefault({}),
  cluster: z
    .strictObject({
      /** This node's name among the nodes sharing Redis; empty: hostname:first-c2s-port. */
      node_id: z.string().default(''),
      /** Seconds between heartbeats; a node silent for 3 of them is dead. */
      heartbeat_interval: z.number().min(0.2).max(60).default(5),
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
  s2s: z
    .strictObject({
      /** Incoming server connections: 5269 with STARTTLS; add a direct_tls listener for XEP-0368. */
      listeners: z.array(Listener).default([{ interfaces: ['0.0.0.0', '::'], port: 5269, direct_tls: false }]),
      /** TLS on every server connection, both ways (like Prosody's s2s_require_encryption). */
      require_encryption: z.boolean().default(true),
      /** Only servers with a valid certificate (like Prosody's s2s_secure_auth): no dialback on its own. */
      secure_auth: z.boolean().default(false),
      /** Remote domain -> "host:port" (or "xmpps://host:port"), instead of DNS. */
      routes: z
        .record(
          z.string(),
          z.string().refine((v) => parseRouteTarget(v) !== undefined, { message: ROUTE_TARGET_HELP }),
        )
        .superRefine((routes, ctx) => {
          for (const domain of Object.keys(routes)) {
            if (!isDomain(domain)) ctx.addIssue({ code: 'custom', path: [domain], message: `"${domain}" is not a valid domain` });
          }
        })
        .default({}),
      /** Look remote servers up in DNS (SRV, then A/AAAA); false: only `routes` (private federations, tests). */
      dns_lookup: z.boolean().default(true),
      /** PEM files of certification authorities trusted besides the system's (tls.rootCertificates). */
      ca_files: z.array(z.string()).default([]),
      /** Seconds to set up an outgoing stream (DNS, connect, TLS, authentication) or a dialback check. */
      connect_timeout: seconds.default(30),
      /** Seconds without a stanza before an outgoing stream is closed (incoming: twice that). */
      idle_timeout: seconds.default(300),
      /** Secret for dialback keys (XEP-0185); empty: generated once and kept under data_dir (in a cluster, shared through Redis). */
      dialback_secret: z.string().default(''),
      max_stanza_size: z.number().int().min(10_000).default(524_288),
      max_depth: z.number().int().min(4).default(64),
      max_attributes: z.number().int().min(4).default(64),
    })
    .prefault({}),
  /** External components (XEP-0114): where they connect. Listens only when `components` names one. */
  component_listener: z
    .strictObject({
      /** Loopback by default: a component is a trusted program beside the server. */
      interfaces: z.array(z.string()).default(['127.0.0.1', '::1']),
      port: port.default(5347),
      /** Seconds a connection may take to send its stream header and handshake. */
      auth_timeout: seconds.default(30),
      max_stanza_size: z.number().int().min(10_000).default(262_144),
      max_depth: z.number().int().min(4).default(64),
      max_attributes: z.number().int().min(4).default(64),
    })
    .prefault({}),
  /** External components by domain: `[components."bot.example.org"] secret = "env:BOT_SECRET"`. */
  components: z
    .record(z.string(), Component)
    .superRefine((components, ctx) => {
      for (const domain of Object.keys(components)) {
        if (!isDomain(domain)) ctx.addIssue({ code: 'custom', path: [domain], message: `"${domain}" is not a valid domain` });
      }
    })
    .default({}),
  http: z
    .strictObject({
      /** Plain HTTP, for a reverse proxy in front: loopback only by default. */
      interfaces: z.array(z.string()).default(['127.0.0.1']),
      port: port.default(5280),
      /** HTTPS with each host's certificate (SNI), on every interface like c2s. */
      https_interfaces: z.array(z.string()).default(['0.0.0.0', '::']),
      https_port: port.default(5281),
      /** The URL clients reach this server's HTTP at (a reverse proxy's); empty: https://<host>:<https_port>. */
      external_url: z
        .string()
        .refine((v) => v === '' || /^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(v), { message: 'an http:// or https:// URL without query' })
        .default(''),
      /** Largest request head (request line and headers), bytes. */
      max_header_size: z.number().int().min(1024).max(1_048_576).default(16_384),
      /** Largest request body of a route that does not set its own limit, bytes. */
      max_body_size: z.number().int().min(0).default(1_048_576),
      /** Seconds to receive a request's headers. */
      headers_timeout: seconds.default(10),
      /** Seconds to receive a whole request, body included (uploads too); 0: no limit. */
      request_timeout: seconds.default(300),
      /** Seconds an idle keep-alive connection stays open. */
      keep_alive_timeout: seconds.default(5),
      /** Concurrent connections from one IP address. */
      max_connections_per_ip: z.number().int().min(1).default(32),
      /** Addresses of reverse proxies in front, exempt from max_connections_per_ip (every client comes through them). */
      proxies: z.array(z.string()).default(['127.0.0.1', '::1']),
      /** XMPP over WebSocket (RFC 7395) at /xmpp-websocket. */
      websocket: z.boolean().default(true),
      /**
       * Origins (scheme://host[:port]) whose pages may open WebSocket and BOSH sessions, "*" for
       * any; empty: pages of the served hosts and of this server itself, and clients sending no Origin.
       */
      allowed_origins: z.array(z.string()).default([]),
      /** BOSH (XEP-0124, XEP-0206) at /http-bind. */
      bosh: z.boolean().default(true),
      /** Longest a BOSH request is held open (the client's `wait` is capped to it), seconds. */
      bosh_max_wait: z.number().int().min(1).max(300).default(60),
      /** Seconds without a BOSH request before the session's connection counts as dropped. */
      bosh_inactivity: z.number().int().min(5).max(600).default(60),
      /** Longest pause a BOSH client may ask for, seconds. */
      bosh_max_pause: z.number().int().min(0).max(3600).default(300),
      /** The built-in web client (Converse.js) at /chat; false: 404. */
      web_client: z.boolean().default(true),
      /** Whether / redirects to the web client's page. */
      web_client_at_root: z.boolean().default(true),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      /** Serve Prometheus metrics on the HTTP listeners. */
      enabled: z.boolean().default(true),
      path: z
        .string()
        .regex(/^\/[^?#]*$/, 'a path starting with /')
        .default('/metrics'),
      /** Client addresses that may read them (behind http.proxies: the forwarded address). */
      allow: z.array(z.string()).default(['127.0.0.1', '::1']),
    })
    .prefault({}),
  tls: z
    .strictObject({
      /** Let's Encrypt layout: <dir>/live/<domain>/fullchain.pem and privkey.pem. */
      certificates_dir: z.string().default(''),
      min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    })
    .prefault({}),
  /**
   * Certificates by ACME (RFC 8555; Let's Encrypt): for each host without a certificate of its
   * own (configured, or in tls.certificates_dir), obtained with the HTTP-01 challenge answered
   * on the HTTP listeners, kept under <data_dir>/certs in the Let's Encrypt layout, renewed.
   */
  acme: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** The ACME directory URL (Let's Encrypt staging: https://acme-staging-v02.api.letsencrypt.org/directory). */
      directory: z
        .string()
        .refine((v) => /^https?:\/\/[^/?#]+/.test(v), { message: 'an https:// URL' })
        .default('https://acme-v02.api.letsencrypt.org/directory'),
      /** Contact address of the ACME account (expiry warnings); empty: none. */
      email: z.string().default(''),
      /** PEM file of a CA to trust for the directory's own HTTPS (a test CA such as pebble); empty: the system's. */
      ca_file: z.string().default(''),
      /** Renew a certificate this many days before it expires. */
      renew_before_days: z.number().min(0).default(30),
      challenge: z.enum(['http-01']).default('http-01'),
    })
    .prefault({}),
  /** Global defaults of the per-host options; each `[hosts."domain"]` may override them
   *  (checked against HostOptions after merging, see load.ts). */
  ...HostOptions.shape,
  hosts: z.record(z.string(), z.record(z.string(), z.unknown())).default({ localhost: {} }),
});
export type Config = z.infer<typeof ConfigSchema>;

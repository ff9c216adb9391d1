// Certificates by ACME (RFC 8555; Let's Encrypt, or any ACME CA), with acme-client. For each
// host without a certificate of its own, a certificate is obtained with the HTTP-01 challenge,
// answered on the HTTP listeners at /.well-known/acme-challenge/<token>; it is written in the
// Let's Encrypt layout under <data_dir>/certs (archive/<domain>/{cert,chain,fullchain,privkey}N.pem,
// live/<domain>/*.pem linking to the newest) and the certificates are loaded again, so new
// connections get it at once (SNI) without a restart.
//
// At start, every 12 hours and at each `starling reload`, each certificate is checked: missing,
// or expiring within renew_before_days, it is obtained again. A failure is one log line and is
// retried later (1 minute, doubling up to 6 hours); an ACME error never ends the process.
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import acme from 'acme-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { reasonOf } from '../operator-error.js';
import type { Certificates } from './certificates.js';
import { acmeLiveDir } from './certificates.js';
import type { HttpServer } from './http.js';

export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';
const CHECK_EVERY_MS = 12 * 3600_000;
const FIRST_RETRY_MS = 60_000;
const LONGEST_RETRY_MS = 6 * 3600_000;

export type AcmeOptions = Config['acme'];

interface DomainState {
  /** An order under way. */
  running?: Promise<void>;
  failures: number;
  retry?: NodeJS.Timeout;
}

export class AcmeCertificates {
  /** HTTP-01: token -> key authorization, while a challenge is pending. */
  private readonly challenges = new Map<string, string>();
  private readonly state = new Map<string, DomainState>();
  private readonly certsDir: string;
  private timer?: NodeJS.Timeout;
  private client?: acme.Client;
  private stopped = false;

  constructor(
    private options: AcmeOptions,
    /** The domains to obtain certificates for. */
    private readonly domains: readonly string[],
    dataDir: string,
    private readonly certificates: Certificates,
    private readonly log: Logger,
  ) {
    this.certsDir = path.dirname(acmeLiveDir(dataDir));
    for (const domain of domains) this.state.set(domain, { failures: 0 });
  }

  /** Serves the HTTP-01 challenges (before the HTTP server listens). */
  serveChallenges(http: HttpServer): () => void {
    return http.route(
      'GET',
      ACME_CHALLENGE_PATH,
      (_req, res, url) => {
        const answer = this.challenges.get(url.pathname.slice(ACME_CHALLENGE_PATH.length));
        res.writeHead(answer === undefined ? 404 : 200, { 'Content-Type': 'text/plain' });
        res.end(answer ?? 'no such challenge\n');
      },
      { maxBody: 0 },
      'acme',
    );
  }

  /** Checks now, then every 12 hours. */
  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const s of this.state.values()) clearTimeout(s.retry);
  }

  /** renew_before_days changed by `starling reload`. */
  set renewBeforeDays(days: number) {
    this.options = { ...this.options, renew_before_days: days };
  }

  /** Obtains the certificates that are missing or due for renewal (in the background). */
  check(): void {
    for (const domain of this.domains) if (this.due(domain)) void this.obtain(domain);
  }

  private due(domain: string): boolean {
    const file = path.join(this.certsDir, 'live', domain, 'fullchain.pem');
    if (!existsSync(file)) return true;
    try {
      const notAfter = new Date(new X509Certificate(readFileSync(file)).validTo).getTime();
      return notAfter - Date.now() < this.options.renew_before_days * 86_400_000;
    } catch {
      return true;
    }
  }

  private obtain(domain: string): Promise<void> {
    const state = this.state.get(domain)!;
    if (state.running || this.stopped) return state.running ?? Promise.resolve();
    clearTimeout(state.retry);
    state.running = this.order(domain)
      .then(
        async (notAfter) => {
          state.failures = 0;
          for (const p of await this.certificates.load()) if (p.domain === domain) this.log.warn({ domain }, `certificate problem: ${p.message}`);
          this.log.info({ domain, notAfter: notAfter.toISOString() }, 'ACME: certificate obtained');
        },
        (err: unknown) => {
          const delay = Math.min(FIRST_RETRY_MS * 2 ** state.failures++, LONGEST_RETRY_MS);
          this.log.warn(
            { domain, directory: this.options.directory },
            `ACME: obtaining a certificate for ${domain} failed: ${reasonOf(err)}; retrying in ${Math.round(delay / 1000)} s`,
          );
          if (this.stopped) return;
          state.retry = setTimeout(() => void this.obtain(domain), delay);
          state.retry.unref();
        },
      )
      .finally(() => (state.running = undefined));
    return state.running;
  }

  /** One order: a new key and CSR, the HTTP-01 challenge, the certificate written; its notAfter. */
  private async order(domain: string): Promise<Date> {
    const client = await this.acmeClient();
    const key = await acme.crypto.createPrivateEcdsaKey('P-256');
    const [, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, key);
    const chain = await client.auto({
      csr,
      email: this.options.email || undefined,
      termsOfServiceAgreed: true,
      challengePriority: [this.options.challenge],
      // acme-client's own check asks port 80; the CA's validation is the one that counts.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => void this.challenges.set(challenge.token, keyAuthorization),
      challengeRemoveFn: async (_authz, challenge) => void this.challenges.delete(challenge.token),
    });
    return this.write(domain, chain, key);
  }

  private async acmeClient(): Promise<acme.Client> {
    if (this.client) return this.client;
    acme.setLogger((message) => this.log.debug({ acme: message }, 'ACME'));
    // Retries of acme-client's own (rate limits, 5xx, no connection): few and short; the
    // backoff above takes over from there.
    const defaults = acme.axios.defaults as typeof acme.axios.defaults & { acmeSettings: Record<string, number> };
    defaults.acmeSettings = { ...defaults.acmeSettings, retryMaxAttempts: 2, retryDefaultDelay: 1 };
    if (this.options.ca_file) {
      acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...tls.rootCertificates, readFileSync(this.options.ca_file, 'utf8')] });
    }
    // One account key per directory, kept with the certificates.
    const keyFile = path.join(this.certsDir, 'accounts', `${createHash('sha256').update(this.options.directory).digest('hex').slice(0, 16)}.key`);
    let accountKey: Buffer;
    if (existsSync(keyFile)) accountKey = readFileSync(keyFile);
    else {
      accountKey = await acme.crypto.createPrivateEcdsaKey('P-256');
      mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
      writeFileSync(keyFile, accountKey, { mode: 0o600 });
    }
    this.client = new acme.Client({ directoryUrl: this.options.directory, accountKey, backoffAttempts: 10, backoffMin: 200, backoffMax: 5000 });
    return this.client;
  }

  /**
   * The Let's Encrypt layout: archive/<domain>/{cert,chain,fullchain,privkey}N.pem, and the
   * links live/<domain>/*.pem, replaced one by one with a rename (never a missing file).
   */
  private write(domain: string, fullchain: string, key: Buffer): Date {
    const archive = path.join(this.certsDir, 'archive', domain);
    const live = path.join(this.certsDir, 'live', domain);
    mkdirSync(archive, { recursive: true, mode: 0o700 });
    mkdirSync(live, { recursive: true });
    const taken = readdirSync(archive).map((f) => Number(/^fullchain(\d+)\.pem$/.exec(f)?.[1] ?? 0));
    const n = Math.max(0, ...taken) + 1;
    const [leaf = '', ...rest] = acme.crypto.splitPemChain(fullchain);
    const files: Record<string, string | Buffer> = { cert: `${leaf.trim()}\n`, chain: rest.map((c) => `${c.trim()}\n`).join(''), fullchain, privkey: key };
    for (const [name, content] of Object.entries(files)) {
      writeFileSync(path.join(archive, `${name}${n}.pem`), content, { mode: name === 'privkey' ? 0o600 : 0o644 });
    }
    // privkey first: a reader that sees the new fullchain finds its key.
    for (const name of ['privkey', 'cert', 'chain', 'fullchain']) {
      const link = path.join(live, `${name}.pem`);
      const temporary = `${link}.new`;
      rmSync(temporary, { force: true });
      symlinkSync(path.relative(live, path.join(archive, `${name}${n}.pem`)), temporary);
      renameSync(temporary, link);
    }
    return new Date(new X509Certificate(leaf).validTo);
  }
}

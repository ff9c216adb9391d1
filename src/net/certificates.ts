// Certificates per domain, served by SNI: a configured file pair, else the Let's Encrypt layout
// (<certificates_dir>/live/<domain>/fullchain.pem + privkey.pem), else one obtained by ACME in
// the same layout under <data_dir>/certs (src/net/acme.ts), else a self-signed certificate
// generated once under <data_dir>/certs (with a warning: clients will not trust it).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { X509Certificate, constants } from 'node:crypto';
import tls, { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from '../log.js';

export interface CertificateSource {
  domain: string;
  /** Configured PEM files; empty strings when not configured. */
  certificate: string;
  key: string;
}

export interface LoadedCertificate {
  domain: string;
  origin: 'configured' | 'letsencrypt' | 'acme' | 'self-signed';
  certPath: string;
  keyPath: string;
  notAfter: Date;
  context: SecureContext;
  /** The leaf certificate, for channel binding (tls-server-end-point). */
  x509: X509Certificate;
  /** The PEM text, read once. */
  pem: { cert: Buffer; key: Buffer };
}

export interface CertificateProblem {
  domain: string;
  /** True when nothing is configured for the domain (and self-signed generation is off). */
  missing: boolean;
  message: string;
}

class MissingCertificateError extends Error {}

const SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_CIPHER_SERVER_PREFERENCE;

export interface CertificateOptions {
  dataDir: string;
  certificatesDir: string;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /**
   * When false, a domain without a certificate (nor a self-signed one generated at an earlier
   * start) is a problem instead of getting a self-signed one.
   */
  generateSelfSigned: boolean;
}

export class Certificates {
  private byDomain = new Map<string, LoadedCertificate>();
  /** TLS servers whose default context (for a client sending no SNI) follows each load. */
  private readonly servers = new Set<tls.Server>();

  constructor(
    private readonly sources: readonly CertificateSource[],
    private readonly options: CertificateOptions,
    private readonly log: Logger,
  ) {}

  /** Loads (or reloads, on SIGHUP) every domain's certificate; returns the problems found. */
  async load(): Promise<CertificateProblem[]> {
    const problems: CertificateProblem[] = [];
    const problem = (domain: string, message: string, missing = false) => problems.push({ domain, message, missing });
    const next = new Map<string, LoadedCertificate>();
    for (const source of this.sources) {
      try {
        const loaded = await this.loadOne(source);
        next.set(source.domain, loaded);
        if (loaded.notAfter.getTime() < Date.now()) problem(source.domain, `certificate ${loaded.certPath} expired on ${loaded.notAfter.toISOString()}`);
        else if (!loaded.x509.checkHost(source.domain)) problem(source.domain, `certificate ${loaded.certPath} does not name ${source.domain}`);
      } catch (err) {
        problem(source.domain, (err as Error).message, err instanceof MissingCertificateError);
      }
    }
    // Keep serving the old certificate of a domain whose new one failed to load.
    for (const [domain, old] of this.byDomain) if (!next.has(domain)) next.set(domain, old);
    this.byDomain = next;
    const first = this.byDomain.values().next().value as LoadedCertificate | undefined;
    if (first) {
      for (const server of this.servers) {
        server.setSecureContext({ cert: first.pem.cert, key: first.pem.key, minVersion: this.options.minVersion, secureOptions: SECURE_OPTIONS });
      }
    }
    return problems;
  }

  /**
   * A TLS server made with serverOptions(): a client sending no SNI gets the first domain's
   * certificate as loaded last (SNI already follows each load). Returns the function that stops it.
   */
  follow(server: tls.Server): () => void {
    this.servers.add(server);
    return () => void this.servers.delete(server);
  }

  get(domain: string): LoadedCertificate | undefined {
    return this.byDomain.get(domain) ?? this.byDomain.get(parentDomain(domain));
  }

  all(): LoadedCertificate[] {
    return [...this.byDomain.values()];
  }

  /** TLS server options with SNI; the first domain's certificate is the default. */
  serverOptions(): tls.TlsOptions {
    const first = this.byDomain.values().next().value as LoadedCertificate | undefined;
    return {
      minVersion: this.options.minVersion,
      // No renegotiation: it has been the root of several TLS attacks and XMPP never needs it.
      secureOptions: SECURE_OPTIONS,
      SNICallback: (servername, cb) => cb(null, (this.get(servername.toLowerCase()) ?? this.byDomain.values().next().value)?.context),
      ...(first ? { cert: first.pem.cert, key: first.pem.key } : {}),
    };
  }

  /**
   * Options for a server-side TLSSocket (STARTTLS): the loaded secure context itself, shared by
   * every connection, instead of PEM text that each socket would parse into a context of its own
   * (measured: 230 -> 362 logins/s and 81 -> 53 KiB per idle TLS session).
   */
  socketOptions(): tls.TLSSocketOptions {
    const { cert: _cert, key: _key, ...options } = this.serverOptions();
    const first = this.byDomain.values().next().value as LoadedCertificate | undefined;
    return { ...options, secureContext: first?.context };
  }

  private async loadOne(source: CertificateSource): Promise<LoadedCertificate> {
    if (source.certificate || source.key) {
      if (!source.certificate || !source.key) throw new Error('certificate and key must be set together');
      return this.fromFiles(source.domain, 'configured', source.certificate, source.key);
    }
    if (this.options.certificatesDir) {
      const live = path.join(this.options.certificatesDir, 'live', source.domain);
      if (existsSync(path.join(live, 'fullchain.pem'))) {
        return this.fromFiles(source.domain, 'letsencrypt', path.join(live, 'fullchain.pem'), path.join(live, 'privkey.pem'));
      }
    }
    const dir = path.join(this.options.dataDir, 'certs');
    const acme = path.join(acmeLiveDir(this.options.dataDir), source.domain);
    if (existsSync(path.join(acme, 'fullchain.pem'))) {
      return this.fromFiles(source.domain, 'acme', path.join(acme, 'fullchain.pem'), path.join(acme, 'privkey.pem'));
    }
    const certPath = path.join(dir, `${source.domain}.crt`);
    const keyPath = path.join(dir, `${source.domain}.key`);
    // One generated at an earlier start, still good for more than a day.
    if (existsSync(certPath) && existsSync(keyPath)) {
      const existing = this.fromFiles(source.domain, 'self-signed', certPath, keyPath);
      if (existing.notAfter.getTime() > Date.now() + 86_400_000) return existing;
    }
    if (!this.options.generateSelfSigned) throw new MissingCertificateError('no certificate found (set certificate and key, or tls.certificates_dir)');
    await generateSelfSigned(source.domain, certPath, keyPath);
    this.log.warn({ domain: source.domain, certPath }, 'no certificate configured: generated a self-signed one, which clients and servers will not trust');
    return this.fromFiles(source.domain, 'self-signed', certPath, keyPath);
  }

  private fromFiles(domain: string, origin: LoadedCertificate['origin'], certPath: string, keyPath: string): LoadedCertificate {
    const cert = readFileSync(certPath);
    const key = readFileSync(keyPath);
    const x509 = new X509Certificate(cert);
    const context = createSecureContext({
      cert,
      key,
      minVersion: this.options.minVersion,
      secureOptions: SECURE_OPTIONS,
    });
    return { domain, origin, certPath, keyPath, notAfter: new Date(x509.validTo), context, x509, pem: { cert, key } };
  }
}

/** Where certificates obtained by ACME are, one directory per domain (the Let's Encrypt layout's live/). */
export function acmeLiveDir(dataDir: string): string {
  return path.join(dataDir, 'certs', 'live');
}

/** Whether a domain has a certificate of its own (configured, or in tls.certificates_dir): then ACME leaves it alone. */
export function hasOwnCertificate(source: CertificateSource, certificatesDir: string): boolean {
  return Boolean(source.certificate || source.key) || (certificatesDir !== '' && existsSync(path.join(certificatesDir, 'live', source.domain, 'fullchain.pem')));
}

function parentDomain(domain: string): string {
  const dot = domain.indexOf('.');
  return dot === -1 ? domain : domain.slice(dot + 1);
}

async function generateSelfSigned(domain: string, certPath: string, keyPath: string): Promise<void> {
  const { generate } = await import('selfsigned');
  const notAfter = new Date(Date.now() + 365 * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: domain }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: domain },
          { type: 2, value: `*.${domain}` },
        ],
      },
    ],
  } as Parameters<typeof generate>[1]);
  mkdirSync(path.dirname(certPath), { recursive: true });
  writeFileSync(keyPath, pems.private, { mode: 0o600 });
  writeFileSync(certPath, pems.cert);
}

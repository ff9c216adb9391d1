// Is the peer's certificate good for a domain? PKIX chain validation is OpenSSL's, done during
// the TLS handshake against the trust anchors of S2sTls (the system's plus `ca_files`) and
// reported as `authorized` on the socket; this file matches the domain against the identities
// in the leaf certificate (RFC 6125, RFC 6120 §13.7.1.2, RFC 7673):
//
// - DNS-ID: subjectAltName dNSName, with a wildcard only as the whole left-most label
//   (`*.example.org` matches `chat.example.org`, not `example.org` or `a.b.example.org`);
//   the subject CN only when the certificate has no DNS-ID, SRV-ID or URI-ID (RFC 6125 §6.4.4).
// - SRV-ID: otherName SRVName (id-on-dnsSRV, RFC 4985) `_xmpp-server.<domain>` (or
//   `_xmpps-server.<domain>`, XEP-0368), compared exactly, no wildcards.
// - XmppAddr: otherName id-on-xmppAddr equal to the domain (RFC 6120 §13.7.1.4).
//
// Not done: name constraints beyond what OpenSSL checks, revocation (CRL/OCSP), DANE, POSH.
// Node's TLS server checks client certificates with the "SSL client" purpose, so a
// certificate whose extendedKeyUsage lacks clientAuth fails the chain check when it is
// presented by a connecting server (it still counts when we connect to that server).
import type { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';
import { domainToASCII } from 'node:url';
import { prepareDomain } from '../precis.js';

export interface PeerCertificate {
  /** A certificate was presented. */
  readonly present: boolean;
  /** The chain leads to a trusted anchor (OpenSSL's verdict in the handshake). */
  readonly chainValid: boolean;
  /** OpenSSL's reason when the chain is not valid (or 'no certificate'). */
  readonly chainError: string | undefined;
  /** Identities found in the leaf, for logs. */
  readonly names: string[];
  /** Chain valid and the leaf names `domain` (a prepared domain). */
  validFor(domain: string): boolean;
  /** Why it is not valid for `domain`, for logs and errors; undefined when it is. */
  problemFor(domain: string): string | undefined;
}

/** What the peer of a TLS socket proved, for matching domains against it. */
export function peerCertificate(socket: tls.TLSSocket | undefined): PeerCertificate {
  const x509 = socket?.getPeerX509Certificate();
  if (!socket || !x509) return noCertificate;
  const chainValid = socket.authorized === true;
  const chainError = chainValid ? undefined : String(socket.authorizationError ?? 'not verified');
  const names = listNames(x509);
  const problemFor = (domain: string) => {
    if (!chainValid) return `certificate not trusted (${chainError})`;
    return certificateNames(x509, domain) ? undefined : `certificate does not name ${domain} (it names ${names.join(', ') || 'nothing'})`;
  };
  return { present: true, chainValid, chainError, names, validFor: (d) => problemFor(d) === undefined, problemFor };
}

const noCertificate: PeerCertificate = {
  present: false,
  chainValid: false,
  chainError: 'no certificate',
  names: [],
  validFor: () => false,
  problemFor: () => 'no certificate presented',
};

/** Whether the leaf certificate names `domain` as an XMPP server (identity only, no chain check). */
export function certificateNames(x509: X509Certificate, domain: string): boolean {
  const ascii = domainToASCII(domain).toLowerCase();
  if (!ascii) return false;
  const sans = subjectAltNames(x509);
  for (const { type, value } of sans) {
    if (type === 'othername:SRVName') {
      const m = /^_(xmpps?-server)\.(.+)$/i.exec(value);
      if (m && sameDomain(m[2]!, ascii)) return true;
    } else if (type === 'othername:XmppAddr') {
      if (sameDomain(value, ascii)) return true;
    }
  }
  // DNS-ID through OpenSSL's X509_check_host; the subject CN only when the certificate has
  // no DNS-ID, SRV-ID or URI-ID at all (RFC 6125 §6.4.4).
  const hasIdentifiers = sans.some(({ type }) => type === 'DNS' || type === 'URI' || type === 'othername:SRVName');
  return (
    x509.checkHost(ascii, {
      subject: hasIdentifiers ? 'never' : 'always',
      wildcards: true,
      partialWildcards: false,
      multiLabelWildcards: false,
      singleLabelSubdomains: false,
    }) !== undefined
  );
}

function sameDomain(candidate: string, ascii: string): boolean {
  try {
    return domainToASCII(prepareDomain(candidate)).toLowerCase() === ascii;
  } catch {
    return false;
  }
}

function listNames(x509: X509Certificate): string[] {
  const names = subjectAltNames(x509).map(({ type, value }) => `${type}:${value}`);
  return names.length ? names : [x509.subject.replace(/\n/g, ', ')];
}

/**
 * The subjectAltName entries as Node prints them ("DNS:a, othername:XmppAddr:b, ..."); values
 * with a comma or a quote in them come JSON-quoted.
 */
export function subjectAltNames(x509: X509Certificate): { type: string; value: string }[] {
  const text = x509.subjectAltName;
  if (!text) return [];
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < text.length) {
    // type: up to the colon that starts the value (othername types contain one more colon)
    const firstColon = text.indexOf(':', i);
    if (firstColon === -1) break;
    let type = text.slice(i, firstColon);
    let valueStart = firstColon + 1;
    if (type === 'othername') {
      const second = text.indexOf(':', valueStart);
      if (second === -1) break;
      type = `othername:${text.slice(valueStart, second)}`;
      valueStart = second + 1;
    }
    let value: string;
    let end: number;
    if (text[valueStart] === '"') {
      end = valueStart + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(valueStart, end + 1)) as string;
      } catch {
        value = text.slice(valueStart + 1, end);
      }
      end = text.indexOf(',', end);
    } else {
      end = text.indexOf(',', valueStart);
      value = text.slice(valueStart, end === -1 ? undefined : end);
    }
    out.push({ type, value });
    if (end === -1) break;
    i = end + 1;
    while (text[i] === ' ') i++;
  }
  return out;
}

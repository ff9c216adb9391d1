// XEP-0227 files: reading one (its XInclude includes followed, as ejabberd's export_piefxis
// writes an index file including one file per host) into the accounts it holds; and the
// namespaces of the format.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Element } from '@xmpp/xml';
import { parseElement } from '../xml/parse.js';
import { OperatorError, reasonOf } from '../operator-error.js';

/** XEP-0227 1.1; the draft namespace is still read. */
export const NS_PIE = 'urn:xmpp:pie:0';
const NS_PIE_DRAFT = 'http://www.xmpp.org/extensions/xep-0227.html#ns';
export const NS_PIE_SCRAM = 'urn:xmpp:pie:0#scram';
export const NS_PIE_MAM = 'urn:xmpp:pie:0#mam';
export const NS_XINCLUDE = 'http://www.w3.org/2001/XInclude';

/** One account of a file: its host, name, and its <user/> element. */
export interface PieUser {
  host: string;
  name: string;
  user: Element;
  /** The file it was read from. */
  file: string;
}

const isPie = (el: Element, name: string) => el.name === name && (el.getNS() === NS_PIE || el.getNS() === NS_PIE_DRAFT);
const isInclude = (el: Element) => el.name.split(':').pop() === 'include' && el.getNS() === NS_XINCLUDE;

/** Parses one file (one XML document); the error names the file. */
function readDocument(file: string): Element {
  let textContent: string;
  try {
    textContent = readFileSync(file, 'utf8');
  } catch (err) {
    throw new OperatorError(`${file}: ${reasonOf(err)}`);
  }
  // The XML declaration (ejabberd writes one) is not part of the restricted XML the parser takes.
  const body = textContent.replace(/^\uFEFF?\s*<\?xml[^?]*\?>/, '').trim();
  try {
    return parseElement(body);
  } catch (err) {
    throw new OperatorError(`${file}: not an XML document this importer reads (${reasonOf(err)})`);
  }
}

/**
 * The accounts of `file` and the files it includes (relative hrefs, as XEP-0227 §5 requires;
 * no parse or xpointer attribute), in document order. A file that is not XEP-0227 data, an
 * include that cannot be followed, or a user without a name is an OperatorError naming the file.
 */
export function readPieFile(file: string, seen = new Set<string>()): PieUser[] {
  const users: PieUser[] = [];
  const walk = (el: Element, host: string | undefined, where: string, chain: Set<string>) => {
    if (isInclude(el)) {
      const href = el.attrs.href as string | undefined;
      if (!href || el.attrs.parse || el.attrs.xpointer) throw new OperatorError(`${where}: an <include/> without href, or with parse or xpointer, is not supported`);
      if (/^[a-z][a-z0-9+.-]*:/i.test(href) && !href.startsWith('file:'))
        throw new OperatorError(`${where}: <include href="${href}">: only files (relative paths) can be included`);
      const target = path.resolve(path.dirname(where), href.replace(/^file:(\/\/)?/, ''));
      if (chain.has(target)) throw new OperatorError(`${where}: <include href="${href}"> includes itself`);
      seen.add(target);
      walk(readDocument(target), host, target, new Set([...chain, target]));
      return;
    }
    if (isPie(el, 'server-data')) {
      for (const child of el.getChildElements()) walk(child, host, where, chain);
    } else if (isPie(el, 'host')) {
      const jid = el.attrs.jid as string | undefined;
      if (!jid) throw new OperatorError(`${where}: a <host/> without a jid attribute`);
      for (const child of el.getChildElements()) walk(child, jid.toLowerCase(), where, chain);
    } else if (isPie(el, 'user')) {
      const name = el.attrs.name as string | undefined;
      if (!name) throw new OperatorError(`${where}: a <user/> without a name attribute`);
      if (!host) throw new OperatorError(`${where}: the <user name="${name}"/> is not inside a <host/>`);
      users.push({ host, name, user: el, file: where });
    } else if (el === root) {
      throw new OperatorError(`${where}: not XEP-0227 data (the document is <${el.name} xmlns="${el.getNS() ?? ''}">, not <server-data xmlns="${NS_PIE}">)`);
    }
    // Anything else at this level (another namespace) is an extension this importer does not know.
  };
  const absolute = path.resolve(file);
  seen.add(absolute);
  const root = readDocument(absolute);
  walk(root, undefined, absolute, new Set([absolute]));
  return users;
}

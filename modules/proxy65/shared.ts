// One SOCKS5 proxy per listening address in the process: hosts that enable proxy65 on the same
// interfaces and port share it (a bytestream's hash names it whichever host activates it). The
// first host to open it sets its limits; it closes when the last host unloads.
import type { Logger } from '../../src/log.js';
import { Socks5Proxy, type ProxyLimits } from './proxy.js';

interface Entry {
  proxy: Socks5Proxy;
  limits: string;
  port: Promise<number>;
  users: number;
}

const open = new Map<string, Entry>();

export interface SharedProxy {
  proxy: Socks5Proxy;
  port: number;
  release(): Promise<void>;
}

export async function acquireProxy(interfaces: string[], port: number, limits: ProxyLimits, log: Logger): Promise<SharedProxy> {
  // Port 0 (tests) means a port of its own each time.
  const key = port === 0 ? Symbol('own') : `${[...interfaces].sort().join(',')}:${port}`;
  let entry = typeof key === 'string' ? open.get(key) : undefined;
  if (!entry) {
    const proxy = new Socks5Proxy(limits, log);
    entry = { proxy, limits: JSON.stringify(limits), port: proxy.listen(interfaces, port), users: 0 };
    if (typeof key === 'string') open.set(key, entry);
  } else if (entry.limits !== JSON.stringify(limits)) {
    log.warn({ port }, 'proxy65 shares the listener of another host, whose limits apply: these differ and are not used');
  }
  const shared = entry;
  shared.users++;
  const forget = () => typeof key === 'string' && open.get(key) === shared && open.delete(key);
  try {
    const bound = await shared.port;
    let released = false;
    return {
      proxy: shared.proxy,
      port: bound,
      release: async () => {
        if (released) return;
        released = true;
        if (--shared.users > 0) return;
        forget();
        await shared.proxy.close();
      },
    };
  } catch (err) {
    shared.users--;
    forget();
    throw err;
  }
}

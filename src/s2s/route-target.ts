// Static s2s routes (`[s2s] routes = { "example.net" = "127.0.0.1:15269" }`): where to connect
// for a remote domain instead of asking DNS. "host:port" (STARTTLS), "[v6]:port", and
// "xmpps://host:port" for direct TLS (XEP-0368).

export interface ConnectTarget {
  /** Host name or IP address to connect to. */
  host: string;
  port: number;
  /** TLS from the first byte (an _xmpps-server record or an xmpps:// route), not STARTTLS. */
  directTls: boolean;
}

const TARGET = /^(?:(xmpps):\/\/)?(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/;

/** Parses a route value; undefined when it is not one of the accepted forms. */
export function parseRouteTarget(value: string): ConnectTarget | undefined {
  const m = TARGET.exec(value.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { host, port, directTls: m[1] === 'xmpps' };
}

export const ROUTE_TARGET_HELP = 'expected "host:port", "[ipv6]:port" or "xmpps://host:port" (direct TLS)';

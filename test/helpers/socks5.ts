// A SOCKS5 client (RFC 1928) as XEP-0065 parties speak it, over a node socket, byte by byte:
// for the proxy65 tests and bench. Collects what the proxy writes; waits on byte counts.
import net from 'node:net';

export class Socks5Client {
  readonly socket: net.Socket;
  private data: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  /** Resolves when the proxy has closed the connection (or it failed). */
  readonly closed: Promise<void>;
  ended = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk]);
      this.waiter?.();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.waiter?.();
        resolve();
      }),
    );
  }

  static async open(port: number, host = '127.0.0.1'): Promise<Socks5Client> {
    const socket = net.connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new Socks5Client(socket);
  }

  /** Resolves with the next `n` bytes, or rejects when the connection closes first. */
  async read(n: number): Promise<Buffer> {
    while (this.data.length < n) {
      if (this.ended) throw new Error(`connection closed with ${this.data.length} of ${n} bytes`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const out = this.data.subarray(0, n);
    this.data = this.data.subarray(n);
    return out;
  }

  write(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** Greeting with `methods`; resolves with the method the proxy chose. */
  async greet(methods = [0]): Promise<number> {
    this.write([5, methods.length, ...methods]);
    const [, method] = await this.read(2);
    return method!;
  }

  /** A request for DOMAINNAME `address` port 0; resolves with the reply code and the bound address. */
  async request(address: string, command = 1): Promise<{ code: number; bound: string }> {
    const name = Buffer.from(address, 'latin1');
    this.write(Buffer.concat([Buffer.from([5, command, 0, 3, name.length]), name, Buffer.from([0, 0])]));
    const [, code, , type, length] = await this.read(5);
    if (type !== 3) throw new Error(`reply with address type ${type}`);
    const bound = (await this.read(length!)).toString('latin1');
    await this.read(2);
    return { code: code!, bound };
  }

  /** Greeting and CONNECT to `hash`; throws unless both succeed. */
  static async connect(port: number, hash: string): Promise<Socks5Client> {
    const c = await Socks5Client.open(port);
    if ((await c.greet()) !== 0) throw new Error('the proxy refused the no-auth method');
    const { code, bound } = await c.request(hash);
    if (code !== 0) throw new Error(`the proxy refused the CONNECT (${code})`);
    if (bound !== hash) throw new Error(`the proxy bound ${bound}, not ${hash}`);
    return c;
  }
}

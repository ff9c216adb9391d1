// The CLI's side of the control channel: finds the running server by its socket in the data
// directory and sends it requests, one JSON line each way.
import net from 'node:net';
import { CommandError } from '../module-api/commands.js';
import { controlSocketPath, type ControlErrorKind, type ControlRequest, type ControlResponse } from './protocol.js';

/** The server answered with an error (an account problem, a bad request, a fault of its own). */
export class ControlError extends CommandError {
  constructor(
    readonly kind: ControlErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

export class ControlClient {
  private nextId = 1;
  private buffered = '';
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    readonly path: string,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new Error(`the control socket ${path}: ${err.message}`)));
    socket.on('close', () => this.fail(new Error(`the server closed the control connection (${path})`)));
  }

  /**
   * Connects to the server running with `dataDir`; undefined when none is (no socket, or a
   * socket nobody listens on: left by a crashed process). Any other failure (no permission) throws.
   */
  static async connect(dataDir: string, options: { timeoutMs?: number } = {}): Promise<ControlClient | undefined> {
    const path = controlSocketPath(dataDir);
    const socket = await new Promise<net.Socket | undefined>((resolve, reject) => {
      const s = net.connect(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`the control socket ${path} does not answer`));
      }, 5000);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(undefined);
        else if (err.code === 'EACCES') reject(new Error(`no permission to use the control socket ${path}: run this as the user the server runs as`));
        else reject(new Error(`cannot reach the server through ${path}: ${err.message}`));
      });
    });
    return socket && new ControlClient(socket, path, options.timeoutMs ?? 30_000);
  }

  /** Sends a request; resolves with its result, rejects with a ControlError when it failed. */
  request<T>(request: ControlRequest): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer from the server within ${this.timeoutMs / 1000} s (${this.path})`));
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.socket.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  close(): void {
    this.failure ??= new Error('closed');
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) !== -1) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      let response: ControlResponse;
      try {
        response = JSON.parse(line) as ControlResponse;
      } catch {
        return this.fail(new Error(`the server sent something that is not JSON over ${this.path}`));
      }
      const waiter = this.pending.get(response.id);
      if (!waiter) continue;
      this.pending.delete(response.id);
      if (response.ok) waiter.resolve(response.result);
      else waiter.reject(new ControlError(response.kind, response.error));
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }
}

// Reading a password for the CLI: from a file, from a terminal without echo (asked twice when
// `again` is given, as a typo there would lock the account out), or from stdin.
import { readFileSync } from 'node:fs';
import { OperatorError } from './operator-error.js';

export interface PasswordPrompts {
  prompt: string;
  /** On a terminal: asked for a second time with this prompt; the two must be the same. */
  again?: string;
}

/** The prompts of a new password: asked twice on a terminal. */
export function newPassword(prompt: string): PasswordPrompts {
  return { prompt, again: 'Retype it: ' };
}

export async function readPassword(file: string | undefined, prompts: PasswordPrompts): Promise<string> {
  if (file) {
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new OperatorError(`--password-file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
    }
    return firstLine(text);
  }
  if (process.stdin.isTTY) return promptOnTerminal(process.stdin, process.stderr, prompts);
  return firstLine(await readAll(process.stdin));
}

function firstLine(text: string): string {
  return text.split(/\r?\n/)[0] ?? '';
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

/** The terminal side of a prompt: what process.stdin is on a TTY. */
export interface RawInput extends NodeJS.ReadableStream {
  setRawMode(raw: boolean): unknown;
}

/** Asks for the password with echo off, twice when `prompts.again` is given. */
export async function promptOnTerminal(input: RawInput, output: NodeJS.WritableStream, prompts: PasswordPrompts): Promise<string> {
  const lines = new HiddenLines(input, output);
  try {
    const password = await lines.read(prompts.prompt);
    if (prompts.again === undefined) return password;
    if ((await lines.read(prompts.again)) !== password) throw new OperatorError('the two passwords differ; nothing changed');
    return password;
  } finally {
    lines.close();
  }
}

/**
 * Lines typed on a terminal in raw mode (no echo). Keystrokes that arrive together (a paste)
 * are kept for the next read rather than lost.
 */
class HiddenLines {
  private pending = '';
  private waiting: { resolve: (line: string) => void; reject: (err: Error) => void; line: string } | undefined;
  private readonly onData = (chars: string | Buffer) => {
    this.pending += chars.toString();
    this.pump();
  };

  constructor(
    private readonly input: RawInput,
    private readonly output: NodeJS.WritableStream,
  ) {
    input.setRawMode(true);
    input.setEncoding('utf8');
    input.on('data', this.onData);
    input.resume();
  }

  read(prompt: string): Promise<string> {
    this.output.write(prompt);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject, line: '' };
      this.pump();
    });
  }

  close(): void {
    this.input.off('data', this.onData);
    this.input.setRawMode(false);
    this.input.pause();
  }

  private pump(): void {
    const waiting = this.waiting;
    if (!waiting) return;
    while (this.pending.length > 0) {
      const ch = this.pending[0]!;
      this.pending = this.pending.slice(1);
      if (ch === '\r' || ch === '\n' || ch === '\u0004') {
        this.waiting = undefined;
        this.output.write('\n');
        // A CR LF pair is one end of line.
        if (ch === '\r' && this.pending[0] === '\n') this.pending = this.pending.slice(1);
        return waiting.resolve(waiting.line);
      }
      if (ch === '\u0003') {
        this.waiting = undefined;
        this.output.write('\n');
        return waiting.reject(new OperatorError('interrupted'));
      }
      if (ch === '\u007f' || ch === '\b') waiting.line = waiting.line.slice(0, -1);
      else waiting.line += ch;
    }
  }
}

// Reading a password for the CLI: from a file, from a terminal without echo, or from stdin.
import { readFileSync } from 'node:fs';
import { OperatorError } from './operator-error.js';

export async function readPassword(file: string | undefined, prompt: string): Promise<string> {
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
  if (process.stdin.isTTY) return promptHidden(prompt);
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

/** Reads a line from the terminal with echo off. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  let input = '';
  return new Promise((resolve, reject) => {
    const onData = (chars: string) => {
      for (const ch of chars) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          return resolve(input);
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          return reject(new Error('interrupted'));
        }
        if (ch === '\u007f' || ch === '\b') input = input.slice(0, -1);
        else input += ch;
      }
    };
    stdin.on('data', onData);
  });
}

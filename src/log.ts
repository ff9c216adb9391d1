// pino everywhere: JSON by default (for log collectors), readable when stdout is a terminal.
// Modules and sessions log through child loggers ({ module } and { sid, jid }).
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level: string;
  format: 'auto' | 'json' | 'pretty';
}

export function createLogger(options: LogOptions): Logger {
  const pretty = options.format === 'pretty' || (options.format === 'auto' && process.stdout.isTTY === true);
  if (!pretty) return pino({ level: options.level, base: { pid: process.pid } });
  return pino({
    level: options.level,
    transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
  });
}

/** A logger that says nothing, for tests and the CLI's quiet commands. */
export const silentLogger: Logger = pino({ level: 'silent' });

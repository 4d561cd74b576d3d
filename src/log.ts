/**
 * The agent's logger: pino, JSON lines by default (for journald, Docker,
 * Loki...), human-readable when the output is a terminal.
 */
import { pino, type Logger } from 'pino';

export type LogFormat = 'auto' | 'json' | 'pretty';

export async function createLogger(level: string, format: LogFormat = 'auto', stream: NodeJS.WritableStream = process.stdout): Promise<Logger> {
  const pretty = format === 'pretty' || (format === 'auto' && (stream as NodeJS.WriteStream).isTTY === true);
  const options = { level, base: { pid: process.pid }, name: 'flowscope' };
  if (pretty) {
    try {
      const { default: prettyStream } = await import('pino-pretty');
      return pino(options, prettyStream({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', destination: stream }));
    } catch {
      // pino-pretty missing: fall back to JSON rather than fail.
    }
  }
  return pino(options, stream);
}

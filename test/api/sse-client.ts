/** A raw SSE client for limit tests: counts events, can stop reading, and says how it ended. */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';

export interface SseClient {
  status: Promise<number>;
  /** everything read so far (events and comments) */
  text(): string;
  /** parsed `data:` events so far */
  records(): { packets: number; sport: number; [k: string]: unknown }[];
  /** resolves when the server ended the stream or the connection closed ('end' = clean end, 'close' = cut) */
  ended: Promise<'end' | 'close'>;
  /** stop / start reading from the socket */
  pause(): void;
  resume(): void;
  destroy(): void;
  body(): Promise<string>;
  req: ClientRequest;
}

export function sseClient(url: string, opts: { paused?: boolean; headers?: Record<string, string> } = {}): SseClient {
  let text = '';
  let response: IncomingMessage | undefined;
  let paused = opts.paused ?? false;
  let resolveEnd!: (how: 'end' | 'close') => void;
  const ended = new Promise<'end' | 'close'>((r) => (resolveEnd = r));
  const req = request(url, { agent: false, headers: opts.headers });
  // A paused response may never emit 'end' or 'close' of its own: the socket closing is the end then.
  req.on('close', () => setImmediate(() => resolveEnd('close')));
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      response = res;
      res.setEncoding('utf8');
      if (paused) res.pause();
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolveEnd('end'));
      res.on('close', () => resolveEnd('close'));
      res.on('error', () => resolveEnd('close'));
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err) => {
      resolveEnd('close');
      reject(err);
    });
  });
  status.catch(() => undefined);
  req.end();
  return {
    req,
    status,
    text: () => text,
    records: () =>
      text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6))),
    ended,
    pause() {
      paused = true;
      response?.pause();
    },
    resume() {
      paused = false;
      response?.resume();
    },
    destroy() {
      req.destroy();
    },
    async body() {
      await ended;
      return text;
    },
  };
}

/** flowscope interfaces and its --watch: redrawn in place on a terminal, a table after the other elsewhere, ends cleanly at Ctrl-C. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ANSI, watch } from '../../src/cli/watch.js';
import { makeAgent, makeApp, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { CLI_COMMAND, finished, listen, ROOT, spawnCli } from './run-cli.js';

const escape = (text: string) => text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');

describe('watch loop', () => {
  const run = async (tty: boolean, frames: (() => string)[]) => {
    const written: string[] = [];
    const warned: string[] = [];
    const abort = new AbortController();
    let n = 0;
    await watch({
      intervalMs: 1,
      tty,
      render: async () => {
        const text = frames[n++]();
        if (n === frames.length) abort.abort();
        return text;
      },
      write: (text) => void written.push(text),
      warn: (line) => void warned.push(line),
      signal: abort.signal,
    });
    return { written: written.join(''), warned };
  };
  const fail = () => {
    throw new Error('cannot reach flowscope at http://127.0.0.1:1: ECONNREFUSED');
  };

  it('redraws in place on a terminal and gives the cursor back', async () => {
    const { written } = await run(true, [() => 'A\nB', fail, () => 'C']);
    expect(written.startsWith(ANSI.hideCursor + ANSI.home)).toBe(true);
    expect(written.endsWith(ANSI.showCursor)).toBe(true);
    const frames = written.slice(ANSI.hideCursor.length, -ANSI.showCursor.length).split(ANSI.home).slice(1);
    expect(frames).toEqual([
      `A${ANSI.clearLine}\nB${ANSI.clearLine}\n${ANSI.clearToEnd}`,
      // a failed refresh is shown in the frame, and the loop goes on
      `flowscope: cannot reach flowscope at http://127.0.0.1:1: ECONNREFUSED${ANSI.clearLine}\n${ANSI.clearToEnd}`,
      `C${ANSI.clearLine}\n${ANSI.clearToEnd}`,
    ]);
  });

  it('prints frame after frame without ANSI elsewhere, failures on the warning channel', async () => {
    const { written, warned } = await run(false, [() => 'A', fail, () => 'B']);
    expect(written).toBe('A\nB\n');
    expect(warned).toEqual(['flowscope: cannot reach flowscope at http://127.0.0.1:1: ECONNREFUSED']);
  });

  it('fails when the first frame fails (nothing to watch)', async () => {
    await expect(run(true, [fail])).rejects.toThrow(/cannot reach/);
  });
});

describe('flowscope interfaces --watch', () => {
  let t: TestAgent;
  let app: FastifyInstance;
  let server: string;
  let feeder: NodeJS.Timeout;

  beforeAll(async () => {
    t = await makeAgent({ clock: Date.now });
    app = await makeApp(t);
    server = await listen(app);
    // traffic all along, so successive frames differ
    feeder = setInterval(() => {
      t.source.push([udp('10.0.0.1', '10.0.0.9', 1000, 53, 1, 100)]);
      void t.agent.collector.pollOnce();
    }, 100);
  });
  afterAll(async () => {
    clearInterval(feeder);
    await app.close();
  });

  /** Resolves once `text()` holds `count` matches of `pattern`. */
  const waitFor = (stream: NodeJS.ReadableStream, pattern: RegExp, count: number) =>
    new Promise<void>((resolve, reject) => {
      let text = '';
      stream.on('data', (d: Buffer) => {
        text += d.toString();
        if ((text.match(pattern) ?? []).length >= count) resolve();
      });
      stream.on('end', () => reject(new Error(`ended after: ${text}`)));
    });

  it('prints a new table each time when not on a terminal, and exits 0 at SIGINT', async () => {
    const child = spawnCli(['interfaces', '--watch', '--interval', '200ms', '--server', server]);
    const done = finished(child);
    await waitFor(child.stdout!, /^flowscope interfaces, every 200ms: /gm, 3);
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toContain('\x1b[');
    const frames = r.stdout.split(/^flowscope interfaces, every 200ms: .*\n/m).slice(1);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    for (const frame of frames) expect(frame).toMatch(/^IFACE\s+IFINDEX\s+HOOK\s+RX_PACKETS[^\n]*\neth0\s+2\s+tc\s+\d+\s+\d+\s[^\n]*\neth1\s+3\s/);
  });

  it('redraws in place on a terminal, and Ctrl-C ends it with the cursor back', async () => {
    if (!existsSync('/usr/bin/script')) {
      console.log('skipped: needs script(1) (util-linux) for a terminal');
      return;
    }
    // script(1) gives the CLI a terminal; a ^C typed into it is the terminal's SIGINT. script runs
    // `$SHELL -c`, and dash (/bin/sh, used when SHELL is unset as in CI) does not exec a lone command:
    // the shell would stay in the foreground group and die of the ^C (exit 130). `exec` leaves only the CLI.
    const command = ['exec', ...CLI_COMMAND, 'interfaces', '--watch', '--interval', '200ms', '--server', server].join(' ');
    const child = spawn('/usr/bin/script', ['-qfec', command, '/dev/null'], { cwd: ROOT, env: { ...process.env, FLOWSCOPE_TOKEN: '', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const done = finished(child);
    await waitFor(child.stdout!, new RegExp(`${escape(ANSI.home)}flowscope interfaces`, 'g'), 3);
    child.stdin!.write('\x03');
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(ANSI.hideCursor + ANSI.home)).toBe(true);
    expect(r.stdout.trimEnd().endsWith(ANSI.showCursor)).toBe(true);
    // every frame starts at home and clears what the previous one left below it
    const frames = r.stdout.split(ANSI.home).slice(1);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    for (const frame of frames.slice(0, -1)) {
      expect(frame).toMatch(new RegExp(`^flowscope interfaces, every 200ms: [^\\n]*${escape(ANSI.clearLine)}\\r?\\nIFACE\\s+IFINDEX`));
      expect(frame.endsWith(ANSI.clearToEnd)).toBe(true);
    }
  });
});

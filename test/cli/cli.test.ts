/**
 * The CLI as a user runs it: a separate process against an API served on an
 * ephemeral loopback port by an agent on a synthetic source.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { makeAgent, makeApp, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { cli, finished, listen, MAIN, ROOT, spawnCli, type Result } from './run-cli.js';

let t: TestAgent;
let app: FastifyInstance;
let server: string;

beforeAll(async () => {
  t = await makeAgent({ clock: Date.now, top: { bucketMs: 100, horizonMs: 60_000, capacity: 100 } });
  t.source.push([
    udp('10.0.0.1', '10.0.0.9', 1000, 53, 3, 300),
    udp('10.0.0.2', '10.0.0.9', 1001, 53, 5, 500),
    { iface: 'eth1', direction: 'egress', src: '2001:db8::1', dst: '2001:db8::2', proto: 6, sport: 40000, dport: 443, packets: 7, bytes: 7000, tcpFlags: 0x12 },
  ]);
  await t.agent.collector.pollOnce();
  await new Promise((r) => setTimeout(r, 250));
  await t.agent.collector.pollOnce();
  app = await makeApp(t, { token: 'tok' });
  server = await listen(app);
});
afterAll(() => app.close());

const auth = () => ['--server', server, '--token', 'tok'];

describe('flowscope observe', () => {
  it('prints records oldest first in compact form', async () => {
    const r = await cli(['observe', ...auth()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/ eth0 ingress 10\.0\.0\.1:1000 -> 10\.0\.0\.9:53 udp 3 packets 300 bytes$/);
    expect(lines[2]).toMatch(/ eth1 egress  \[2001:db8::1\]:40000 -> \[2001:db8::2\]:443 tcp 7 packets 7000 bytes \[SYN,ACK\]$/);
  });

  it('filters like hubble observe and prints JSON lines', async () => {
    const r = await cli(['observe', ...auth(), '--from-ip', '10.0.0.0/8', '--to-port', '53', '--protocol', 'udp', '--last', '1', '-o', 'json']);
    expect(r.code).toBe(0);
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ src: '10.0.0.2', dport: 53, packets: 5 });
  });

  it('prints a table', async () => {
    const r = await cli(['observe', ...auth(), '-o', 'table', '--iface', 'eth1']);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+IFACE\s+DIR\s+SOURCE\s+DESTINATION\s+PROTO\s+PACKETS\s+BYTES\s+FLAGS\s+WORKLOAD$/);
    expect(lines[1]).toMatch(/eth1\s+egress\s+\[2001:db8::1\]:40000\s+\[2001:db8::2\]:443\s+tcp\s+7\s+7000\s+SYN,ACK\s+-$/);
  });

});

describe('flowscope top, interfaces, status', () => {
  it('prints the top talkers', async () => {
    const r = await cli(['top', ...auth(), '--by', 'src', '--metric', 'packets', '-k', '2']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^top src by packets, window 1m/);
    expect(lines[2]).toMatch(/^1\s+2001:db8::1\s+7000\s+7\s+46\.7%$/);
    expect(lines[3]).toMatch(/^2\s+10\.0\.0\.2\s+500\s+5\s+33\.3%$/);
    expect(lines).toHaveLength(4);
    const flow = await cli(['top', ...auth(), '--by', 'flow', '--port', '443', '-o', 'json']);
    expect(JSON.parse(flow.stdout).entries[0].key).toMatchObject({ src: '2001:db8::1', dport: 443 });
  });

  it('prints interfaces and status', async () => {
    const i = await cli(['interfaces', ...auth()]);
    expect(i.stdout).toMatch(/^IFACE\s+IFINDEX\s+HOOK\s+RX_PACKETS/);
    expect(i.stdout).toMatch(/\neth0\s+2\s+tc\s+8\s+800\s/);
    const s = await cli(['status', ...auth(), '-o', 'json']);
    expect(JSON.parse(s.stdout)).toMatchObject({ node: 'test-node', ready: true });
    const text = await cli(['status', ...auth()]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^agent test-node, version 0\.0\.0-test: ready, up \d+(s|m\d\ds)/);
    expect(text.stdout).toMatch(/^eth0\s+2\s+tc\/tcx\s+8\s+800 B\s/m);
    expect(text.stdout).toMatch(/^memory\s+3\s+0\s/m);
  });

  it('uses FLOWSCOPE_SERVER and FLOWSCOPE_TOKEN', async () => {
    const r = await cli(['status', '-o', 'json'], { FLOWSCOPE_SERVER: server, FLOWSCOPE_TOKEN: 'tok' });
    expect(r.code).toBe(0);
  });
});

describe('errors', () => {
  const oneLine = (r: Result) => {
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^flowscope: /);
  };

  it.each([
    [['observe', '--bogus']],
    [['observe', '-o', 'yaml']],
    [['observe', '--last', '0']],
    [['observe', '--direction', 'sideways']],
    [['top', '--by', 'host']],
    [['top', '--metric', 'flows']],
    [['top', '-k', 'ten']],
    [['top', '--by']],
    [['top', '--bye', 'src']],
    [['observe', '-o', 'table', '-f=1']],
    [['interfaces', 'extra']],
    [['interfaces', '--interval', '1s']],
    [['interfaces', '--watch', '--interval', '5ms']],
    [['status', '-o', 'yaml']],
    [['completion']],
    [['completion', 'fish']],
    [['status', '--server', 'not a url']],
    [['frobnicate']],
    [['run']],
    [['run', '--iface', 'flowscope-none0']],
    [['run', '--iface', 'lo', '--hook', 'bpf']],
    [['run', '--iface', 'lo', '--poll-interval', 'soon']],
    [['run', '--iface', 'lo', '--listen', 'nowhere']],
    [['run', '--iface', 'lo', '--config', '/nonexistent/flowscope.yaml']],
    [['run', '--iface', 'lo', '--redis', 'redis://127.0.0.1:99999']],
    [['run', '--unknown-flag']],
  ])('flowscope %j exits 2 with one line', async (args) => {
    const r = await cli([...args, ...(args[0] === 'run' || args[0] === 'completion' || args.includes('--server') ? [] : auth())]);
    expect(r.code).toBe(2);
    oneLine(r);
  });

  it.each([
    [['top', '--by', 'host'], /^flowscope: top: --by "host" is unknown; use src, dst, .*, iface, node/],
    [['top', '--metric'], /^flowscope: top: --metric needs a value: bytes or packets /],
    [['observe', '--form-ip', '10.0.0.1'], /^flowscope: observe: unknown flag --form-ip; did you mean --from-ip\?/],
    [['status', '--bogus'], /^flowscope: status: unknown flag --bogus; use --output, --server, --token or --help$/],
    [['observe', '-o', 'yaml'], /^flowscope: observe: --output "yaml" is unknown; use compact, json or table$/],
    [['interfaces', 'extra'], /^flowscope: interfaces: unexpected argument "extra"; interfaces takes flags only/],
    [['completion', 'fish'], /^flowscope: completion: give one shell, bash or zsh, not "fish"$/],
    [['frobnicate'], /^flowscope: unknown command "frobnicate"; use run, observe, top, interfaces, status, relay, detach or completion$/],
  ])('flowscope %j says what is allowed', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(message);
  });

  it('exits 2 when the server rejects a filter value', async () => {
    const r = await cli(['observe', ...auth(), '--from-ip', '10.0.0.0/99']);
    expect(r.code).toBe(2);
    oneLine(r);
    expect(r.stderr).toMatch(/src: "10\.0\.0\.0\/99" is not an IP address or CIDR/);
  });

  it('exits 1 with one line when the server is unreachable or the token wrong', async () => {
    const down = await cli(['status', '--server', 'http://127.0.0.1:1']);
    expect(down.code).toBe(1);
    oneLine(down);
    expect(down.stderr).toMatch(/cannot reach flowscope at http:\/\/127\.0\.0\.1:1/);
    const denied = await cli(['status', '--server', server, '--token', 'nope']);
    expect(denied.code).toBe(1);
    oneLine(denied);
    expect(denied.stderr).toMatch(/requires a token/);
  });

  it('exits 2 with one line without the privileges to attach', async () => {
    if (process.getuid?.() !== 0 || !existsSync('/usr/bin/setpriv')) {
      console.log('skipped: needs root and setpriv to run the CLI as an unprivileged user');
      return;
    }
    const r = await new Promise<Result>((resolve) => {
      execFile('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '--import', 'tsx', MAIN, 'run', '--iface', 'lo'], { cwd: ROOT, env: { ...process.env, HOME: '/tmp' }, timeout: 20_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(r.code).toBe(2);
    oneLine(r);
    expect(r.stderr).toMatch(/CAP_BPF.*CAP_NET_ADMIN/);
  });

  it('reads bad config files as usage errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowscope-cli-'));
    writeFileSync(join(dir, 'c.yaml'), 'poll-interval: never\n');
    const r = await cli(['run', '--iface', 'lo', '--config', join(dir, 'c.yaml')]).finally(() => rmSync(dir, { recursive: true, force: true }));
    expect(r.code).toBe(2);
    oneLine(r);
    expect(r.stderr).toMatch(/config file: poll-interval: "never" is not a duration/);
  });

  it('prints help', async () => {
    for (const command of ['observe', 'top', 'run', 'interfaces', 'status', 'relay', 'detach', 'completion']) {
      const r = await cli([command, '--help']);
      expect(r.code, command).toBe(0);
      expect(r.stdout).toMatch(/^Usage: flowscope /);
    }
  });
});

// Last: it adds records the other tests do not expect.
describe('flowscope observe -f', () => {
  it('follows new records with -f and stops at SIGINT', async () => {
    const child = spawnCli(['observe', ...auth(), '-f', '--from-ip', '10.7.7.7', '-o', 'json']);
    const done = finished(child);
    let lines: string[] = [];
    const feeder = setInterval(() => {
      t.source.push([udp('10.7.7.7', '10.0.0.9', 1, 53, 1, 77)]);
      void t.agent.collector.pollOnce();
    }, 300);
    try {
      await new Promise<void>((resolve, reject) => {
        let text = '';
        child.stdout!.on('data', (d: Buffer) => {
          text += d.toString();
          lines = text.split('\n').filter(Boolean);
          if (lines.length >= 2) resolve();
        });
        child.on('close', () => reject(new Error(`observe -f ended early: ${text}`)));
      });
    } finally {
      clearInterval(feeder);
      child.kill('SIGINT');
    }
    const r = await done;
    expect(r.code).toBe(0);
    const records = lines.map((l) => JSON.parse(l));
    expect(records.every((x) => x.src === '10.7.7.7' && x.bytes === 77)).toBe(true);
  });
});

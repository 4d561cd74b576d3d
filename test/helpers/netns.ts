/**
 * A network namespace joined to the root namespace by a veth pair, for tests
 * that send real traffic. The root side (`hostIf`) is where flowscope attaches;
 * the namespace side (`peerIf`) is where traffic comes from. Addresses are in
 * 198.18.0.0/15 and fd00:f10c::/32 (benchmarking / unique-local ranges) and
 * exist only inside this pair.
 *
 * IPv6 autoconfiguration is off so that no router solicitations or MLD
 * reports appear that the test did not send; ARP and neighbour discovery
 * still happen, as on any link.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface VethPair {
  ns: string;
  hostIf: string;
  peerIf: string;
  hostV4: string;
  peerV4: string;
  hostV6: string;
  peerV6: string;
  /** runs a command inside the namespace and returns its stdout */
  exec(cmd: string, args: string[], opts?: { timeoutMs?: number }): string;
  /** starts a command inside the namespace */
  spawn(cmd: string, args: string[]): ChildProcess;
  destroy(): void;
}

function run(cmd: string, args: string[], timeoutMs = 20_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryRun(cmd: string, args: string[]): void {
  try {
    run(cmd, args);
  } catch {
    /* already gone */
  }
}

let pairsMade = 0;

/**
 * Creates the pair; `subnet` (0-255) picks 198.18.SUBNET.0/30 so several pairs
 * can coexist. `prefix` starts the interface names (default "fs"), so a test
 * can match its own pairs with a pattern such as `${prefix}h*`.
 */
export function createVethPair(subnet = 0, prefix = 'fs'): VethPair {
  const id = `${process.pid.toString(36)}${(pairsMade++).toString(36)}${randomBytes(1).toString('hex')}`.slice(-8);
  const ns = `fs-test-${id}`;
  const hostIf = `${prefix}h${id}`.slice(0, 15);
  const peerIf = `${prefix}p${id}`.slice(0, 15);
  const hostV4 = `198.18.${subnet}.1`;
  const peerV4 = `198.18.${subnet}.2`;
  const hostV6 = `fd00:f10c:0:${subnet.toString(16)}::1`;
  const peerV6 = `fd00:f10c:0:${subnet.toString(16)}::2`;

  const destroy = () => {
    tryRun('ip', ['link', 'del', hostIf]);
    tryRun('ip', ['netns', 'del', ns]);
  };
  try {
    run('ip', ['netns', 'add', ns]);
    run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf]);
    run('ip', ['link', 'set', peerIf, 'netns', ns]);
    for (const [where, ifname] of [['', hostIf], [ns, peerIf]] as const) {
      const pre = where ? ['ip', 'netns', 'exec', where] : [];
      const sh = (args: string[]) => (pre.length ? run(pre[0], [...pre.slice(1), ...args]) : run(args[0], args.slice(1)));
      sh(['sysctl', '-qw', `net.ipv6.conf.${ifname}.addr_gen_mode=1`]);
      sh(['sysctl', '-qw', `net.ipv6.conf.${ifname}.accept_ra=0`]);
      sh(['sysctl', '-qw', `net.ipv6.conf.${ifname}.router_solicitations=0`]);
    }
    run('ip', ['addr', 'add', `${hostV4}/30`, 'dev', hostIf]);
    run('ip', ['addr', 'add', `${hostV6}/64`, 'dev', hostIf, 'nodad']);
    run('ip', ['link', 'set', hostIf, 'up']);
    run('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${peerV4}/30`, 'dev', peerIf]);
    run('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${peerV6}/64`, 'dev', peerIf, 'nodad']);
    run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', peerIf, 'up']);
    run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    ns, hostIf, peerIf, hostV4, peerV4, hostV6, peerV6,
    exec: (cmd, args, opts) => run('ip', ['netns', 'exec', ns, cmd, ...args], opts?.timeoutMs),
    spawn: (cmd, args) => spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
    destroy,
  };
}

/** Creates a pair, runs fn, and removes the pair whatever happens. */
export async function withVethPair<T>(fn: (pair: VethPair) => Promise<T>, subnet = 0): Promise<T> {
  const pair = createVethPair(subnet);
  try {
    return await fn(pair);
  } finally {
    pair.destroy();
  }
}

/**
 * Makes the pair's link quiet: IPv6 off and permanent IPv4 neighbour entries
 * on both sides, so no ARP, ND or MLD frame appears, however long the test
 * runs. Every frame on the link is then one the test sent.
 */
export function quietLink(pair: VethPair): void {
  pair.exec('sysctl', ['-qw', `net.ipv6.conf.${pair.peerIf}.disable_ipv6=1`]);
  run('sysctl', ['-qw', `net.ipv6.conf.${pair.hostIf}.disable_ipv6=1`]);
  const hostMac = run('cat', [`/sys/class/net/${pair.hostIf}/address`]).trim();
  const peerMac = pair.exec('cat', [`/sys/class/net/${pair.peerIf}/address`]).trim();
  run('ip', ['neigh', 'replace', pair.peerV4, 'lladdr', peerMac, 'dev', pair.hostIf, 'nud', 'permanent']);
  pair.exec('ip', ['neigh', 'replace', pair.hostV4, 'lladdr', hostMac, 'dev', pair.peerIf, 'nud', 'permanent']);
}

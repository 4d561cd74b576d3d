/** flowscope run: the agent. */
import { existsSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError, readConfigFile, resolveConfig, type AgentConfig } from '../config/config.js';
import { listInterfacesWithIndex } from '../datapath/interfaces.js';
import { prerequisiteProblem } from '../datapath/prerequisites.js';
import type { PinnedStateReport } from '../datapath/types.js';
import { CgroupResolver } from '../flow/cgroups.js';
import type { CgroupLabeler } from '../flow/record-batch.js';
import { startServer } from '../api/server.js';
import { isLoopbackListen, parseListen } from '../lib/listen.js';
import { createLogger } from '../log.js';
import { Agent } from '../agent/agent.js';
import { InterfaceReconciler, isPattern, type ReconcileResult } from '../engine/interface-reconciler.js';
import { createSinks } from '../agent/sink-factory.js';
import { SinkUnavailableError } from '../agent/sink-factory.js';
import { openSource } from '../agent/source-factory.js';
import { takeEarlySighup } from './early-signals.js';
import { RUN_FLAGS } from './flags.js';
import { HELP, RuntimeFailure, UsageError, parseCommandArgs } from './usage.js';

export function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function loadRunConfig(args: string[], env: NodeJS.ProcessEnv): { config: AgentConfig; help: boolean } {
  const values: Record<string, string | string[] | boolean | undefined> = parseCommandArgs('run', args, RUN_FLAGS) as Record<string, string | string[] | boolean | undefined>;
  if (values.help) return { config: undefined as unknown as AgentConfig, help: true };
  const file = (values.config as string | undefined) ?? (env.FLOWSCOPE_CONFIG || undefined);
  try {
    const config = resolveConfig({ flags: values as Record<string, string | string[] | undefined>, env, file: file ? readConfigFile(file) : {} });
    return { config, help: false };
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`run: ${err.message}`);
    throw err;
  }
}

/**
 * The agent's signals, taken from the first moment: SIGTERM/SIGINT before the
 * agent runs stop it as soon as it does (never a kill that skips the clean-up);
 * a second one during the stop is logged, not obeyed; SIGHUP before the agent
 * runs is kept and applied once it does (Node's default would exit).
 */
class Signals {
  stopSignal: string | undefined;
  private hupPending = false;
  private onStop: ((signal: string) => void) | undefined;
  private onHup: (() => void) | undefined;
  private log: Logger | undefined;
  private readonly stop = (signal: NodeJS.Signals) => {
    if (this.stopSignal) {
      this.log?.warn({ signal }, 'already stopping: making the final export and cleaning up');
      return;
    }
    this.stopSignal = signal;
    this.onStop?.(signal);
  };
  private readonly hup = () => {
    if (this.onHup) this.onHup();
    else this.hupPending = true;
  };

  constructor() {
    process.on('SIGTERM', this.stop);
    process.on('SIGINT', this.stop);
    process.on('SIGHUP', this.hup);
    this.hupPending = takeEarlySighup();
  }

  setLog(log: Logger): void {
    this.log = log;
  }

  /** Resolves with the stop signal (at once if one came already). */
  stopped(): Promise<string> {
    return new Promise((resolve) => {
      if (this.stopSignal) resolve(this.stopSignal);
      else this.onStop = resolve;
    });
  }

  handleHup(fn: () => void): void {
    this.onHup = fn;
    if (this.hupPending) {
      this.hupPending = false;
      fn();
    }
  }

  /** After the stop: signals that still come while the process ends are ignored, not fatal (exit status 0 stays). */
  dispose(): void {
    process.off('SIGTERM', this.stop);
    process.off('SIGINT', this.stop);
    process.off('SIGHUP', this.hup);
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, ignoreLateSignal);
  }
}

const ignoreLateSignal = (): void => undefined;

/** Runs the agent until SIGINT/SIGTERM. */
export async function run(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const { config, help } = loadRunConfig(args, env);
  if (help) return out(HELP.run + '\n');
  const signals = new Signals();
  try {
    await runAgent(config, args, env, signals);
  } finally {
    signals.dispose();
  }
}

async function runAgent(config: AgentConfig, args: string[], env: NodeJS.ProcessEnv, signals: Signals): Promise<void> {
  if (config.ifaces.length === 0 && config.source === 'kernel') throw new UsageError('run: no interface given; use --iface NAME (or FLOWSCOPE_IFACE)');
  if (config.source === 'kernel') {
    for (const iface of config.ifaces) {
      if (!isPattern(iface) && !existsSync(`/sys/class/net/${iface}`)) throw new UsageError(`run: no such interface: ${iface} (see ip link)`);
    }
    const problem = prerequisiteProblem();
    if (problem) throw new UsageError(problem.replace(/^flowscope /, ''));
  }
  const ifaces = config.ifaces.length > 0 ? config.ifaces : ['synth0'];

  const log = await createLogger(config.logLevel, config.logFormat);
  signals.setLog(log);
  // The agent is built after its sinks; sinks that publish interface counters read them through this.
  let agentRef: Agent | undefined;
  let sinks;
  try {
    sinks = await createSinks({
      node: config.node,
      redisUrl: config.redis,
      redisMaxLen: config.redisMaxLen,
      redisBuffer: config.redisBuffer,
      redisBatch: config.redisBatch,
      redisExportIntervalMs: config.redisExportIntervalMs > config.exportIntervalMs ? config.redisExportIntervalMs : undefined,
      interfaces: () => agentRef?.interfaceAccounting.report() ?? [],
      log,
    });
  } catch (err) {
    if (err instanceof SinkUnavailableError) throw new UsageError(`run: ${err.message}`);
    throw err;
  }
  let source;
  try {
    source = await openSource({
      kind: config.source, flowMapSize: config.flowMapSize, syntheticFlows: config.syntheticFlows, syntheticIface: ifaces[0],
      ifaceMapSize: config.ifaceMapSize, pinDir: config.pinDir, tcMechanism: config.tcMechanism, attribution: config.attribution,
    });
  } catch (err) {
    for (const sink of sinks) await sink.close().catch(() => undefined);
    if ((err as Error).name === 'PinnedStateOwnedError') throw new RuntimeFailure(`run: ${(err as Error).message}`);
    throw new RuntimeFailure(`run: cannot open the datapath: ${(err as Error).message}`);
  }
  logPinnedState(log, source.stats().pinned);
  // A failed start leaves pinned state it took over as it found it (still counting), and removes what it made itself.
  const keepOnFailure = config.keepAttached || Boolean(source.stats().pinned?.adopted);
  const agent = new Agent(source, {
    node: config.node,
    version: version(),
    storeSize: config.storeSize,
    sinks,
    collector: {
      pollIntervalMs: config.pollIntervalMs,
      exportEveryPolls: Math.max(1, Math.round(config.exportIntervalMs / config.pollIntervalMs)),
    },
    expiry: {
      tcpIdleMs: config.tcpTimeoutMs,
      tcpSynMs: config.tcpSynTimeoutMs,
      tcpFinMs: config.tcpFinTimeoutMs,
      tcpRstMs: config.tcpRstTimeoutMs,
      udpIdleMs: config.udpTimeoutMs,
      icmpIdleMs: config.icmpTimeoutMs,
      otherIdleMs: config.idleTimeoutMs,
      activeMs: config.activeTimeoutMs,
      maxFlows: config.maxFlows,
    },
    top: { bucketMs: config.topBucketMs, horizonMs: config.topHorizonMs, capacity: config.topCapacity },
    keepAttached: config.keepAttached,
    labels: config.source === 'kernel' && config.attribution ? cgroupLabeler(new CgroupResolver()) : undefined,
    metricsWorkloads: config.metricsWorkloads,
  });
  agentRef = agent;
  try {
    await attachAll(agent, ifaces.filter((i) => !isPattern(i)), config, log);
  } catch (err) {
    await agent.source.close({ keepAttached: keepOnFailure }).catch(() => undefined);
    // A sink's open connection (Redis) would keep the process alive after the error.
    for (const sink of sinks) await sink.close().catch(() => undefined);
    throw err;
  }
  let server;
  try {
    server = await startServer(parseListen(config.listen)!, { services: agent.services(), version: version(), token: config.token, maxFollowers: config.maxFollowers }, log);
    if (!config.token && !isLoopbackListen(config.listen)) log.warn({ listen: config.listen }, '--insecure-no-auth: the API is open to anyone who reaches this address');
  } catch (err) {
    await agent.close({ keepAttached: keepOnFailure }).catch(() => undefined);
    throw new RuntimeFailure(`run: cannot listen on ${config.listen}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  agent.source.setOwnerApi?.(server.url);
  agent.start();
  log.info({ url: server.url, ifaces, hook: config.hook, node: config.node, pollIntervalMs: config.pollIntervalMs, auth: Boolean(config.token) }, 'flowscope agent running');
  logMemoryBudget(log, config);

  // Patterns attach what matches now and what appears later; vanished interfaces are dropped.
  const reconciler = config.source === 'kernel' ? new InterfaceReconciler(agent, config.hook, listInterfacesWithIndex, config.ifaces) : undefined;
  const reconcile = async (why: string) => {
    if (reconciler) logReconcile(log, why, await reconciler.reconcile());
  };
  await reconcile('start');
  if (reconciler?.watchesPatterns && agent.attachments().length === 0) log.warn({ ifaces }, 'no interface matches yet; waiting for one to appear');
  const rescan = setInterval(() => void reconcile('rescan'), config.ifaceRescanMs);
  // SIGHUP: read the configuration again and apply its interface list; the other options need a restart.
  const reload = () => {
    try {
      const next = loadRunConfig(args, env).config;
      reconciler?.setSpecs(next.ifaces);
      log.info({ ifaces: next.ifaces }, 'SIGHUP: interface list reloaded (other options apply at the next start)');
      void reconcile('reload');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'SIGHUP: configuration not reloaded, keeping the current one');
    }
  };
  signals.handleHup(reload);

  const signal = await signals.stopped();
  log.info({ signal, keepAttached: config.keepAttached }, 'stopping');
  clearInterval(rescan);
  // Followers and keep-alive connections end now; the final drain and export come after.
  await server.close();
  await agent.close({ keepAttached: config.keepAttached });
  if (config.keepAttached && config.source === 'kernel') log.info({ pinned: config.pinDir }, 'stopped: last records exported; programs left attached and counting for the next start');
  else log.info('stopped: last records exported, programs detached, nothing left pinned');
}

/** Names a cgroup id from the cgroup tree (path) and what its path says (workload, pod, container). */
function cgroupLabeler(resolver: CgroupResolver): CgroupLabeler {
  return (id) => {
    const path = resolver.path(id);
    if (path === undefined) return undefined;
    return { path, ...resolver.workload(id)! };
  };
}

function logPinnedState(log: Logger, pinned: PinnedStateReport | undefined): void {
  if (!pinned) return;
  if (pinned.adopted) {
    log.info(
      { dir: pinned.dir, interfaces: pinned.adoptedInterfaces, resumedFrom: pinned.resumedFromMs ? new Date(pinned.resumedFromMs).toISOString() : undefined },
      'took over the pinned counters and attachments of the previous agent',
    );
  }
  if (pinned.unconfirmedDrains > 0) {
    log.warn({ unconfirmedDrains: pinned.unconfirmedDrains }, 'the previous agent died before every sink accepted its last drains: their records may be missing downstream');
  }
  for (const problem of pinned.problems) log.warn({ problem }, 'pinned state: not taken over');
  if (pinned.previousLayout) {
    log.info(
      { valueBytes: pinned.previousLayout.valueBytes, maps: pinned.previousLayout.mapsLeft },
      'the pinned flow maps are an earlier version\'s (shorter values): set aside, drained with this agent\'s records, then removed',
    );
  }
}

function logReconcile(log: Logger, why: string, r: ReconcileResult): void {
  for (const a of r.attached) log.info({ iface: a.iface, ifindex: a.ifindex, hook: a.mode, mechanism: a.tcMechanism, why }, 'attached');
  for (const iface of r.detached) log.info({ iface, why }, 'detached');
  for (const f of r.failed) log.warn({ iface: f.iface, why, err: f.error }, 'interface not (de)attached');
}

async function attachAll(agent: Agent, ifaces: string[], config: AgentConfig, log: Logger): Promise<void> {
  for (const iface of ifaces) {
    try {
      const a = await agent.attach(iface, config.hook);
      log.info({ iface, ifindex: a.ifindex, hook: a.mode, mechanism: a.tcMechanism }, 'attached');
    } catch (err) {
      const e = err as Error & { code?: string; hint?: string };
      const permission = e.code === 'EPERM' || e.code === 'EACCES';
      const reason = `run: ${e.message}${e.hint ? ` (${e.hint})` : ''}`.split('\n')[0];
      if (permission || e.name === 'InterfaceNotFoundError') throw new UsageError(reason);
      throw new RuntimeFailure(reason);
    }
  }
}

/** The memory budget and the max-flows it gives; a warning when the fixed costs leave too little. */
function logMemoryBudget(log: Logger, config: AgentConfig): void {
  const b = config.memoryBudget;
  const mb = (n: number) => Math.round(n / 1e6);
  const fields = {
    memoryLimitMB: mb(b.memoryLimit),
    kernelMapsMB: mb(b.kernelMaps),
    maxFlows: config.maxFlows,
    maxFlowsFrom: config.maxFlowsFrom,
    floodOverBudgetMB: b.floodFits ? 0 : mb((b.floodSlots - b.slots) * b.bytesPerFlow),
  };
  if (config.maxFlowsFrom === 'memory-limit' && !b.fits) {
    log.warn(fields, `memory-limit is too small for this node (the kernel maps, store and runtime take most of it): max-flows ${config.maxFlows}, over budget; raise --memory-limit (and the container's limit) or lower --flow-map-size`);
  } else {
    log.info(fields, 'memory budget');
  }
}

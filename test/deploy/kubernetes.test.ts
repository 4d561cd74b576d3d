/**
 * The Kubernetes manifests (deploy/kubernetes): every kustomization renders
 * (kubectl kustomize, when kubectl is installed), and the rendered objects
 * carry what the agent, Redis and the relay need: capabilities instead of
 * privileged, hostNetwork, probes on the port the process listens on, the
 * node name from the downward API, resource limits, the bpffs mount, and
 * arguments the real option parsers of `flowscope run` and `flowscope relay`
 * accept. The Prometheus scrape jobs, ServiceMonitors and PrometheusRule are
 * checked against the same rendered objects.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRelayConfig } from '../../src/cli/relay.js';
import { loadRunConfig } from '../../src/cli/run.js';
import {
  container,
  DEPLOY,
  expandArgs,
  find,
  flag,
  K8S,
  KUBECTL,
  PACKAGE_VERSION,
  parseDocs,
  readYaml,
  render,
  type Obj,
} from './deploy-helpers.js';

const BASE = join(K8S, 'base');
const OVERLAYS = readdirSync(join(K8S, 'overlays')).map((d) => join(K8S, 'overlays', d));

let base: Obj[];
let tmp: string;

beforeAll(() => {
  if (!KUBECTL) console.warn('[note] kubectl not installed: rendering the base by hand; overlays and components are only parsed');
  base = render(BASE);
  tmp = mkdtempSync(join(tmpdir(), 'flowscope-deploy-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function allYamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? allYamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') || e.name.endsWith('.yml') ? [join(dir, e.name)] : [],
  );
}

const podSpec = (w: Obj): Obj => w.spec.template.spec;

/** The Secrets the manifests expect the operator to create (docs/deploy.md), with test values. */
const SECRETS: Record<string, Record<string, string>> = {
  'flowscope-token': { token: 's3cret' },
  'flowscope-redis-users': { 'agent-password': 'agentpw0123', 'relay-password': 'relaypw0123' },
};

/** A container's environment as the kubelet builds it: secrets, fields, then $(VAR) references to earlier variables. */
function containerEnv(c: Obj, fields: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = expandArgs([e.value], env)[0];
    else if (e.valueFrom?.secretKeyRef) env[e.name] = SECRETS[e.valueFrom.secretKeyRef.name]?.[e.valueFrom.secretKeyRef.key];
    else if (e.valueFrom?.fieldRef) env[e.name] = fields[e.valueFrom.fieldRef.fieldPath];
  }
  return env;
}
const workloads = (objs: Obj[]): Obj[] => objs.filter((o) => ['DaemonSet', 'Deployment', 'StatefulSet'].includes(o.kind));
const subset = (sel: Record<string, string>, labels: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels?.[k] === v);

describe('Kubernetes manifests: files and rendering', () => {
  it('every YAML file under deploy/ parses', () => {
    const files = allYamlFiles(DEPLOY);
    expect(files.length).toBeGreaterThan(15);
    for (const f of files) {
      const docs = parseDocs(readFileSync(f, 'utf8'), f);
      expect(docs.length, f).toBeGreaterThan(0);
    }
  });

  it('every object has apiVersion, kind and a name; names are unique per kind', () => {
    const seen = new Set<string>();
    for (const o of base) {
      expect(o.apiVersion, JSON.stringify(o).slice(0, 80)).toBeTruthy();
      expect(o.kind).toBeTruthy();
      expect(o.metadata?.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      const key = `${o.kind}/${o.metadata.name}`;
      expect(seen.has(key), key).toBe(false);
      seen.add(key);
    }
    expect([...seen].sort()).toEqual(
      [
        'ConfigMap/flowscope-agent', 'ConfigMap/flowscope-redis', 'DaemonSet/flowscope-agent', 'Namespace/flowscope',
        'NetworkPolicy/flowscope-redis', 'NetworkPolicy/flowscope-relay',
        'PodDisruptionBudget/flowscope-relay', 'Service/flowscope-agent', 'Service/flowscope-redis', 'Service/flowscope-relay',
        'ServiceAccount/flowscope-agent', 'StatefulSet/flowscope-redis', 'StatefulSet/flowscope-relay',
      ].sort(),
    );
  });

  it.runIf(Boolean(KUBECTL))('every overlay renders with kubectl kustomize, and keeps the agent unprivileged', () => {
    expect(OVERLAYS.length).toBeGreaterThanOrEqual(2);
    for (const dir of OVERLAYS) {
      const objs = render(dir);
      const ds = find(objs, 'DaemonSet', 'flowscope-agent');
      const sc = container(ds, 'agent').securityContext;
      expect(sc.privileged, dir).toBe(false);
      expect(sc.capabilities.drop, dir).toEqual(['ALL']);
      expect(podSpec(ds).hostNetwork, dir).toBe(true);
      for (const o of objs) if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${dir} ${o.kind}/${o.metadata.name}`).toBe('flowscope');
    }
  });

  it.runIf(Boolean(KUBECTL))('production adds the Prometheus Operator objects and sets the image', () => {
    const objs = render(join(K8S, 'overlays', 'production'));
    expect(objs.filter((o) => o.kind === 'ServiceMonitor').map((o) => o.metadata.name).sort()).toEqual(['flowscope-agent', 'flowscope-relay']);
    find(objs, 'PrometheusRule', 'flowscope');
    const ds = find(objs, 'DaemonSet', 'flowscope-agent');
    expect(container(ds, 'agent').image).toMatch(new RegExp(`/flowscope:${PACKAGE_VERSION.replace(/\./g, '\\.')}$`));
    const cm = find(objs, 'ConfigMap', 'flowscope-agent');
    const file = join(tmp, 'prod-config.yaml');
    writeFileSync(file, cm.data['config.yaml']);
    const { config } = loadRunConfig([`--config=${file}`], {});
    expect(config.flowMapSize).toBe(262_144);
  });

  it.runIf(Boolean(KUBECTL))('legacy-capabilities swaps BPF+PERFMON for SYS_ADMIN and changes nothing else', () => {
    const legacy = find(render(join(K8S, 'overlays', 'legacy-capabilities')), 'DaemonSet', 'flowscope-agent');
    const caps = container(legacy, 'agent').securityContext.capabilities;
    expect(caps.add).toEqual(['SYS_ADMIN', 'NET_ADMIN']);
    const a = structuredClone(find(base, 'DaemonSet', 'flowscope-agent'));
    container(a, 'agent').securityContext.capabilities.add = caps.add;
    expect(legacy).toEqual(a);
  });
});

describe('agent DaemonSet', () => {
  let ds: Obj;
  let agent: Obj;
  beforeAll(() => {
    ds = find(base, 'DaemonSet', 'flowscope-agent');
    agent = container(ds, 'agent');
  });

  it('runs on every node, on the host network, without the host PID/IPC namespaces', () => {
    const spec = podSpec(ds);
    expect(spec.hostNetwork).toBe(true);
    expect(spec.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(spec.hostPID ?? false).toBe(false);
    expect(spec.hostIPC ?? false).toBe(false);
    expect(spec.tolerations).toContainEqual({ operator: 'Exists' });
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.securityContext.seccompProfile.type).toBe('RuntimeDefault');
  });

  it('has capabilities BPF, PERFMON, NET_ADMIN and nothing else, not privileged', () => {
    const sc = agent.securityContext;
    expect(sc.privileged).toBe(false);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.capabilities.drop).toEqual(['ALL']);
    expect([...sc.capabilities.add].sort()).toEqual(['BPF', 'NET_ADMIN', 'PERFMON']);
    // UID 0 on purpose (no ambient capabilities in Kubernetes), stated explicitly.
    expect(sc.runAsUser).toBe(0);
    expect(sc.runAsNonRoot).toBe(false);
  });

  it('never runs two agents on one node during a rollout', () => {
    expect(ds.spec.updateStrategy.type).toBe('RollingUpdate');
    expect(ds.spec.updateStrategy.rollingUpdate.maxSurge ?? 0).toBe(0);
    expect(ds.spec.updateStrategy.rollingUpdate.maxUnavailable).toBeGreaterThanOrEqual(1);
    expect(podSpec(ds).terminationGracePeriodSeconds).toBeGreaterThanOrEqual(10);
  });

  it('mounts the host bpffs and the config, with an in-memory /tmp', () => {
    const volumes = Object.fromEntries(podSpec(ds).volumes.map((v: Obj) => [v.name, v]));
    const mounts = Object.fromEntries(agent.volumeMounts.map((m: Obj) => [m.mountPath, m]));
    expect(volumes[mounts['/sys/fs/bpf'].name].hostPath).toEqual({ path: '/sys/fs/bpf', type: 'Directory' });
    expect(mounts['/etc/flowscope'].readOnly).toBe(true);
    expect(volumes[mounts['/etc/flowscope'].name].configMap.name).toBe('flowscope-agent');
    find(base, 'ConfigMap', volumes[mounts['/etc/flowscope'].name].configMap.name);
    expect(volumes[mounts['/tmp'].name].emptyDir).toBeDefined();
    // Nothing else of the host is mounted.
    const hostPaths = podSpec(ds).volumes.filter((v: Obj) => v.hostPath).map((v: Obj) => v.hostPath.path);
    expect(hostPaths).toEqual(['/sys/fs/bpf']);
  });

  it('takes the node name from the downward API', () => {
    const env = agent.env.find((e: Obj) => e.name === 'FLOWSCOPE_NODE');
    expect(env.valueFrom.fieldRef.fieldPath).toBe('spec.nodeName');
  });

  it('requires the token Secret: the agent listens on the node addresses and would not start without it', () => {
    const token = agent.env.find((e: Obj) => e.name === 'FLOWSCOPE_TOKEN');
    expect(token.valueFrom.secretKeyRef).toEqual({ name: 'flowscope-token', key: 'token' });
    expect(token.valueFrom.secretKeyRef.optional ?? false).toBe(false);
    const env = containerEnv(agent, { 'spec.nodeName': 'node-a' });
    delete env.FLOWSCOPE_TOKEN;
    const args = agent.args.slice(1).filter((a: string) => !a.startsWith('--config'));
    expect(() => loadRunConfig(args, env)).toThrow(/not a loopback address and no token is set/);
    expect(agent.args.join(' ')).not.toMatch(/insecure-no-auth/);
  });

  it('probes /healthz (liveness, startup) and /readyz (readiness) on the port the agent listens on', () => {
    const port = agent.ports.find((p: Obj) => p.name === 'http');
    const listen = flag(agent.args, 'listen')!;
    expect(listen).toBe(`0.0.0.0:${port.containerPort}`);
    expect(agent.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(agent.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(agent.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(ds.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(port.containerPort));
  });

  it('has requests and limits, with room for the kernel flow maps', () => {
    const { requests, limits } = agent.resources;
    for (const r of [requests, limits]) expect(r.cpu && r.memory).toBeTruthy();
    const mi = (q: string) => (q.endsWith('Gi') ? parseFloat(q) * 1024 : parseFloat(q));
    // 2 x 65,536 x (120 + 40 x 64 CPUs) = 335 MiB of maps on a 64-CPU node, plus the process.
    expect(mi(limits.memory)).toBeGreaterThanOrEqual(768);
    expect(mi(requests.memory)).toBeLessThanOrEqual(mi(limits.memory));
  });

  it('its arguments, environment and config file are accepted by `flowscope run`', () => {
    expect(agent.args[0]).toBe('run');
    const configPath = flag(agent.args, 'config')!;
    const cm = find(base, 'ConfigMap', 'flowscope-agent');
    const key = configPath.split('/').pop()!;
    expect(configPath).toBe(`/etc/flowscope/${key}`);
    const file = join(tmp, key);
    writeFileSync(file, cm.data[key]);
    const env = containerEnv(agent, { 'spec.nodeName': 'node-a' });
    expect(Object.keys(env).filter((n) => n.startsWith('FLOWSCOPE_')).sort()).toEqual(['FLOWSCOPE_NODE', 'FLOWSCOPE_REDIS', 'FLOWSCOPE_TOKEN']);
    const args = agent.args.slice(1).map((a: string) => a.replace(configPath, file));
    const { config } = loadRunConfig(args, env);
    expect(config.node).toBe('node-a');
    expect(config.listen).toBe('0.0.0.0:9797');
    expect(config.ifaces.length).toBeGreaterThan(0);
    expect(config.hook).toBe('tc');
    expect(config.token).toBe('s3cret');
    expect(config.redis).toBe('redis://flowscope-agent:agentpw0123@flowscope-redis:6379');
    // A rollout hands the pinned counters and attachments to the next pod (docs/operations.md).
    expect(config.keepAttached).toBe(true);
    expect(config.pinDir).toBe('/sys/fs/bpf/flowscope/node-a');
  });

  it('is uninstalled by a DaemonSet that runs `flowscope detach` on every node with the bpffs and the same capabilities', () => {
    const objs = render(join(K8S, 'uninstall'));
    const detach = find(objs, 'DaemonSet', 'flowscope-detach');
    const init = detach.spec.template.spec.initContainers[0];
    expect(init.args).toEqual(['detach']);
    expect(init.securityContext.capabilities.add.sort()).toEqual(['BPF', 'NET_ADMIN', 'PERFMON']);
    expect(init.volumeMounts).toContainEqual({ name: 'bpffs', mountPath: '/sys/fs/bpf' });
    expect(detach.spec.template.spec.hostNetwork).toBe(true);
    expect(detach.spec.template.spec.tolerations).toContainEqual({ operator: 'Exists' });
  });

  it('logs in to the Redis Service as flowscope-agent, the password from the Secret and not on the command line', () => {
    expect(flag(agent.args, 'redis')).toBeUndefined();
    const urlVar = agent.env.find((e: Obj) => e.name === 'FLOWSCOPE_REDIS');
    expect(urlVar.value).toContain('$(REDIS_PASSWORD)');
    const password = agent.env.find((e: Obj) => e.name === 'REDIS_PASSWORD');
    expect(password.valueFrom.secretKeyRef).toEqual({ name: 'flowscope-redis-users', key: 'agent-password' });
    // defined before the variable that refers to it (the kubelet expands only earlier ones)
    expect(agent.env.indexOf(password)).toBeLessThan(agent.env.indexOf(urlVar));
    const url = new URL(containerEnv(agent, { 'spec.nodeName': 'node-a' }).FLOWSCOPE_REDIS);
    expect(url.username).toBe('flowscope-agent');
    expect(url.password).toBe('agentpw0123');
    const svc = find(base, 'Service', url.hostname);
    expect(svc.spec.ports.map((p: Obj) => p.port)).toContain(Number(url.port));
    const redis = find(base, 'StatefulSet', 'flowscope-redis');
    expect(subset(svc.spec.selector, redis.spec.template.metadata.labels)).toBe(true);
  });
});

describe('Redis and the relay', () => {
  it('Redis: one replica with a volume, maxmemory and noeviction, non-root', () => {
    const redis = find(base, 'StatefulSet', 'flowscope-redis');
    const c = container(redis, 'redis');
    expect(redis.spec.replicas).toBe(1);
    expect(redis.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    expect(c.volumeMounts.find((m: Obj) => m.mountPath === '/data').name).toBe('data');
    const conf = find(base, 'ConfigMap', 'flowscope-redis').data['redis.conf'] as string;
    expect(conf).toMatch(/^maxmemory \d+[kmg]b$/m);
    expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
    expect(conf).toMatch(/^dir \/data$/m);
    expect(c.command).toEqual(['sh', '/etc/redis/start.sh']);
    expect(podSpec(redis).securityContext.runAsNonRoot).toBe(true);
    expect(c.resources.limits.memory).toBeTruthy();
  });

  it('Redis: ACL users from a required Secret, the default user off, the ACL file only in memory', () => {
    const redis = find(base, 'StatefulSet', 'flowscope-redis');
    const c = container(redis, 'redis');
    const data = find(base, 'ConfigMap', 'flowscope-redis').data;
    expect(data['redis.conf']).toMatch(/^protected-mode yes$/m);
    expect(data['redis.conf']).not.toMatch(/requirepass|^user /m);
    expect(data['start.sh']).toMatch(/exec redis-server "\$conf_dir\/redis.conf" --aclfile "\$run_dir\/users.acl"/);
    const acl = (data['users.acl.template'] as string).trim().split('\n');
    expect(acl[0]).toMatch(/^user default off /);
    expect(acl.map((l) => l.split(' ')[1]).sort()).toEqual(['default', 'flowscope-agent', 'flowscope-relay']);
    for (const l of acl.slice(1)) {
      expect(l).toMatch(/ on #@[A-Z]+_PASSWORD_SHA256@ /);
      expect(l).toMatch(/ -@all /); // only the commands listed after
      expect(l).not.toMatch(/allkeys|~\*|\+@all|allcommands|\+@(write|dangerous|admin|scripting)/);
    }
    for (const [name, key] of [['AGENT_PASSWORD', 'agent-password'], ['RELAY_PASSWORD', 'relay-password']]) {
      const e = c.env.find((x: Obj) => x.name === name);
      expect(e.valueFrom.secretKeyRef).toEqual({ name: 'flowscope-redis-users', key });
    }
    const volumes = Object.fromEntries(podSpec(redis).volumes.map((v: Obj) => [v.name, v]));
    const run = c.volumeMounts.find((m: Obj) => m.mountPath === '/run/redis');
    expect(volumes[run.name].emptyDir.medium).toBe('Memory');
    // the probe logs in (the default user is off) and compares the answer (redis-cli exits 0 on errors)
    expect(c.readinessProbe.exec.command.join(' ')).toMatch(/--user flowscope-relay ping\)" = PONG/);
  });

  it('every Secret a workload reads is one docs/deploy.md says how to create, and none is optional', () => {
    const deployDoc = readFileSync(join(DEPLOY, '..', 'docs', 'deploy.md'), 'utf8');
    const refs = workloads(base).flatMap((w) => podSpec(w).containers.flatMap((c: Obj) => (c.env ?? []).filter((e: Obj) => e.valueFrom?.secretKeyRef)));
    expect(refs.length).toBeGreaterThanOrEqual(6);
    for (const e of refs) {
      const ref = e.valueFrom.secretKeyRef;
      expect(SECRETS[ref.name]?.[ref.key], `${ref.name}/${ref.key}`).toBeDefined();
      expect(ref.optional ?? false, `${ref.name}/${ref.key}`).toBe(false);
      expect(deployDoc).toContain(`create secret generic ${ref.name}`);
      expect(deployDoc).toContain(ref.key);
    }
  });

  it('NetworkPolicies: Redis takes connections on 6379 from the relays and the node network and opens none; the relay reaches only Redis and DNS', () => {
    const redisPod = find(base, 'StatefulSet', 'flowscope-redis').spec.template;
    const relayPod = find(base, 'StatefulSet', 'flowscope-relay').spec.template;
    const redisPolicy = find(base, 'NetworkPolicy', 'flowscope-redis');
    expect(subset(redisPolicy.spec.podSelector.matchLabels, redisPod.metadata.labels)).toBe(true);
    expect(subset(redisPolicy.spec.podSelector.matchLabels, relayPod.metadata.labels)).toBe(false);
    expect(redisPolicy.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    expect(redisPolicy.spec.egress).toEqual([]);
    expect(redisPolicy.spec.ingress).toHaveLength(1);
    const rule = redisPolicy.spec.ingress[0];
    expect(rule.ports).toEqual([{ port: 6379, protocol: 'TCP' }]);
    const pods = rule.from.filter((f: Obj) => f.podSelector);
    expect(pods).toHaveLength(1);
    expect(subset(pods[0].podSelector.matchLabels, relayPod.metadata.labels)).toBe(true);
    expect(subset(pods[0].podSelector.matchLabels, find(base, 'DaemonSet', 'flowscope-agent').spec.template.metadata.labels)).toBe(false);
    for (const f of rule.from.filter((x: Obj) => x.ipBlock)) expect(f.ipBlock.cidr).not.toBe('0.0.0.0/0');

    const relayPolicy = find(base, 'NetworkPolicy', 'flowscope-relay');
    expect(subset(relayPolicy.spec.podSelector.matchLabels, relayPod.metadata.labels)).toBe(true);
    expect(relayPolicy.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    expect(relayPolicy.spec.ingress).toEqual([{ ports: [{ port: 9797, protocol: 'TCP' }] }]);
    const [toRedis, dns] = relayPolicy.spec.egress;
    expect(subset(toRedis.to[0].podSelector.matchLabels, redisPod.metadata.labels)).toBe(true);
    expect(toRedis.ports).toEqual([{ port: 6379, protocol: 'TCP' }]);
    expect(dns.ports.map((p: Obj) => `${p.port}/${p.protocol}`).sort()).toEqual(['53/TCP', '53/UDP']);
    expect(relayPolicy.spec.egress).toHaveLength(2);
  });

  it('relay: 2 replicas, each with its own stable consumer group, accepted by `flowscope relay`', () => {
    const relay = find(base, 'StatefulSet', 'flowscope-relay');
    expect(relay.spec.replicas).toBe(2);
    const c = container(relay, 'relay');
    expect(c.args[0]).toBe('relay');
    const podName = c.env.find((e: Obj) => e.name === 'POD_NAME');
    expect(podName.valueFrom.fieldRef.fieldPath).toBe('metadata.name');
    const groups = new Set<string>();
    for (let i = 0; i < relay.spec.replicas; i++) {
      const env = containerEnv(c, { 'metadata.name': `flowscope-relay-${i}` });
      const args = expandArgs(c.args.slice(1), env);
      const config = loadRelayConfig(args, env)!;
      expect(config.listen).toEqual({ host: '0.0.0.0', port: 9797 });
      expect(config.target.endpoints[0]).toEqual({ host: 'flowscope-redis', port: 6379 });
      expect(config.target.username).toBe('flowscope-relay');
      expect(config.token).toBe('s3cret');
      // the token is required: without it the relay refuses the non-loopback listen
      expect(() => loadRelayConfig(args, { ...env, FLOWSCOPE_TOKEN: '' })).toThrow(/no token/);
      groups.add(config.group);
    }
    expect(c.args.join(' ')).not.toMatch(/--redis|insecure-no-auth/);
    // relays sharing a group split the entries: each replica needs its own
    expect(groups.size).toBe(relay.spec.replicas);
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
    expect(podSpec(relay).securityContext.runAsNonRoot).toBe(true);
    const pdb = find(base, 'PodDisruptionBudget', 'flowscope-relay');
    expect(subset(pdb.spec.selector.matchLabels, relay.spec.template.metadata.labels)).toBe(true);
  });

  it('every container has requests and limits; pods do not mount API tokens', () => {
    for (const w of workloads(base)) {
      expect(podSpec(w).automountServiceAccountToken, w.metadata.name).toBe(false);
      for (const c of podSpec(w).containers) {
        expect(c.resources?.requests?.memory, `${w.metadata.name}/${c.name}`).toBeTruthy();
        expect(c.resources?.limits?.memory, `${w.metadata.name}/${c.name}`).toBeTruthy();
        expect(c.securityContext?.allowPrivilegeEscalation, `${w.metadata.name}/${c.name}`).toBe(false);
      }
    }
  });

  it('every Service selects a workload and targets a named container port', () => {
    for (const svc of base.filter((o) => o.kind === 'Service')) {
      const targets = workloads(base).filter((w) => subset(svc.spec.selector, w.spec.template.metadata.labels));
      expect(targets.length, svc.metadata.name).toBe(1);
      const ports = podSpec(targets[0]).containers.flatMap((c: Obj) => c.ports ?? []).map((p: Obj) => p.name);
      for (const p of svc.spec.ports) expect(ports, `${svc.metadata.name}:${p.targetPort}`).toContain(p.targetPort);
    }
    for (const w of workloads(base)) expect(subset(w.spec.selector.matchLabels, w.spec.template.metadata.labels)).toBe(true);
  });

  it('the flowscope images carry the package version', () => {
    for (const w of workloads(base)) {
      for (const c of podSpec(w).containers) {
        if (c.image.startsWith('redis:')) continue;
        expect(c.image).toBe(`flowscope:${PACKAGE_VERSION}`);
      }
    }
  });
});

describe('Prometheus scraping', () => {
  const promConfig = () => readYaml(join(DEPLOY, 'prometheus', 'prometheus.yml'));

  function keeps(job: Obj, pod: Obj, portName: string, namespace: string): boolean {
    const sd = job.kubernetes_sd_configs[0];
    if (sd.role !== 'pod' || !sd.namespaces.names.includes(namespace)) return false;
    const meta: Record<string, string> = { __meta_kubernetes_pod_container_port_name: portName };
    for (const [k, v] of Object.entries(pod.metadata.labels as Record<string, string>)) meta[`__meta_kubernetes_pod_label_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`] = v;
    return job.relabel_configs
      .filter((r: Obj) => r.action === 'keep')
      .every((r: Obj) => new RegExp(`^(?:${r.regex})$`).test(r.source_labels.map((l: string) => meta[l] ?? '').join(r.separator ?? ';')));
  }

  it('the Kubernetes jobs keep exactly the agent pods and the relay pods, and label the agents with their node', () => {
    const jobs = Object.fromEntries(promConfig().scrape_configs.map((j: Obj) => [j.job_name, j]));
    const agentPod = find(base, 'DaemonSet', 'flowscope-agent').spec.template;
    const relayPod = find(base, 'StatefulSet', 'flowscope-relay').spec.template;
    const redisPod = find(base, 'StatefulSet', 'flowscope-redis').spec.template;
    expect(keeps(jobs['flowscope-agent'], agentPod, 'http', 'flowscope')).toBe(true);
    expect(keeps(jobs['flowscope-agent'], relayPod, 'http', 'flowscope')).toBe(false);
    expect(keeps(jobs['flowscope-agent'], redisPod, 'redis', 'flowscope')).toBe(false);
    expect(keeps(jobs['flowscope-relay'], relayPod, 'http', 'flowscope')).toBe(true);
    expect(keeps(jobs['flowscope-relay'], agentPod, 'http', 'flowscope')).toBe(false);
    expect(jobs['flowscope-agent'].relabel_configs).toContainEqual({ source_labels: ['__meta_kubernetes_pod_node_name'], target_label: 'node' });
    const hosts = jobs['flowscope-agent-hosts'];
    for (const s of hosts.static_configs) expect(s.labels.node).toBeTruthy();
    expect(hosts.relabel_configs).toContainEqual({ target_label: 'job', replacement: 'flowscope-agent' });
  });

  it('the ServiceMonitors select the agent and relay Services and set the same job and node labels', () => {
    const dir = join(K8S, 'components', 'prometheus-operator');
    const comp = readYaml(join(dir, 'kustomization.yaml'));
    expect(comp.kind).toBe('Component');
    const objs = comp.resources.flatMap((r: string) => parseDocs(readFileSync(join(dir, r), 'utf8'), r));
    for (const [name, job] of [['flowscope-agent', 'flowscope-agent'], ['flowscope-relay', 'flowscope-relay']]) {
      const sm = find(objs, 'ServiceMonitor', name);
      const svc = find(base, 'Service', name);
      expect(subset(sm.spec.selector.matchLabels, svc.metadata.labels)).toBe(true);
      const ep = sm.spec.endpoints[0];
      expect(svc.spec.ports.map((p: Obj) => p.name)).toContain(ep.port);
      expect(ep.path).toBe('/metrics');
      expect(ep.relabelings).toContainEqual({ action: 'replace', replacement: job, targetLabel: 'job' });
    }
    expect(find(objs, 'ServiceMonitor', 'flowscope-agent').spec.endpoints[0].relabelings).toContainEqual({
      action: 'replace',
      sourceLabels: ['__meta_kubernetes_pod_node_name'],
      targetLabel: 'node',
    });
    // The PrometheusRule carries exactly the rule file's groups.
    const rule = find(objs, 'PrometheusRule', 'flowscope');
    expect(rule.spec).toEqual(readYaml(join(DEPLOY, 'prometheus', 'flowscope-rules.yaml')));
  });
});

/**
 * The Grafana dashboard and the alerting rules name only metrics that the
 * real processes export, and their queries return data: a real agent
 * attached to a veth with a little traffic and a Redis sink, a real relay
 * reading that Redis, both scraped by a real Prometheus under the job and
 * node labels of deploy/prometheus/prometheus.yml; every dashboard query is
 * then run against that Prometheus with the dashboard's variables filled in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { startHostSink, stop as stopChild, TRAFFIC } from '../helpers/processes.js';
import { startFlowscope, type Proc } from './agent-process.js';
import { DEPLOY, exposition, freePort, promqlLabels, promqlMetrics, readYaml, requireTool, sleep, waitForStatus, type Obj } from './deploy-helpers.js';

const DASHBOARD = join(DEPLOY, 'grafana', 'flowscope-dashboard.json');
const RULES = join(DEPLOY, 'prometheus', 'flowscope-rules.yaml');
const PROMETHEUS = '/usr/bin/prometheus';
const REDIS = '/usr/bin/redis-server';

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Obj;
const allPanels = (panels: Obj[]): Obj[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const targets = (): { panel: string; expr: string }[] =>
  allPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t: Obj) => ({ panel: p.title, expr: t.expr as string })));
const ruleExprs = (group: string): string[] => readYaml(RULES).groups.find((g: Obj) => g.name === group).rules.map((r: Obj) => r.expr);
/** Target labels Prometheus adds (prometheus.yml: job, instance, node on the agents, pod on Kubernetes). */
const TARGET_LABELS = ['job', 'instance', 'node', 'pod', 'le'];

describe('Grafana dashboard: structure', () => {
  it('is a dashboard with a Prometheus datasource variable and job, node and iface variables', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBe('flowscope-overview');
    const vars = Object.fromEntries(dashboard.templating.list.map((v: Obj) => [v.name, v]));
    expect(vars.datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['job', 'node', 'iface']) {
      expect(vars[name].type).toBe('query');
      expect(vars[name].datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
    expect(vars.node).toMatchObject({ multi: true, includeAll: true });
    expect(vars.iface).toMatchObject({ multi: true, includeAll: true });
  });

  it('every panel queries ${datasource}, ids are unique, and panels fit the 24-column grid', () => {
    const panels = allPanels(dashboard.panels);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) {
        expect(t.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(t.expr, p.title).toMatch(/job="\$job"/);
      }
    }
    // the subjects the issue asks for
    const titles = panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const w of ['throughput', 'packet rate', 'flows tracked', 'flow map fill', 'overflow packets', 'datapath events', 'poll', 'records exported', 'records dropped', 'store records lost']) {
      expect(titles).toContain(w);
    }
  });
});

describe.skipIf(skipKernelTests('deploy dashboard metrics'))('Grafana dashboard and alerts against a running agent, relay and Prometheus', () => {
  let pair: VethPair;
  let sink: ChildProcess | undefined;
  let redis: ChildProcess | undefined;
  let prometheus: ChildProcess | undefined;
  let agent: Proc | undefined;
  let relay: Proc | undefined;
  let tmp: string;
  let agentPort: number;
  let relayPort: number;
  let promPort = 0;
  let agentText = '';
  let relayText = '';
  const NODE = 'deploy-test-node';
  const TOKEN = 'deploy-test-token';
  const SINK_PORT = 41_999;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'flowscope-dash-'));
    pair = createVethPair(41);
    sink = await startHostSink('udp-sink', SINK_PORT, 120);
    requireTool(REDIS, 'redis-server');
    const redisPort = await freePort();
    redis = spawn(REDIS, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    agentPort = await freePort();
    relayPort = await freePort();
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    await sleep(300);
    // with a token, as deployed: Prometheus scrapes with prometheus.yml's authorization
    agent = startFlowscope(['run', '--iface', pair.hostIf, '--listen', `127.0.0.1:${agentPort}`, '--poll-interval', '500ms', '--redis-export-interval', '500ms', '--redis', redisUrl, '--log-format', 'json'], [], { FLOWSCOPE_NODE: NODE, FLOWSCOPE_TOKEN: TOKEN });
    expect(await waitForStatus(`http://127.0.0.1:${agentPort}/readyz`, 200, 20_000), agent.output()).toBe(200);
    relay = startFlowscope(['relay', '--redis', redisUrl, '--listen', `127.0.0.1:${relayPort}`, '--group', 'deploy-test', '--consumer', 'deploy-test', '--log-format', 'json']);
    expect(await waitForStatus(`http://127.0.0.1:${relayPort}/healthz`, 200, 20_000), relay.output()).toBe(200);

    if (requireTool(PROMETHEUS, 'prometheus')) {
      // prometheus.yml's static job, pointed at these processes, plus the relay job.
      const config = readYaml(join(DEPLOY, 'prometheus', 'prometheus.yml'));
      const hosts = config.scrape_configs.find((j: Obj) => j.job_name === 'flowscope-agent-hosts');
      hosts.static_configs = [{ targets: [`127.0.0.1:${agentPort}`], labels: { node: NODE } }];
      hosts.scrape_interval = '1s';
      writeFileSync(join(tmp, 'token'), `${TOKEN}\n`);
      hosts.authorization.credentials_file = join(tmp, 'token');
      config.scrape_configs = [hosts, { job_name: 'flowscope-relay', scrape_interval: '1s', static_configs: [{ targets: [`127.0.0.1:${relayPort}`] }] }];
      config.global = { scrape_interval: '1s', evaluation_interval: '1s' };
      writeFileSync(join(tmp, 'prometheus.yml'), stringify(config));
      copyFileSync(RULES, join(tmp, 'flowscope-rules.yaml'));
      promPort = await freePort();
      prometheus = spawn(PROMETHEUS, [`--config.file=${join(tmp, 'prometheus.yml')}`, `--storage.tsdb.path=${join(tmp, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    }

    // traffic through the hooks, spread over a few scrapes
    for (let i = 0; i < 6; i++) {
      pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, String(SINK_PORT), '40', '200']);
      await sleep(1000);
    }
    agentText = await (await fetch(`http://127.0.0.1:${agentPort}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    relayText = await (await fetch(`http://127.0.0.1:${relayPort}/metrics`)).text();
  }, 90_000);

  afterAll(async () => {
    for (const p of [relay, agent]) if (p) expect(await p.stop(), p.output()).toBe(0);
    for (const c of [prometheus, redis]) if (c && c.exitCode === null) c.kill('SIGTERM');
    stopChild(sink);
    pair?.destroy();
    await sleep(300);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the agent exports the traffic of the veth and a redis sink', () => {
    expect(agentText).toMatch(new RegExp(`flowscope_interface_packets_total\\{iface="${pair.hostIf}",direction="ingress"\\} [1-9]`));
    expect(agentText).toMatch(/flowscope_records_exported_total\{sink="redis"\} \d+/);
  });

  it('every metric and label the dashboard queries is exported by the agent', () => {
    const { names, labels } = exposition(agentText);
    const used = new Set(targets().flatMap((t) => promqlMetrics(t.expr)));
    expect(used.size).toBeGreaterThan(15);
    for (const m of used) expect(names, `dashboard uses ${m}`).toContain(m);
    for (const t of targets()) for (const l of promqlLabels(t.expr)) expect([...labels, ...TARGET_LABELS], `${t.panel}: label ${l}`).toContain(l);
    for (const v of dashboard.templating.list.filter((x: Obj) => x.type === 'query')) for (const m of promqlMetrics(v.definition)) expect(names, `variable ${v.name}`).toContain(m);
  });

  it('every metric the alerting rules name is exported (agent rules by the agent, relay rules by the relay)', () => {
    const agentNames = exposition(agentText).names;
    const relayNames = exposition(relayText).names;
    for (const e of ruleExprs('flowscope-agent')) for (const m of promqlMetrics(e)) if (m !== 'up') expect(agentNames, e).toContain(m);
    for (const e of ruleExprs('flowscope-relay')) for (const m of promqlMetrics(e)) if (m !== 'up') expect(relayNames, e).toContain(m);
  });

  it('Prometheus scrapes both under the deploy jobs, loads the rules, and every dashboard query returns data', async () => {
    if (!promPort) return;
    const api = `http://127.0.0.1:${promPort}/api/v1`;
    const query = async (q: string): Promise<Obj> => (await (await fetch(`${api}/query?query=${encodeURIComponent(q)}`)).json()) as Obj;
    // both targets up, with the labels the dashboard and rules select on
    let up: Obj[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await query('up == 1').catch(() => undefined);
      up = r?.data?.result ?? [];
      if (up.length === 2) break;
      await sleep(500);
    }
    expect(up.map((s) => `${s.metric.job}/${s.metric.node ?? '-'}`).sort()).toEqual([`flowscope-agent/${NODE}`, 'flowscope-relay/-']);
    const rules = (await (await fetch(`${api}/rules`)).json()) as Obj;
    const loaded = rules.data.groups.flatMap((g: Obj) => g.rules);
    expect(loaded.length).toBe(readYaml(RULES).groups.flatMap((g: Obj) => g.rules).length);
    for (const r of loaded) expect(r.health, `${r.name}: ${r.lastError}`).not.toBe('err');
    // a few scrapes with traffic between them
    await sleep(5000);
    const vars: Record<string, string> = { job: 'flowscope-agent', node: `${NODE}|other-node`, iface: `${pair.hostIf}|.*`, __rate_interval: '4s', __range: '30s' };
    for (const t of targets()) {
      const q = t.expr.replace(/\$(\w+)/g, (m, v: string) => vars[v] ?? m);
      const r = await query(q);
      expect(r.status, `${t.panel}: ${q}: ${r.error}`).toBe('success');
      expect(r.data.result.length, `${t.panel}: ${q} returned nothing`).toBeGreaterThan(0);
    }
    for (const v of dashboard.templating.list.filter((x: Obj) => x.type === 'query')) {
      const m = /^label_values\((.*),\s*(\w+)\)$/.exec(v.definition)!;
      const r = await query(m[1].replace(/\$(\w+)/g, (s, x: string) => vars[x] ?? s));
      const values = new Set(r.data.result.map((s: Obj) => s.metric[m[2]]));
      expect(values.size, `variable ${v.name}`).toBeGreaterThan(0);
      if (v.name === 'node') expect(values).toContain(NODE);
      if (v.name === 'iface') expect(values).toContain(pair.hostIf);
    }
  }, 90_000);
});

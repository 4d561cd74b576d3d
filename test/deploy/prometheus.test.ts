/**
 * The Prometheus artifacts (deploy/prometheus) with Prometheus' own tool:
 * the rules parse and their unit tests pass (promtool), and the scrape
 * configuration is valid. Debian's Prometheus is built without Kubernetes
 * service discovery, so the Kubernetes jobs are left out of `promtool check
 * config` here; kubernetes.test.ts checks their relabelling against the
 * rendered pods instead.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DEPLOY, readYaml, requireTool, type Obj } from './deploy-helpers.js';

const PROMTOOL = '/usr/bin/promtool';
const DIR = join(DEPLOY, 'prometheus');

function promtool(args: string[], cwd = DIR): { status: number | null; out: string } {
  const r = spawnSync(PROMTOOL, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('Prometheus rules and scrape config (promtool)', () => {
  it('the alerting rules pass promtool check rules', () => {
    if (!requireTool(PROMTOOL, 'prometheus')) return;
    const r = promtool(['check', 'rules', 'flowscope-rules.yaml']);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  it('the alerting rules pass their unit tests (promtool test rules)', () => {
    if (!requireTool(PROMTOOL, 'prometheus')) return;
    const r = promtool(['test', 'rules', 'flowscope-rules.test.yaml']);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('every alert has a severity, a summary and a description', () => {
    const rules = readYaml(join(DIR, 'flowscope-rules.yaml')).groups.flatMap((g: Obj) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(8);
    for (const r of rules) {
      expect(['info', 'warning', 'critical'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      expect(r.annotations.description, r.alert).toBeTruthy();
      expect(r.expr, r.alert).toMatch(/job="flowscope-(agent|relay)"/);
    }
  });

  it('prometheus.yml passes promtool check config (static jobs and rule files)', () => {
    if (!requireTool(PROMTOOL, 'prometheus')) return;
    const config = readYaml(join(DIR, 'prometheus.yml'));
    const k8sJobs = config.scrape_configs.filter((j: Obj) => j.kubernetes_sd_configs);
    expect(k8sJobs.map((j: Obj) => j.job_name).sort()).toEqual(['flowscope-agent', 'flowscope-relay']);
    // Every job sends the bearer token the agents and relays require (docs/security.md).
    for (const j of config.scrape_configs) {
      expect(j.authorization, j.job_name).toEqual({ type: 'Bearer', credentials_file: '/etc/prometheus/secrets/flowscope-token/token' });
    }
    config.scrape_configs = config.scrape_configs.filter((j: Obj) => !j.kubernetes_sd_configs);
    const tmp = mkdtempSync(join(tmpdir(), 'flowscope-prom-'));
    try {
      // promtool wants the token file to exist
      writeFileSync(join(tmp, 'token'), 'test-token\n');
      for (const j of config.scrape_configs) j.authorization.credentials_file = join(tmp, 'token');
      writeFileSync(join(tmp, 'prometheus.yml'), stringify(config));
      for (const f of config.rule_files) copyFileSync(join(DIR, f), join(tmp, f));
      const r = promtool(['check', 'config', 'prometheus.yml'], tmp);
      expect(r.out).toContain('is valid prometheus config file syntax');
      expect(r.status).toBe(0);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    // The file itself is one YAML document with the three jobs.
    expect(readFileSync(join(DIR, 'prometheus.yml'), 'utf8')).toContain('job_name: flowscope-agent-hosts');
  });
});

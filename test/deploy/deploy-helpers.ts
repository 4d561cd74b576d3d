/**
 * Shared by the deploy tests: where the artifacts are, the rendered
 * Kubernetes manifests (kubectl kustomize when kubectl is installed, else the
 * base's files read directly), and small lookups into them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DEPLOY = join(ROOT, 'deploy');
export const K8S = join(DEPLOY, 'kubernetes');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

/** A tool the test needs: missing fails under CI=true (it is in scripts/apt-packages.txt), else skips with a note. */
export function requireTool(path: string, pkg: string): boolean {
  if (existsSync(path)) return true;
  if (process.env.CI === 'true') throw new Error(`${path} is missing: install the Debian package ${pkg} (scripts/apt-packages.txt)`);
  console.warn(`[skip] ${path} not installed (apt-get install ${pkg})`);
  return false;
}

export function parseDocs(text: string, where: string): Obj[] {
  const docs = parseAllDocuments(text);
  const out: Obj[] = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${where}: ${d.errors[0].message}`);
    const v = d.toJS() as Obj | null;
    if (v) out.push(v);
  }
  return out;
}

export const readYaml = (path: string): Obj => parseYaml(readFileSync(path, 'utf8')) as Obj;

export const KUBECTL = which('kubectl');

/**
 * The objects of a kustomization directory. With kubectl: `kubectl kustomize`
 * (its embedded kustomize). Without it, only the base can be rendered: its
 * resources are read and the namespace and common labels applied by hand.
 */
export function render(dir: string): Obj[] {
  if (KUBECTL) {
    const text = execFileSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return parseDocs(text, `kubectl kustomize ${dir}`);
  }
  const k = readYaml(join(dir, 'kustomization.yaml'));
  if (k.kind !== 'Kustomization' || !Array.isArray(k.resources) || k.resources.some((r: string) => r.startsWith('..'))) {
    throw new Error(`${dir}: cannot render without kubectl`);
  }
  const labels: Record<string, string> = Object.assign({}, ...(k.labels ?? []).map((l: Obj) => l.pairs));
  const objs = k.resources.flatMap((r: string) => parseDocs(readFileSync(join(dir, r), 'utf8'), r));
  for (const o of objs) {
    if (o.kind !== 'Namespace') o.metadata.namespace = k.namespace;
    o.metadata.labels = { ...o.metadata.labels, ...labels };
    const tpl = o.spec?.template;
    if (tpl) {
      tpl.metadata.labels = { ...tpl.metadata.labels, ...labels };
      o.spec.selector.matchLabels = { ...o.spec.selector.matchLabels, ...labels };
    } else if (o.kind === 'Service') {
      o.spec.selector = { ...o.spec.selector, ...labels };
    }
    for (const c of tpl?.spec?.containers ?? []) {
      const img = (k.images ?? []).find((i: Obj) => i.name === c.image);
      if (img) c.image = `${img.newName ?? img.name}:${img.newTag}`;
    }
  }
  return objs;
}

export function find(objs: Obj[], kind: string, name: string): Obj {
  const o = objs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!o) throw new Error(`no ${kind}/${name} in ${objs.map((x) => `${x.kind}/${x.metadata?.name}`).join(', ')}`);
  return o;
}

export function container(workload: Obj, name: string): Obj {
  const c = workload.spec.template.spec.containers.find((x: Obj) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ${workload.kind}/${workload.metadata.name}`);
  return c;
}

/** The value of `--flag=value` or `--flag value` in an argument list. */
export function flag(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1];
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return undefined;
}

/** Kubernetes' $(VAR) expansion of container args from literal env values. */
export function expandArgs(args: string[], env: Record<string, string>): string[] {
  return args.map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => env[v] ?? m));
}

export const PACKAGE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Capability names as Kubernetes writes them (BPF) to the kernel's (CAP_BPF). */
export const capName = (k8s: string): string => `CAP_${k8s.toUpperCase()}`;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls url until it answers `status` (or the deadline passes); returns the last status. */
export async function waitForStatus(url: string, status: number, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url);
      last = r.status;
      await r.arrayBuffer();
      if (last === status) return last;
    } catch {
      last = 0;
    }
    await sleep(200);
  }
  return last;
}

export { freePort } from '../helpers/ports.js';

/** Sample names (not # HELP/# TYPE) and label names of a Prometheus text exposition. */
export function exposition(text: string): { names: Set<string>; labels: Set<string> } {
  const names = new Set<string>();
  const labels = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s/.exec(line);
    if (!m) continue;
    names.add(m[1]);
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]);
  }
  return { names, labels };
}

/** Metric names (flowscope_* and up) a PromQL expression selects. */
export function promqlMetrics(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\b(flowscope_[a-zA-Z0-9_]+|up)\b\s*(?=\{|\[|\)|\s|$|==|>|<|\*|\/)/g)].map((m) => m[1]))];
}

/** Label names a PromQL expression uses in matchers and by/without clauses. */
export function promqlLabels(expr: string): string[] {
  const out = new Set<string>();
  for (const m of expr.matchAll(/\{([^}]*)\}/g)) for (const l of m[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) out.add(l[1]);
  for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) for (const l of m[1].split(',')) if (l.trim()) out.add(l.trim());
  return [...out];
}

/** Directive -> values (in order) of a unit file, section by section flattened. */
export function unitDirectives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}


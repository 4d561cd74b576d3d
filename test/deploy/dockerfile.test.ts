/**
 * deploy/Dockerfile, checked without a Docker engine:
 * - its structure: a build stage and a slim runtime stage on Debian bookworm,
 *   the build packages (all in scripts/apt-packages.txt, so known to exist),
 *   a non-root default user, an exec-form entrypoint;
 * - its build context: every COPY source exists and passes
 *   deploy/Dockerfile.dockerignore, which keeps host build outputs out;
 * - its runtime stage: every file it copies out of the build stage is a real
 *   output of `npm run build` (the test suite's pretest builds), the shared
 *   libraries the addon links come from the Debian packages the stage
 *   installs, and the tree it assembles (package.json, dist/, the addon,
 *   production-only node_modules) actually runs: assembled in a temporary
 *   directory, `flowscope run --source synthetic` starts and serves
 *   /healthz, /readyz, /metrics and the dashboard, then stops on SIGTERM.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEPLOY, freePort, PACKAGE_VERSION, ROOT, waitForStatus, which } from './deploy-helpers.js';

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!current && (line.trim().startsWith('#') || !line.trim())) continue;
    if (current && line.trim().startsWith('#')) continue;
    current += (current ? ' ' : '') + line.trim().replace(/\\$/, '').trim();
    if (line.trimEnd().endsWith('\\')) continue;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(current)!;
    const op = m[1].toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2], stage });
    current = '';
  }
  return out;
}

/** Docker's .dockerignore: the last pattern that matches the path or one of its parents decides. */
function ignored(patterns: string[], path: string): boolean {
  const toRe = (p: string) =>
    new RegExp(
      '^' +
        p
          .replace(/^\/+|\/+$/g, '')
          .split('/')
          .map((seg) => (seg === '**' ? '(?:.*)' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
          .join('/')
          .replace(/\(\?:\.\*\)\//g, '(?:.*/)?') +
        '$',
    );
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const re = toRe(neg ? raw.slice(1) : raw);
    if (candidates.some((c) => re.test(c))) excluded = !neg;
  }
  return excluded;
}

const DOCKERFILE = join(DEPLOY, 'Dockerfile');
const instructions = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
const ignorePatterns = readFileSync(join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stageNames = instructions.filter((i) => i.op === 'FROM').map((i) => /\bAS\s+(\S+)/i.exec(i.args)?.[1]);
const inStage = (name: string) => instructions.filter((i) => i.stage === stageNames.indexOf(name));
const aptInstalled = (stage: string) =>
  inStage(stage)
    .filter((i) => i.op === 'RUN' && i.args.includes('apt-get install'))
    .flatMap((i) => i.args.split('apt-get install')[1].split('&&')[0].split(/\s+/))
    .filter((w) => w && !w.startsWith('-'));
/** COPY sources and destination, flags aside. */
const copies = (stage: string) =>
  inStage(stage)
    .filter((i) => i.op === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice(7);
      const rest = words.filter((w) => !w.startsWith('--'));
      return { from, sources: rest.slice(0, -1), dest: rest[rest.length - 1] };
    });

describe('Dockerfile structure', () => {
  it('has a build stage and a slim runtime stage on Debian bookworm, runtime last', () => {
    expect(stageNames).toEqual(['build', 'runtime']);
    const args = Object.fromEntries(instructions.filter((i) => i.op === 'ARG' && i.stage === -1).map((i) => i.args.split('=')));
    expect(args).toEqual({ NODE_MAJOR: '20', DEBIAN_RELEASE: 'bookworm' });
    const froms = instructions.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/)[0]);
    expect(froms).toEqual(['node:${NODE_MAJOR}-${DEBIAN_RELEASE}', 'node:${NODE_MAJOR}-${DEBIAN_RELEASE}-slim']);
    // The Node.js major of the images is the one package.json asks for.
    const engines = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toBe(`>=${args.NODE_MAJOR}`);
  });

  it('the build stage installs the toolchain; every package is one the project already installs from Debian', () => {
    const pkgs = aptInstalled('build');
    for (const p of ['clang', 'llvm', 'libbpf-dev', 'bpftool', 'pkg-config', 'g++', 'make', 'python3']) expect(pkgs).toContain(p);
    const known = new Set(readFileSync(join(ROOT, 'scripts', 'apt-packages.txt'), 'utf8').split('\n').map((l) => l.trim()));
    for (const p of pkgs) if (p !== 'linux-libc-dev') expect(known, p).toContain(p);
    const runs = inStage('build').filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.some((r) => r.includes('npm ci'))).toBe(true);
    expect(runs.some((r) => r.startsWith('npm run build'))).toBe(true);
    expect(runs.some((r) => r.includes('npm prune --omit=dev'))).toBe(true);
    // node-gyp uses the image's own headers instead of downloading them
    expect(inStage('build').find((i) => i.op === 'ENV')?.args).toBe('npm_config_nodedir=/usr/local');
  });

  it('the runtime stage has no compiler and runs as a non-root user by default', () => {
    const pkgs = aptInstalled('runtime');
    for (const p of ['libbpf1', 'libelf1', 'zlib1g']) expect(pkgs).toContain(p);
    for (const p of ['clang', 'llvm', 'g++', 'make', 'bpftool', 'libbpf-dev']) expect(pkgs).not.toContain(p);
    const users = inStage('runtime').filter((i) => i.op === 'USER');
    expect(users.length).toBe(1);
    const [uid, gid] = users[0].args.split(':');
    expect(Number(uid)).toBeGreaterThan(0);
    const useradd = inStage('runtime').find((i) => i.op === 'RUN' && i.args.includes('useradd'))!.args;
    expect(useradd).toContain(`--uid ${uid}`);
    expect(useradd).toMatch(new RegExp(`groupadd --system --gid ${gid}`));
    const entry = JSON.parse(inStage('runtime').find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    const workdir = inStage('runtime').find((i) => i.op === 'WORKDIR')!.args;
    expect(entry).toEqual(['/usr/bin/tini', '--', 'node', `${workdir}/dist/cli/main.js`]);
    expect(pkgs).toContain('tini');
    expect(inStage('runtime').some((i) => i.op === 'LABEL' && i.args.includes(`org.opencontainers.image.version="${PACKAGE_VERSION}"`))).toBe(true);
  });
});

describe('Dockerfile build context', () => {
  it('every COPY source of the build stage exists and passes the .dockerignore', () => {
    const sources = copies('build').flatMap((c) => c.sources);
    expect(sources.length).toBeGreaterThanOrEqual(5);
    for (const s of sources) {
      const path = s.replace(/\/$/, '');
      expect(existsSync(join(ROOT, path)), path).toBe(true);
      expect(ignored(ignorePatterns, path), path).toBe(false);
    }
    // and the sources inside them are sent
    for (const f of ['bpf/flowscope.bpf.c', 'bpf/Makefile', 'native/binding.gyp', 'native/addon.cc', 'src/cli/main.ts']) {
      expect(existsSync(join(ROOT, f)), f).toBe(true);
      expect(ignored(ignorePatterns, f), f).toBe(false);
    }
  });

  it('keeps host build outputs, dependencies and VCS data out of the context', () => {
    for (const p of [
      'node_modules/fastify/package.json', 'native/node_modules/x', 'dist/cli/main.js', 'native/build/Release/flowscope.node',
      'bpf/.output/flowscope.bpf.o', 'bpf/flowscope.skel.h', '.git/config', 'test/deploy/x.ts', 'bench/RESULTS.md', 'test-artifacts/results.json',
    ]) {
      expect(ignored(ignorePatterns, p), p).toBe(true);
    }
  });
});

describe('Dockerfile runtime stage', () => {
  const fromBuild = () => copies('runtime').filter((c) => c.from === 'build');
  const workdir = () => inStage('build').find((i) => i.op === 'WORKDIR')!.args;

  it('copies only outputs of the build that exist after `npm run build`', () => {
    const wd = workdir();
    const paths = fromBuild().flatMap((c) => c.sources.map((s) => relative(wd, s)));
    expect(paths.sort()).toEqual(['dist', 'native/build/Release/flowscope.node', 'node_modules', 'package.json'].sort());
    for (const p of paths) expect(existsSync(join(ROOT, p)), `${p} (run npm run build)`).toBe(true);
    // what the runtime loads from those
    for (const p of ['dist/cli/main.js', 'dist/datapath/native.js', 'dist/web/public/index.html']) expect(existsSync(join(ROOT, p)), p).toBe(true);
    // the addon lands where src/datapath/native.ts looks for it
    const addon = fromBuild().find((c) => c.sources[0].endsWith('flowscope.node'))!;
    expect(addon.dest).toBe('./native/build/Release/flowscope.node');
    expect(readFileSync(join(ROOT, 'src', 'datapath', 'native.ts'), 'utf8')).toContain("'native', 'build', 'Release', 'flowscope.node'");
  });

  it("the addon's shared libraries come from the Debian packages the runtime stage installs", () => {
    const ldd = execFileSync('ldd', [join(ROOT, 'native', 'build', 'Release', 'flowscope.node')], { encoding: 'utf8' });
    const libs = [...ldd.matchAll(/^\s*(\S+\.so[.\d]*) => (\S+)/gm)].map((m) => ({ name: m[1], path: m[2] }));
    expect(libs.map((l) => l.name)).toEqual(expect.arrayContaining(['libbpf.so.1', 'libelf.so.1', 'libz.so.1']));
    const inNodeImage = /^(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|ld-linux.*)\.so/;
    const pkgs = aptInstalled('runtime');
    if (!which('dpkg-query')) return;
    for (const lib of libs.filter((l) => !inNodeImage.test(l.name))) {
      // usrmerge: dpkg knows a library under /lib or /usr/lib, whichever its package ships
      const candidates = [lib.path, lib.path.replace(/^\/usr\/lib\//, '/lib/'), lib.path.replace(/^\/lib\//, '/usr/lib/')];
      const owner = candidates.map((p) => spawnSync('dpkg', ['-S', p], { encoding: 'utf8' }).stdout.split(':')[0]).find(Boolean);
      expect(pkgs, `${lib.name} is in ${owner}`).toContain(owner);
    }
  });

  describe('the assembled runtime tree runs', () => {
    let tree: string;
    beforeAll(() => {
      tree = mkdtempSync(join(tmpdir(), 'flowscope-image-'));
      const wd = workdir();
      for (const c of fromBuild()) {
        for (const s of c.sources) {
          const rel = relative(wd, s);
          const dest = join(tree, c.dest.replace(/^\.\//, ''));
          if (rel === 'node_modules') {
            // `npm prune --omit=dev`: the production dependency tree only
            const ls = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
            const dirs = ls.stdout.split('\n').filter((l) => l.startsWith(join(ROOT, 'node_modules') + '/'));
            const top = new Set(dirs.map((d) => relative(ROOT, d).split('/node_modules/')[0]));
            for (const d of top) cpSync(join(ROOT, d), join(tree, d), { recursive: true, dereference: true });
            continue;
          }
          mkdirSync(dirname(dest), { recursive: true });
          cpSync(join(ROOT, rel), dest, { recursive: true });
        }
      }
    });
    afterAll(() => rmSync(tree, { recursive: true, force: true }));

    it('holds production dependencies only', () => {
      expect(statSync(join(tree, 'node_modules', 'fastify')).isDirectory()).toBe(true);
      for (const dev of ['typescript', 'vitest', 'node-gyp', 'esbuild', 'tsx']) expect(existsSync(join(tree, 'node_modules', dev)), dev).toBe(false);
    });

    it('prints its version and the help of run and relay', () => {
      const main = join(tree, 'dist', 'cli', 'main.js');
      expect(execFileSync(process.execPath, [main, '--version'], { encoding: 'utf8' }).trim()).toBe(PACKAGE_VERSION);
      for (const cmd of ['run', 'relay']) {
        const r = spawnSync(process.execPath, [main, cmd, '--help'], { encoding: 'utf8' });
        expect(r.status, `${cmd}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toContain('--listen');
      }
    });

    it('starts the agent (synthetic source), serves health, metrics and the dashboard, stops on SIGTERM', async () => {
      const port = await freePort();
      const child = spawn(process.execPath, [join(tree, 'dist', 'cli', 'main.js'), 'run', '--source', 'synthetic', '--listen', `127.0.0.1:${port}`, '--poll-interval', '200ms'], {
        cwd: tmpdir(),
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production' },
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        const base = `http://127.0.0.1:${port}`;
        expect(await waitForStatus(`${base}/healthz`, 200), stderr).toBe(200);
        expect(await waitForStatus(`${base}/readyz`, 200), stderr).toBe(200);
        const metrics = await (await fetch(`${base}/metrics`)).text();
        expect(metrics).toContain(`flowscope_build_info{version="${PACKAGE_VERSION}"} 1`);
        const page = await fetch(`${base}/`);
        expect(page.status).toBe(200);
        expect(await page.text()).toMatch(/<html/i);
      } finally {
        child.kill('SIGTERM');
      }
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 15_000))]);
      if (code === 'timeout') child.kill('SIGKILL');
      expect(code, stderr).toBe(0);
    });
  });
});

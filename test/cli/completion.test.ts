/**
 * The completion scripts, run by the shells themselves: bash through
 * COMP_WORDS/COMP_CWORD and the function the script registers; zsh checked
 * for syntax and run with the completion system's functions stubbed. Every
 * command, flag and enum value of the parser's tables must be offered.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bashScript, zshScript } from '../../src/cli/completion.js';
import { COMMANDS, type CliFlags } from '../../src/cli/flags.js';
import { cli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'flowscope-completion-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bashFile = join(dir, 'flowscope.bash');
const zshFile = join(dir, '_flowscope');

beforeAll(() => {
  writeFileSync(bashFile, bashScript());
  writeFileSync(zshFile, zshScript());
});

/** What bash offers for the words typed so far (the last one is being completed). */
function bashComplete(...words: string[]): string[] {
  const out = execFileSync('bash', ['-c', 'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _flowscope; printf "%s\\n" "${COMPREPLY[@]}"', bashFile, ...words], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

const visibleFlags = (flags: CliFlags) => Object.entries(flags).filter(([, f]) => !f.hidden);
const flagNames = (flags: CliFlags) =>
  visibleFlags(flags).flatMap(([name, f]) => (name.length === 1 ? [`-${name}`] : [`--${name}`, ...(f.short ? [`-${f.short}`] : [])]));

describe('bash completion', () => {
  it('is what `flowscope completion bash` prints, and valid bash', async () => {
    const r = await cli(['completion', 'bash']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(bashScript());
    execFileSync('bash', ['-n', bashFile]);
  });

  it('completes the commands', () => {
    expect(bashComplete('flowscope', '')).toEqual(['help', 'version', ...Object.keys(COMMANDS), '--help', '--version']);
    expect(bashComplete('flowscope', 'in')).toEqual(['interfaces']);
    expect(bashComplete('flowscope', 'co')).toEqual(['completion']);
  });

  it("offers every command's flags from the parser's table (hidden ones excepted)", () => {
    for (const [command, spec] of Object.entries(COMMANDS)) {
      const words = 'words' in spec ? [...spec.words] : [];
      expect(bashComplete('flowscope', command, ''), command).toEqual([...words, ...flagNames(spec.flags)]);
    }
    expect(bashComplete('flowscope', 'run', '--so')).toEqual([]);
    expect(bashComplete('flowscope', 'top', '--m')).toEqual(['--metric']);
  });

  it("offers every enum flag's values from the parser's table", () => {
    let checked = 0;
    for (const [command, spec] of Object.entries(COMMANDS)) {
      for (const [name, flag] of visibleFlags(spec.flags)) {
        const values = flag.values ?? (Array.isArray(flag.complete) ? flag.complete : undefined);
        if (!values) continue;
        expect(bashComplete('flowscope', command, `--${name}`, ''), `${command} --${name}`).toEqual([...values]);
        if (flag.short) expect(bashComplete('flowscope', command, `-${flag.short}`, '')).toEqual([...values]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
    expect(bashComplete('flowscope', 'top', '--by', '')).toContain('workload');
    expect(bashComplete('flowscope', 'top', '--by', 'cg')).toEqual(['cgroup']);
    expect(bashComplete('flowscope', 'observe', '-o', 't')).toEqual(['table']);
    expect(bashComplete('flowscope', 'run', '--hook', '')).toEqual(['tc', 'xdp']);
  });

  it('completes --flag=value as bash splits it, and without the split', () => {
    expect(bashComplete('flowscope', 'top', '--by', '=', 'w')).toEqual(['workload']);
    expect(bashComplete('flowscope', 'top', '--by', '=')).toContain('src');
    expect(bashComplete('flowscope', 'top', '--metric=p')).toEqual(['--metric=packets']);
  });

  it("offers nothing where a free value is expected, the host's interfaces for --iface, paths for --config", () => {
    expect(bashComplete('flowscope', 'observe', '--from-ip', '')).toEqual([]);
    expect(bashComplete('flowscope', 'observe', '--iface', '')).toContain('lo');
    expect(bashComplete('flowscope', 'run', '--iface', 'l')).toContain('lo');
    expect(bashComplete('flowscope', 'run', '--config', join(dir, 'flowscope.b'))).toEqual([bashFile]);
    expect(bashComplete('flowscope', 'completion', '')).toEqual(['bash', 'zsh', '--help', '-h']);
  });
});

describe('zsh completion', () => {
  const zsh = ['/usr/bin/zsh', '/bin/zsh'].find(existsSync);
  const skip = (): boolean => {
    if (zsh) return false;
    // CI installs zsh (scripts/apt-packages.txt): there, its absence is a failure
    if (process.env.CI) throw new Error('zsh is not installed (scripts/apt-packages.txt lists it)');
    console.log('skipped: zsh is not installed (apt-get install zsh)');
    return true;
  };

  // The completion system's functions, stubbed to print what the script offers.
  const stubs = `
compdef() { }
compset() { }
_describe() { local -a offered; offered=("\${(@P)\${@[-1]}}"); print -r -- "\${(j: :)\${(@)offered%%:*}}" }
compadd() { local -a from; while [[ $1 == -* && $1 != -- ]]; do if [[ $1 == -a ]]; then shift; from=(\${(P)1}); fi; shift; done; [[ $1 == -- ]] && shift; print -r -- "\${(j: :)from} $*" }
_files() { print -r -- '<files>' }
`;
  const zshComplete = (...words: string[]): string[] => {
    const r = spawnSync(zsh!, ['-f', '-c', `${stubs}\nsource "$1"; shift; words=("$@"); CURRENT=$#; _flowscope`, 'zsh', zshFile, ...words], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    return r.stdout.trim().split(/\s+/).filter(Boolean);
  };

  it('is valid zsh', () => {
    if (skip()) return;
    const r = spawnSync(zsh!, ['-n', zshFile], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it("offers the commands, every command's flags and the enum values", () => {
    if (skip()) return;
    expect(zshComplete('flowscope', '')).toEqual([...Object.keys(COMMANDS), 'help', 'version']);
    for (const [command, spec] of Object.entries(COMMANDS)) {
      const words = 'words' in spec ? [...spec.words] : [];
      expect(zshComplete('flowscope', command, ''), command).toEqual([...words, ...flagNames(spec.flags)]);
    }
    expect(zshComplete('flowscope', 'top', '--by', '')).toEqual([...COMMANDS.top.flags.by.values]);
    expect(zshComplete('flowscope', 'status', '-o', '')).toEqual(['text', 'json']);
    expect(zshComplete('flowscope', 'top', '--metric=p')).toEqual(['bytes', 'packets']);
    expect(zshComplete('flowscope', 'observe', '--iface', '')).toContain('lo');
    expect(zshComplete('flowscope', 'run', '--config', '')).toEqual(['<files>']);
    expect(zshComplete('flowscope', 'observe', '--from-ip', '')).toEqual([]);
  });
});

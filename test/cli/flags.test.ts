/** The flag tables against the parser and the help texts: what a command takes is said, and a bad flag gets one line saying what is allowed. */
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/flags.js';
import { RELAY_HELP } from '../../src/cli/relay.js';
import { HELP, parseCommandArgs, UsageError } from '../../src/cli/usage.js';

const helpOf = (command: string) => (command === 'relay' ? RELAY_HELP : HELP[command]);

describe('flag tables', () => {
  it('every flag a command parses is in its --help', () => {
    for (const [command, spec] of Object.entries(COMMANDS)) {
      const help = helpOf(command);
      expect(help, command).toBeDefined();
      for (const [name, flag] of Object.entries(spec.flags)) {
        if (flag.hidden || name === 'help') continue;
        const written = name.length === 1 ? `-${name}` : `--${name}`;
        expect(help, `${command} ${written}`).toContain(written);
      }
    }
  });

  it('every command is in flowscope --help', () => {
    for (const command of Object.keys(COMMANDS)) expect(HELP.main).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it('checks enum values and says which are allowed', () => {
    const flags = COMMANDS.top.flags;
    expect(parseCommandArgs('top', ['--by', 'dport', '--metric=packets', '-o', 'json'], flags)).toMatchObject({ by: 'dport', metric: 'packets', output: 'json' });
    expect(() => parseCommandArgs('top', ['--metric', 'flows'], flags)).toThrow(new UsageError('top: --metric "flows" is unknown; use bytes or packets'));
    expect(() => parseCommandArgs('top', ['-o', 'yaml'], flags)).toThrow(new UsageError('top: --output "yaml" is unknown; use table or json'));
  });

  it('turns parser errors into one line with what is allowed', () => {
    const line = (command: keyof typeof COMMANDS, args: string[]) => {
      try {
        parseCommandArgs(command, args, COMMANDS[command].flags);
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        return (err as Error).message;
      }
      throw new Error('no error');
    };
    expect(line('interfaces', ['--wach'])).toBe('interfaces: unknown flag --wach; did you mean --watch? (see flowscope interfaces --help)');
    expect(line('interfaces', ['-x'])).toBe('interfaces: unknown flag -x; use --watch, --interval, --output, --server, --token or --help');
    expect(line('run', ['--no-such-option'])).toBe('run: unknown flag --no-such-option (see flowscope run --help)');
    expect(line('observe', ['--last'])).toBe('observe: --last needs a value (see flowscope observe --help)');
    expect(line('observe', ['--direction', '--iface', 'eth0'])).toBe('observe: --direction needs a value: ingress or egress (see flowscope observe --help)');
    expect(line('observe', ['--follow=yes'])).toBe('observe: --follow takes no value (see flowscope observe --help)');
    expect(line('status', ['now'])).toBe('status: unexpected argument "now"; status takes flags only (see flowscope status --help)');
    for (const message of [line('top', ['--bogus']), line('run', ['--iface'])]) expect(message).not.toContain('\n');
  });
});

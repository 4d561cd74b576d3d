/**
 * flowscope command line: run | observe | top | interfaces | status | relay | detach | completion.
 * Exit status: 0 ok, 1 runtime failure, 2 bad usage (one line on stderr).
 */
import { completion } from './completion.js';
import { COMMAND_NAMES, type CommandName } from './flags.js';
import { interfaces } from './interfaces.js';
import { observe } from './observe.js';
import { run, version } from './run.js';
import { status } from './status.js';
import { top } from './top.js';
import { HELP, RuntimeFailure, UsageError, orList } from './usage.js';

type Command = (args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void) => Promise<void>;

// The relay loads ioredis and the fleet view: only when asked for.
const relay: Command = async (args, env, out) => (await import('./relay.js')).relay(args, env, out);

// detach loads the native addon: only when asked for.
const detach: Command = async (args, env, out) => (await import('./detach.js')).detach(args, env, out);

const COMMANDS: Record<CommandName, Command> = { run, observe, top, interfaces, status, relay, detach, completion };

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const out = (text: string) => void process.stdout.write(text);
  const [command, ...args] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    out(HELP.main + '\n');
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === 'version') {
    out(version() + '\n');
    return 0;
  }
  const handler = (COMMAND_NAMES as string[]).includes(command) ? COMMANDS[command as CommandName] : undefined;
  try {
    if (!handler) throw new UsageError(`unknown command "${command}"; use ${orList(COMMAND_NAMES)}`);
    await handler(args, env, out);
    return 0;
  } catch (err) {
    const line = (e: Error) => `flowscope: ${e.message.split('\n')[0]}\n`;
    if (err instanceof UsageError) {
      process.stderr.write(line(err));
      return 2;
    }
    if (err instanceof RuntimeFailure) {
      process.stderr.write(line(err));
      return err.exitCode;
    }
    process.stderr.write(line(err as Error));
    if (env.FLOWSCOPE_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}


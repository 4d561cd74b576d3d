/** flowscope detach: uninstall; removes every program, link, pin and qdisc flowscope created on the node. */
import { RUN_OPTIONS } from '../config/config.js';
import { DETACH_FLAGS } from './flags.js';
import { HELP, RuntimeFailure, UsageError, parseCommandArgs } from './usage.js';

export async function detach(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const values = parseCommandArgs('detach', args, DETACH_FLAGS);
  if (values.help) return out(HELP.detach + '\n');
  const pinPath = (values['pin-path'] ?? (env.FLOWSCOPE_PIN_PATH || RUN_OPTIONS['pin-path'].default)).replace(/\/+$/, '');
  if (!pinPath.startsWith('/')) throw new UsageError(`detach: --pin-path must be an absolute path, got "${pinPath}"`);
  const { uninstall } = await import('../datapath/uninstall.js');
  let report;
  try {
    report = uninstall(pinPath);
  } catch (err) {
    throw new RuntimeFailure(`detach: ${(err as Error).message.split('\n')[0]}`);
  }
  const what = `${report.links} links, ${report.filters} tc filters from ${report.nodes.length} pinned node state(s) under ${pinPath}` +
    (report.orphanFilters ? `, ${report.orphanFilters} unpinned tc filters` : '');
  if (report.problems.length > 0) throw new RuntimeFailure(`detach: removed ${what}; not removed: ${report.problems.join('; ')}`);
  out(`detached: removed ${what}; nothing of flowscope is left attached\n`);
}

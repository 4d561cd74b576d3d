#!/usr/bin/env node
/**
 * The flowscope command. It takes SIGHUP before anything else loads: Node's
 * default for SIGHUP ends the process, and a reload sent while the agent
 * starts (systemctl reload, a config-map watcher) must not kill it. The
 * commands load after that (dispatch.ts).
 */
import { holdEarlySignals } from './early-signals.js';

holdEarlySignals();

// Quietly stop when the reader goes away (flowscope observe | head).
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

const { main } = await import('./dispatch.js');
process.exitCode = await main(process.argv.slice(2));

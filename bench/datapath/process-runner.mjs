// Runs commands for a benchmark that must not fork itself (bench/datapath/drain.ts):
// one JSON line in on stdin, {"file", "args", "keepStdout"}; one JSON line out,
// {"ns", "stdout"} or {"error"}. The command's time is measured here, around the
// child process, as the parent would have measured it.
import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';

for await (const line of createInterface({ input: process.stdin })) {
  const { file, args, keepStdout } = JSON.parse(line);
  const t0 = process.hrtime.bigint();
  try {
    const stdout = execFileSync(file, args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', keepStdout ? 'pipe' : 'ignore', 'inherit'] });
    process.stdout.write(JSON.stringify({ ns: Number(process.hrtime.bigint() - t0), stdout: keepStdout ? stdout : '' }) + '\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: err.message.split('\n')[0] }) + '\n');
  }
}

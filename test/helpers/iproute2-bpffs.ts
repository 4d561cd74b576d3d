/**
 * iproute2 (`ip link set ... xdp obj`, `tc filter ... bpf obj`) makes
 * /sys/fs/bpf/tc/globals and the links /sys/fs/bpf/ip and /sys/fs/bpf/xdp to
 * it the first time it loads an object. A test or bench that runs it calls
 * this first; the function it gets removes them again, unless they were there
 * before (then they are someone else's) or hold pins.
 */
import { existsSync, lstatSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';

const BPFFS = '/sys/fs/bpf';

export function iproute2BpffsCleanup(): () => void {
  const existed = existsSync(`${BPFFS}/tc`);
  return () => {
    if (existed || !existsSync(`${BPFFS}/tc`)) return;
    const globals = `${BPFFS}/tc/globals`;
    if (existsSync(globals) && readdirSync(globals).length > 0) return;
    for (const link of ['ip', 'xdp']) {
      const p = `${BPFFS}/${link}`;
      if (existsSync(p) && lstatSync(p).isSymbolicLink()) unlinkSync(p);
    }
    if (existsSync(globals)) rmdirSync(globals);
    if (readdirSync(`${BPFFS}/tc`).length === 0) rmdirSync(`${BPFFS}/tc`);
  };
}

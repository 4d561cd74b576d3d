// Tries to load the datapath and prints the error as JSON: run as an unprivileged user by errors.test.ts.
import { KernelFlowSource } from '../../src/datapath/flow-source.js';

try {
  const s = new KernelFlowSource({ flowMapEntries: 64 });
  await s.close();
  console.log(JSON.stringify({ loaded: true }));
} catch (e) {
  const err = e as { message: string; code?: string; syscall?: string; hint?: string };
  console.log(JSON.stringify({ message: err.message.split('\n')[0], code: err.code, syscall: err.syscall, hint: err.hint }));
}

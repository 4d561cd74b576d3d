/**
 * A stand-in for an agent that dies hard: attaches to an interface, says so,
 * and waits to be killed. Usage: tsx attach-child.ts IFACE tc|xdp tcx|clsact [PIN_DIR]
 */
import { KernelFlowSource } from '../../src/datapath/flow-source.js';

const [iface, mode, mechanism, pinDir] = process.argv.slice(2);
const source = new KernelFlowSource({ flowMapEntries: 256, tcMechanism: mechanism as 'tcx' | 'clsact', pinDir });
const a = await source.attach(iface, mode as 'tc' | 'xdp');
process.stdout.write(`attached ${JSON.stringify({ ...a, progIds: Object.values(source.nativeDatapath.info().progIds) })}\n`);
setInterval(() => void source.drain(), 100);

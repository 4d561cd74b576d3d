/**
 * The hand-written IP text codecs of src/lib/ip.ts against the `ip-address`
 * package, which parses at the edges (API and CLI filters, the dashboard):
 * does the hand-written code earn its place where it stays (bytes -> text for
 * every new flow of a drain and every Redis entry; text -> bytes per distinct
 * address or top-talkers key a filter tests)?
 *
 *   npx tsx bench/lib/ip.ts [--no-write]
 */
import { Address4, Address6 } from 'ip-address';
import { parseArgs } from 'node:util';
import { formatIPv4, formatIPv6, parseIp } from '../../src/lib/ip.js';
import { machineLine, median, writeSection } from '../results.js';

const { values } = parseArgs({ options: { 'no-write': { type: 'boolean', default: false } } });
const N = 200_000;
const ROUNDS = 7;

let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const v6 = new Uint8Array(16 * N);
const v4 = new Uint8Array(4 * N);
for (let i = 0; i < N; i++) {
  // documentation and ULA prefixes with random host parts and some zero runs, as flows have
  v6.set([0x20, 0x01, 0x0d, 0xb8], 16 * i);
  for (let b = 4; b < 16; b++) v6[16 * i + b] = b < 10 && rand() < 0.6 ? 0 : (rand() * 256) | 0;
  for (let b = 0; b < 4; b++) v4[4 * i + b] = (rand() * 256) | 0;
}
const v6Text = Array.from({ length: N }, (_, i) => formatIPv6(v6, 16 * i));
const v4Text = Array.from({ length: N }, (_, i) => formatIPv4(v4, 4 * i));

let sink = 0;
function nsPerOp(fn: () => void): number {
  const runs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    runs.push(Number(process.hrtime.bigint() - t0) / N);
  }
  return median(runs);
}

const rows: [string, number, number][] = [
  ['IPv6 bytes -> text (drain, Redis encoder)',
    nsPerOp(() => { for (let i = 0; i < N; i++) sink += formatIPv6(v6, 16 * i).length; }),
    nsPerOp(() => { for (let i = 0; i < N; i++) sink += Address6.fromByteArray(Array.from(v6.subarray(16 * i, 16 * i + 16))).correctForm().length; })],
  ['IPv4 bytes -> text',
    nsPerOp(() => { for (let i = 0; i < N; i++) sink += formatIPv4(v4, 4 * i).length; }),
    nsPerOp(() => { for (let i = 0; i < N; i++) sink += Address4.fromInteger(((v4[4 * i] << 24) | (v4[4 * i + 1] << 16) | (v4[4 * i + 2] << 8) | v4[4 * i + 3]) >>> 0).correctForm().length; })],
  ['IPv6 text -> bytes (filters per distinct address / top key, Redis decoder)',
    nsPerOp(() => { for (let i = 0; i < N; i++) sink += parseIp(v6Text[i])!.bytes[15]; }),
    nsPerOp(() => { for (let i = 0; i < N; i++) sink += new Address6(v6Text[i]).toUnsignedByteArray()[15]; })],
  ['IPv4 text -> bytes',
    nsPerOp(() => { for (let i = 0; i < N; i++) sink += parseIp(v4Text[i])!.bytes[3]; }),
    nsPerOp(() => { for (let i = 0; i < N; i++) sink += new Address4(v4Text[i]).toArray()[3]; })],
];
// The contract writes IPv4-mapped IPv6 addresses as ::ffff:a.b.c.d (RFC 5952 section 5); ip-address's correctForm() does not.
const mapped = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
const mappedHand = formatIPv6(mapped, 0);
const mappedLib = Address6.fromByteArray(Array.from(mapped)).correctForm();

for (const [what, hand, lib] of rows) console.log(`${what}: hand ${hand.toFixed(0)} ns, ip-address ${lib.toFixed(0)} ns (${(lib / hand).toFixed(1)}x)`);
console.log(`IPv4-mapped: hand ${mappedHand}, ip-address ${mappedLib}; sink ${sink > 0}`);

const md = `## IP text codecs: hand-written vs \`ip-address\`

Command: \`npx tsx bench/lib/ip.ts\` (bench/lib/ip.ts). ${machineLine()}.
${N.toLocaleString('en')} addresses per round, median of ${ROUNDS} rounds, ns per address. \`ip-address\` parses the filters of the API
and the CLI and validates the dashboard's; src/lib/ip.ts keeps its own code only where this table shows it earns its place:
bytes -> text for every new flow of a drain and every Redis entry, text -> bytes per distinct address or top-talkers key a
filter tests and per Redis entry the relay decodes.

| operation | hand-written (src/lib/ip.ts) | ip-address | ratio |
|---|---:|---:|---:|
${rows.map(([what, hand, lib]) => `| ${what} | ${hand.toFixed(0)} ns | ${lib.toFixed(0)} ns | ${(lib / hand).toFixed(1)}× |`).join('\n')}

Also: the contract writes IPv4-mapped addresses as \`${mappedHand}\` (RFC 5952 §5); \`ip-address\`'s \`correctForm()\` gives
\`${mappedLib}\`, so the record's text could not come from it unchanged.
`;
if (!values['no-write']) writeSection('lib-ip', md);

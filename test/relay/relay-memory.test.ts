/**
 * Relay memory follows the data, not the node count (issue 13): a relay for
 * 1,000 idle nodes (each wrote one record) stays well under 300 MiB resident.
 * Measured in a process of its own (bench/redis/relay-memory.ts) against a
 * real redis-server. And the growing per-node store answers exactly as a
 * store allocated at full size.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AddressTable } from '../../src/flow/address-table.js';
import { parseFlowFilter } from '../../src/flow/filter.js';
import { RecordBatch } from '../../src/flow/record-batch.js';
import { packMeta, packPorts } from '../../src/flow/tuple.js';
import { RecordStore } from '../../src/engine/record-store.js';
import { destroyRedis, startRedis, type RedisServer } from '../redis/redis-server.js';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis({ extra: ['--appendonly', 'no'] });
});
afterAll(async () => {
  await destroyRedis(server);
});

describe('relay memory', () => {
  it('1,000 idle nodes: under 300 MiB resident, at most 100 kB per node', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', 'bench/redis/relay-memory.ts', '--port', String(server.port), '--nodes', '1000', '--populate'],
      { encoding: 'utf8', timeout: 150_000 },
    );
    const m = JSON.parse(stdout.trim().split('\n').at(-1)!) as { nodes: number; entries: number; rssMiB: number; perNodeKiB: number };
    console.log(`relay, 1000 idle nodes: ${JSON.stringify(m)}`);
    expect(m.nodes).toBe(1000);
    expect(m.entries).toBe(1000);
    expect(m.rssMiB).toBeLessThan(300);
    expect(m.perNodeKiB).toBeLessThanOrEqual(100);
  }, 180_000);

  it('a store that grows as records come answers as one allocated at full size, before and after the ring wraps', () => {
    const addresses = new AddressTable();
    const full = new RecordStore(1000, addresses, (i) => `eth${i}`, 'n');
    const growing = new RecordStore(1000, addresses, (i) => `eth${i}`, 'n', 4);
    const batch = new RecordBatch(300, addresses, (i) => `eth${i}`, 'n');
    const filters = [{}, { dport: 53 }, { proto: 'tcp' }, { src: '10.0.0.0/24' }, { direction: 'egress' }, { iface: 'eth3' }].map((p) => parseFlowFilter(p as never, 0));
    const matchers = filters.map((f) => growing.compile(f)); // compiled before the store grows
    for (let round = 0; round < 12; round++) {
      batch.count = 1 + ((round * 97) % 300);
      batch.startMs = round * 1000;
      batch.endMs = round * 1000 + 1000;
      for (let i = 0; i < batch.count; i++) {
        batch.ifindex[i] = 2 + (i % 3);
        batch.meta[i] = packMeta(i % 2 ? 'egress' : 'ingress', 4, i % 3 ? 17 : 6, 0, 0);
        batch.ports[i] = packPorts(1000 + i, i % 4 ? 53 : 443);
        batch.srcId[i] = addresses.intern(`10.0.${i % 2}.${i % 250}`);
        batch.dstId[i] = addresses.intern('10.9.9.9');
        batch.packets[i] = i;
        batch.bytes[i] = 10 * i;
        batch.tcpFlags[i] = 0;
        batch.firstSeen[i] = round * 1000;
        batch.lastSeen[i] = round * 1000 + i;
      }
      full.write(batch);
      growing.write(batch);
      for (let i = 0; i < batch.count; i++) {
        addresses.release(batch.srcId[i]);
        addresses.release(batch.dstId[i]);
      }
      filters.forEach((f, k) => {
        expect(growing.query(f, 5000)).toEqual(full.query(f, 5000));
        expect(growing.matching(f, growing.oldestSeq, growing.endSeq, matchers[k])).toEqual(full.matching(f, full.oldestSeq, full.endSeq));
      });
    }
    expect(growing.lost).toBeGreaterThan(0); // the ring wrapped
  });
});

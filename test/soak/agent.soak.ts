/**
 * Soak: continuous traffic for SOAK_SECONDS (default 300) through the real
 * agent into a real Redis, with Redis restarted twice and the agent restarted
 * once. Promised and checked: every datagram sent while an agent was attached
 * is in the stream exactly once (the traffic pauses around the agent restart:
 * frames that cross no attached hook are counted by no one), nothing dropped,
 * and the agent's memory flat. Run with `npm run soak`; not part of `npm test`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { TRAFFIC, startHostSink, stop } from '../helpers/processes.js';
import { getJson, readStream, startDaemon, sumWhere, until, type Daemon } from '../redis/agents.js';
import { destroyRedis, startRedis, type RedisServer } from '../redis/redis-server.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const SINK_PORT = 5990;
const SPORT = 46000;
const PAYLOAD = 200;
const skip = skipKernelTests('soak');

function sendBurst(pair: VethPair, count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', pair.ns, process.execPath, TRAFFIC, 'udp', pair.hostV4, String(SINK_PORT), String(count), String(PAYLOAD), String(SPORT)], (err, stdout) => {
      if (err) reject(err);
      else resolve((JSON.parse(stdout) as { sent: number }).sent);
    });
  });
}

const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip)(`soak, ${SECONDS} s`, () => {
  let pair: VethPair | undefined;
  let redis: RedisServer | undefined;
  let agent: Daemon | undefined;
  let sink: Awaited<ReturnType<typeof startHostSink>> | undefined;

  afterAll(async () => {
    await agent?.kill9();
    stop(sink);
    await destroyRedis(redis);
    pair?.destroy();
  });

  it('keeps every count through Redis and agent restarts, with flat memory', async () => {
    pair = createVethPair(60);
    redis = await startRedis();
    sink = await startHostSink('udp-sink', SINK_PORT, SECONDS + 120);
    const args = ['run', '--iface', pair.hostIf, '--node', 'soak', '--redis', redis.url, '--poll-interval', '500ms'];
    agent = await startDaemon(args);

    let sent = 0;
    let paused = false;
    let running = true;
    const traffic = (async () => {
      while (running) {
        if (!paused) sent += await sendBurst(pair!, 100);
        await sleep(200);
      }
    })();

    const memory: number[] = [];
    const sampler = setInterval(() => agent?.child.pid && memory.push(rssKiB(agent.child.pid)), 5000);
    const at = (fraction: number) => sleep(Math.max(0, fraction * SECONDS * 1000));
    const t0 = Date.now();
    const until_ = (fraction: number) => at(fraction - (Date.now() - t0) / (SECONDS * 1000));

    await until_(0.2);
    await redis.stop();
    await sleep(5000);
    await redis.restart();

    await until_(0.35);
    paused = true;
    await sleep(1500); // the last burst has crossed the hook
    await agent.stop(); // SIGTERM: last drain, last export
    expect(agent.child.exitCode).toBe(0);
    agent = await startDaemon(args);
    memory.length = 0; // memory is judged on the second agent's life
    paused = false;

    await until_(0.7);
    await redis.stop();
    await sleep(5000);
    await redis.restart();

    await until_(1);
    running = false;
    await traffic;
    clearInterval(sampler);

    const key = 'flowscope:{soak}:flows';
    const cli = ['-p', String(redis.port)];
    const flow = { direction: 'ingress', src: pair.peerV4, dst: pair.hostV4, proto: 'udp', sport: String(SPORT), dport: String(SINK_PORT) };
    await until('every datagram in the stream', async () => sumWhere(readStream(cli, key), flow).packets === sent, 60_000);
    await sleep(2000);
    const total = sumWhere(readStream(cli, key), flow);
    expect({ packets: total.packets, bytes: total.bytes }).toEqual({ packets: sent, bytes: sent * (14 + 20 + 8 + PAYLOAD) });
    const redisSink = (await getJson(`${agent.api}/api/v1/status`)).sinks.find((s: { name: string }) => s.name === 'redis');
    expect(redisSink).toMatchObject({ dropped: 0, pending: 0, connected: true });

    // Flat memory: after warm-up, the last samples are within 25% of the early ones.
    const early = memory.slice(2, 6);
    const late = memory.slice(-4);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.info(`[soak] ${SECONDS} s, ${sent} datagrams, ${total.entries} stream entries, agent RSS ${Math.round(mean(early) / 1024)} MiB early, ${Math.round(mean(late) / 1024)} MiB late (${memory.length} samples)`);
    expect(early.length).toBeGreaterThan(0);
    expect(mean(late) / mean(early)).toBeLessThan(1.25);
  }, (SECONDS + 180) * 1000);
});

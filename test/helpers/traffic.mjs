#!/usr/bin/env node
// Sends a known amount of traffic; run inside a test namespace with
// `ip netns exec NS node traffic.mjs ...`. Prints one JSON line of what it sent.
//   udp  HOST PORT COUNT PAYLOAD [SPORT]   COUNT datagrams of PAYLOAD bytes
//   tcp  HOST PORT BYTES                   connects, writes BYTES, closes
//   udp-many HOST PORT COUNT PAYLOAD [BASE] one datagram from each of COUNT sockets (source ports BASE+i, or ephemeral)
//   udp-paced HOST PORT RATE SECONDS PAYLOAD SPORT   RATE datagrams a second for SECONDS, from one socket
//   udp-sink PORT SECONDS                  receives UDP (keeps ICMP unreachables away)
//   tcp-sink PORT SECONDS                  accepts TCP and discards
import dgram from 'node:dgram';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const done = (o) => { process.stdout.write(JSON.stringify(o) + '\n'); };

if (mode === 'udp') {
  const [host, port, count, payload, sport] = args;
  const family = host.includes(':') ? 'udp6' : 'udp4';
  const sock = dgram.createSocket(family);
  const buf = Buffer.alloc(Number(payload), 0x61);
  sock.bind(Number(sport ?? 0), () => {
    let sent = 0;
    const next = () => {
      if (sent === Number(count)) {
        const port = sock.address().port;
        sock.close();
        done({ sent, payload: buf.length, sport: port });
        return;
      }
      sock.send(buf, Number(port), host, (err) => {
        if (err) { console.error(err.message); process.exit(1); }
        sent++;
        // pace a little so the receiving queue never overflows
        if (sent % 64 === 0) setTimeout(next, 1); else next();
      });
    };
    next();
  });
} else if (mode === 'udp-paced') {
  const [host, port, rate, seconds, payload, sport] = args;
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const buf = Buffer.alloc(Number(payload), 0x70);
  const start = Date.now();
  const total = Math.round(Number(rate) * Number(seconds));
  let sent = 0;
  sock.bind(Number(sport), () => {
    const tick = () => {
      // as many as are due by now: the rate holds however late a timer fires
      const due = Math.min(total, Math.floor(((Date.now() - start) / 1000) * Number(rate)));
      while (sent < due) {
        sock.send(buf, Number(port), host);
        sent++;
      }
      if (sent < total) setTimeout(tick, 2);
      else setTimeout(() => { sock.close(); done({ sent, payload: buf.length, sport: Number(sport) }); }, 50);
    };
    tick();
  });
} else if (mode === 'udp-many') {
  const [host, port, count, payload, base] = args;
  const family = host.includes(':') ? 'udp6' : 'udp4';
  const buf = Buffer.alloc(Number(payload), 0x63);
  const ports = new Set();
  let sent = 0;
  const one = () => {
    if (sent === Number(count)) { done({ sent, flows: ports.size }); return; }
    const sock = dgram.createSocket(family);
    sock.bind(base ? Number(base) + sent : 0, () => {
      ports.add(sock.address().port);
      sock.send(buf, Number(port), host, (err) => {
        if (err) { console.error(err.message); process.exit(1); }
        sent++;
        sock.close(one);
      });
    });
  };
  one();
} else if (mode === 'tcp') {
  const [host, port, bytes] = args;
  const sock = net.connect({ host, port: Number(port) }, () => {
    sock.end(Buffer.alloc(Number(bytes), 0x62));
  });
  sock.on('close', () => done({ sent: Number(bytes) }));
  sock.on('error', (e) => { console.error(e.message); process.exit(1); });
} else if (mode === 'udp-sink') {
  const [port, seconds] = args;
  const s4 = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  let received = 0;
  s4.on('message', () => received++);
  s4.bind(Number(port), () => process.stdout.write('ready\n'));
  setTimeout(() => { s4.close(); done({ received }); }, Number(seconds) * 1000);
} else if (mode === 'tcp-sink') {
  const [port, seconds] = args;
  let received = 0;
  const srv = net.createServer((c) => c.on('data', (d) => (received += d.length)));
  srv.listen(Number(port), '::', () => process.stdout.write('ready\n'));
  setTimeout(() => { srv.close(); done({ received }); process.exit(0); }, Number(seconds) * 1000);
} else {
  console.error('usage: traffic.mjs udp|tcp|udp-sink|tcp-sink ...');
  process.exit(2);
}

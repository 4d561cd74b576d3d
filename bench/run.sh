#!/usr/bin/env bash
# npm run bench -- [per-packet|drain|service|flows-filtered|redis|fleet|restart|iperf|ip|all]
# Each benchmark writes its own section of bench/RESULTS.md. Run them on a
# quiet machine: they compare against baselines measured in the same run, but
# noise from other processes still widens the spread.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
shift || true
run() { echo "== $1"; shift; "$@"; }
case "$what" in
  per-packet) run per-packet npx tsx bench/datapath/per-packet.ts ;;
  drain) run drain npx tsx bench/datapath/drain.ts ;;
  service) run service node --expose-gc --import tsx bench/service/service.ts "$@" ;;
  flows-filtered) run flows-filtered node --expose-gc --import tsx bench/service/flows-filtered.ts "$@" ;;
  redis) run redis node --expose-gc --import tsx bench/redis/redis.ts "$@" ;;
  fleet) run fleet node --import tsx bench/fleet/fleet.ts "$@" ;;
  restart) run restart npx tsx bench/restart/restart.ts "$@" ;;
  ip) run ip npx tsx bench/lib/ip.ts "$@" ;;
  top-now) run top-now node --expose-gc --import tsx bench/service/top-now.ts "$@" ;;
  iperf) run iperf npx tsx bench/datapath/iperf.ts "$@" ;;
  all)
    run per-packet npx tsx bench/datapath/per-packet.ts
    run drain npx tsx bench/datapath/drain.ts
    run service-100k node --expose-gc --import tsx bench/service/service.ts --flows 100000
    run service-1M node --expose-gc --import tsx bench/service/service.ts --flows 1000000
    run flows-filtered node --expose-gc --import tsx bench/service/flows-filtered.ts
    run redis node --expose-gc --import tsx bench/redis/redis.ts
    run fleet node --import tsx bench/fleet/fleet.ts
    run restart npx tsx bench/restart/restart.ts
    run iperf npx tsx bench/datapath/iperf.ts
    run ip npx tsx bench/lib/ip.ts
    ;;
  *) echo "usage: npm run bench -- [per-packet|drain|service|flows-filtered|redis|fleet|restart|iperf|ip|all]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Part delivery delay and server CPU against the number of LL-HLS viewers: one `glasscast
# serve` (BASIC LOW channel, 0.2 s parts, 1 s segments) fed by one ffmpeg encode (720p30 x264
# veryfast zerolatency 2.5 Mb/s, 1 s GOP, AAC), read by `glasscast bench viewers`. Prints, per
# count, p50/p99 part delay, the longest stall, errors, pass/fail (p99 under one part target, no
# stall, no error), the CPU `serve` and the bench client used (percent of one core), and how long
# serve's threads sat runnable waiting for a core (run-queue wait, percent of the wall time, from
# /proc/<pid>/task/*/schedstat): high wait with low CPU means the cores were taken by others.
#   bash bench/viewers-curve.sh [seconds per step] [counts...]
#   FIND_MAX=1 bash bench/viewers-curve.sh 15     # also search the highest passing count
# Run it on quiet cores: another process's bursts show up as part delay.
set -euo pipefail
secs=${1:-15}
shift || true
counts=${*:-100 200 400 800 1600}
source "$(dirname "$0")/live-channel.sh"

ticks() { awk '{print $14+$15}' /proc/$1/stat; }
runq() { cat /proc/$1/task/*/schedstat 2>/dev/null | awk '{s+=$2} END {printf "%.0f\n", s}'; } # ns runnable, not running
hz=$(getconf CLK_TCK)
printf '%8s %9s %9s %9s %7s %6s %9s %9s %9s %s\n' viewers p50 p99 stall errors pass serve%cpu bench%cpu serve%runq load
for n in $counts; do
  s0=$(ticks $serve); q0=$(runq $serve); t0=$(date +%s.%N)
  "$work/glasscast" bench viewers --url "$url" --viewers "$n" --duration ${secs}s --ramp 2s --json >"$work/out.json" 2>/dev/null &
  b=$!; b0=0; bt=0
  while kill -0 $b 2>/dev/null; do bt=$(ticks $b 2>/dev/null || echo $bt); sleep 0.5; done
  wait $b || true
  s1=$(ticks $serve); q1=$(runq $serve); t1=$(date +%s.%N)
  python3 - "$work/out.json" "$n" "$s0" "$s1" "$t0" "$t1" "$hz" "$bt" "$q0" "$q1" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, s0, s1, t0, t1, hz, bt = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
cpu = 100 * (s1 - s0) / hz / (t1 - t0)
bcpu = 100 * bt / hz / (t1 - t0)
runq = 100 * (int(sys.argv[10]) - int(sys.argv[9])) / 1e9 / (t1 - t0)
print('%8s %8.0fms %8.0fms %8.0fms %7d %6s %8.0f%% %8.0f%% %8.0f%% %s' % (n, r['delayP50Ms'], r['delayP99Ms'], r['stallMaxMs'], r['errors'], 'PASS' if r['pass'] else 'fail', cpu, bcpu, runq, sys.argv[11]))
PY
done
if [ -n "${FIND_MAX:-}" ]; then
  "$work/glasscast" bench viewers --url "$url" --duration ${secs}s --find-max 2>&1 | tail -3
fi

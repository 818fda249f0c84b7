#!/usr/bin/env bash
# Two (or more) builds of `glasscast serve` under the same viewer load, alternating, so that a
# change on the viewer path can be told from the cores' own spread. Each round starts a fresh
# serve from one binary on bench/live-channel.sh (BASIC LOW channel, 0.2 s parts, the looped
# 720p30 clip), runs `glasscast bench viewers` for 22 s with the load client on the same cores,
# and prints serve's CPU per request (utime+stime over seconds 9-19, over the requests the
# client counted in those seconds) with the client's p50/p95/p99 part delay and its verdict.
#   bash bench/ab-serve.sh VIEWERS ROUNDS BINARY_A BINARY_B [BINARY ...]
# Build the binaries first, e.g. `git worktree add /tmp/old <rev> && go build -o /tmp/gc-old
# /tmp/old/cmd/glasscast`. Run it on quiet cores.
set -euo pipefail
viewers=$1 rounds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
hz=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
  for bin in "$@"; do
    out=$(GLASSCAST_BIN=$bin VIEWERS=$viewers HZ=$hz bash -c '
      source "'"$here"'/live-channel.sh" >/dev/null 2>&1
      sleep 3
      "$work/glasscast" bench viewers --url "$url" --viewers "$VIEWERS" --duration 22s >"$work/bench.out" 2>&1 &
      b=$!
      sleep 9
      t0=$(awk "{print \$14+\$15}" /proc/$serve/stat)
      sleep 10
      t1=$(awk "{print \$14+\$15}" /proc/$serve/stat)
      wait $b || true
      # The progress lines of seconds 10-20 carry the requests served while the ticks were read.
      rps=$(grep -E "^ *(1[0-9]|20)s " "$work/bench.out" | awk "{s+=\$2; n++} END {if (n) print s/n; else print 0}")
      us=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v rps="$rps" "BEGIN {if (rps > 0) printf \"%.1f\", t / hz / 10 / rps * 1e6; else print \"-\"}")
      echo "$us µs a request, $rps requests/s, $(grep -oE "p50 -?[0-9]+ms p95 -?[0-9]+ms p99 -?[0-9]+ms" "$work/bench.out" | head -1), $(grep -oE "^(PASS|FAIL)" "$work/bench.out")"
    ' 2>/dev/null | tail -1)
    echo "round $r $(basename "$bin"): $out"
  done
done

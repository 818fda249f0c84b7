#!/usr/bin/env bash
# Measures what plain playlist polling costs `serve`: N players that reload their media
# playlist once a second without LL-HLS directives (`glasscast bench pollers`), as Amazon's IVS
# player does once a segment, on the channel bench/live-channel.sh publishes (720p30, 1 s GOP,
# 0.2 s parts). Prints, per round, serve's CPU (its /proc ticks over the run, in cores), the
# upstream fills a second (the edge's cache misses: each is a render and a gzip on the
# origin, or an origin request behind a tier) and the pollers' response times.
# With BINS="old-binary new-binary" it alternates the binaries over the rounds (the first goes
# first in odd rounds), so that two revisions are compared under the same conditions.
#   bash bench/pollers.sh [pollers] [seconds] [rounds]
set -euo pipefail
n=${1:-2000}
secs=${2:-20}
rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BINS:-}" ]; then
  BINS=$(mktemp -d)/glasscast
  (cd "$root" && go build -o "$BINS" ./cmd/glasscast)
fi
read -r -a bins <<<"$BINS"
round() { # binary
  (
    GLASSCAST_BIN=$1 source "$root/bench/live-channel.sh"
    sleep 3
    hz=$(getconf CLK_TCK)
    ticks() { awk '{print $14+$15}' /proc/$1/stat; }
    misses() { curl -s "127.0.0.1:$debug/metrics" | awk '/^glasscast_edge_cache_misses_total/ {print $2}'; }
    m0=$(misses); s0=$(ticks $serve); t0=$(date +%s.%N)
    r=$("$work/glasscast" bench pollers --url "$url" --pollers "$n" --every 1s --duration "${secs}s")
    s1=$(ticks $serve); t1=$(date +%s.%N); m1=$(misses)
    kill $feed 2>/dev/null; wait $feed 2>/dev/null || true # before serve, so ffmpeg does not report a broken pipe
    python3 -c "w=$t1-$t0; print('%s: serve %.3f cores, upstream fills %.0f/s; %s' % ('$1', ($s1-$s0)/$hz/w, ($m1-$m0)/w, '''$r'''.strip()))"
  )
}
for i in $(seq "$rounds"); do
  order=("${bins[@]}")
  if [ $((i % 2)) -eq 0 ]; then order=($(printf '%s\n' "${bins[@]}" | tac)); fi
  for b in "${order[@]}"; do echo -n "round $i "; round "$b"; done
done

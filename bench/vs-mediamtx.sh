#!/usr/bin/env bash
# Glasscast against MediaMTX, side by side in one run: one looped 720p30 x264 clip (veryfast
# zerolatency 2.5 Mb/s, 1 s GOP, AAC, encoded once ahead, see live-channel.sh) sent by two
# ffmpegs started together to `glasscast serve` (BASIC LOW channel, 0.2 s parts, 1 s segments)
# and to MediaMTX (LL-HLS, 0.2 s parts, 1 s segments, muxing from the start). In alternating
# rounds it measures against each:
#   - viewers held: `glasscast bench viewers --find-max` (p99 part delay under one part target,
#     no stall, no error; MediaMTX's separate audio playlist is followed too, as hls.js does),
#     once with the client asking for gzip as browsers do and once without (GZIP_MODES, default
#     "gzip identity"): Glasscast compresses playlists and MediaMTX does not, and Go's inflate of
#     each small playlist is the client's own cost, on the cores the servers share with it;
#   - hls.js latency: now minus the program-date-time of the frame on screen in headless
#     Chromium, in Glasscast's player page with its tuned hls.js settings and with hls.js's
#     defaults (?hls=defaults), the page pointed at either server's playlist; and in each
#     server's own page ("own": Glasscast's tuned page, MediaMTX's /live/ page with its
#     hls.js settings, read through e2e/browser/hlspage.mjs).
#   - with COST_VIEWERS=N, CPU per viewer: N viewers (gzip as GZIP_MODES says, first mode) for
#     [seconds per find-max step] against each, and the server's and the load client's CPU
#     time over it, per request and per 1,000 viewers. This is what viewers held follows from:
#     on shared cores a part's burst of work is the server's and the client's together.
# Prints each round, the ratios Glasscast/MediaMTX per round, and the load average.
#   MEDIAMTX=/tmp/mediamtx/mediamtx bash bench/vs-mediamtx.sh [rounds] [seconds per find-max step] [seconds per latency run]
#   COST_VIEWERS=400 GZIP_MODES=" " LATENCY_MODES=" " MEDIAMTX=… bash bench/vs-mediamtx.sh 3 15  (CPU per viewer only)
# PIN=1 gives the servers core 0 and everything else (the feeds' ffmpegs, the load client, the
# browser) core 1, so that the load client's own work, which grows with the viewers, does not
# take the server's core: the capacity of one core serving viewers that are elsewhere. The
# servers start on core 0, so that Go sizes them for one core (GOMAXPROCS 1).
# MediaMTX builds from its repository with Go once internal/servers/hls/hls.min.js (hls.js's
# dist/hls.min.js, e.g. player/web/vendor/hls.min.js) and internal/core/VERSION exist:
#   git clone https://github.com/bluenviron/mediamtx /tmp/mediamtx && cd /tmp/mediamtx &&
#   cp $OLDPWD/player/web/vendor/hls.min.js internal/servers/hls/ && echo -n v0.0.0 >internal/core/VERSION &&
#   go build -o mediamtx .
set -euo pipefail
rounds=${1:-3}
secs=${2:-10}
lsecs=${3:-40}
mediamtx=${MEDIAMTX:-/tmp/mediamtx/mediamtx}
[ -x "$mediamtx" ] || { echo "no MediaMTX binary at $mediamtx (set MEDIAMTX)" >&2; exit 1; }
pinned= # PIN=1's line in the header
if [ "${PIN:-}" = 1 ]; then SERVE_WRAP="taskset -c 0" pinned=", servers pinned to core 0, feeds and load client to core 1"; fi

before_publish() {
  mrtmp=$(port); mhls=$(port)
  # MediaMTX's own defaults are LL-HLS, 0.2 s parts, 1 s segments; set them anyway, mux from the
  # start (as Glasscast does) and turn off the servers that are not compared.
  sed -e 's/^rtsp: true/rtsp: false/' -e 's/^webrtc: true/webrtc: false/' -e 's/^srt: true/srt: false/' \
    -e 's/^moq: true/moq: false/' -e 's/^logLevel: info/logLevel: warn/' \
    -e "s/^rtmpAddress: .*/rtmpAddress: 127.0.0.1:$mrtmp/" -e "s/^hlsAddress: .*/hlsAddress: 127.0.0.1:$mhls/" \
    -e 's/^hlsAlwaysRemux: .*/hlsAlwaysRemux: true/' -e 's/^hlsVariant: .*/hlsVariant: lowLatency/' \
    -e 's/^hlsPartDuration: .*/hlsPartDuration: 200ms/' -e 's/^hlsSegmentDuration: .*/hlsSegmentDuration: 1s/' \
    "$(dirname "$mediamtx")/mediamtx.yml" >"$work/mediamtx.yml"
  ${SERVE_WRAP:-} "$mediamtx" "$work/mediamtx.yml" >"$work/mediamtx.log" 2>&1 &
  mtx=$!
  for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$mrtmp) 2>/dev/null && break; sleep 0.2; done
  also_publish=rtmp://127.0.0.1:$mrtmp/live
}
source "$(dirname "$0")/live-channel.sh"
murl=http://127.0.0.1:$mhls/live/index.m3u8
for _ in $(seq 100); do curl -sfL -o /dev/null "$murl" && break; sleep 0.2; done
sleep 3 # both past their first segments

# The delay every measure is judged by is taken from program-date-time, which both servers date
# from the feed's arrival as it starts. Now and then a feed starts unevenly and a server dates
# the whole broadcast early or late: seen, 110-140 ms at one viewer on both (which eats half
# the one-part budget of every step), or 30 ms less on one than usual (30 ms more budget than
# the other). Usual at one viewer: MediaMTX 10-25 ms; Glasscast about -20 ms, as it sends a
# part with its last frame, one frame (33 ms) before the part's end. Publish again until one
# viewer sees 0-50 ms of MediaMTX and -45-30 ms of Glasscast, waiting out Glasscast's
# reconnect window so that the new publish is a new broadcast, dated afresh.
client=() # the load client's command prefix (PIN=1: taskset onto core 1)
pin() { # PIN=1: feeds and clients on core 1 (the servers started on core 0)
  [ "${PIN:-}" = 1 ] || return 0
  client=(taskset -c 1)
  local p
  for p in $feed; do taskset -a -p -c 1 $p >/dev/null; done
}
pin
one_viewer() { # url: one viewer for 4 s, its report in $work/one.out
  "${client[@]}" "$work/glasscast" bench viewers --url "$1" --viewers 1 --duration 4s --ramp 0s >"$work/one.out" 2>/dev/null
}
p50at1() { one_viewer "$1"; python3 -c '
import re, sys
m = re.search(r"^part delivery delay.*: p50 (-?[0-9.]+)(ms|µs|ns|s) ", open(sys.argv[1]).read(), re.M)
print(float(m[1]) * {"s": 1000, "ms": 1, "µs": 1e-3, "ns": 1e-6}[m[2]] if m else "")' "$work/one.out"; }
for try in 1 2 3 4 5 6; do
  g=$(p50at1 "$url"); m=$(p50at1 "$murl")
  echo "feed check $try: one viewer's p50 part delay: glasscast ${g:-?} ms, mediamtx ${m:-?} ms"
  awk -v g="${g:-999}" -v m="${m:-999}" 'BEGIN {exit !(g >= -45 && g <= 30 && m >= 0 && m <= 50)}' && break
  kill $feed; wait $feed 2>/dev/null || true; sleep 7
  publish
  pin
  for _ in $(seq 100); do curl -sf -o /dev/null "$url" && curl -sfL -o /dev/null "$murl" && break; sleep 0.2; done
  sleep 3
done

ticks() { awk '{print $14+$15}' /proc/$1/stat; }
hz=$(getconf CLK_TCK)
res=$work/results
runq() { cat /proc/$1/task/*/schedstat 2>/dev/null | awk '{s+=$2} END {printf "%.0f\n", s}'; } # ns runnable, not running
settle() { # name url: wait (up to a minute) until one viewer passes, after the last search's overload
  local i
  for i in $(seq 6); do
    one_viewer "$2" && grep -q '^PASS' "$work/one.out" && return
    echo "    $1 not settled: $(grep '^part delivery' "$work/one.out" | cut -d: -f2)"
    sleep 6
  done
}
viewers() { # name url pid gzip|identity
  local s0 q0 t0 s1 q1 t1 n b bt=0 gz=true
  [ "$4" = identity ] && gz=false
  settle "$1" "$2"
  s0=$(ticks $3); q0=$(runq $3); t0=$(date +%s.%N)
  "${client[@]}" "$work/glasscast" bench viewers --url "$2" --gzip=$gz --find-max --viewers 50 --max-viewers 6400 --duration ${secs}s \
    >"$work/$1.out" 2>"$work/$1.steps" &
  b=$!
  while kill -0 $b 2>/dev/null; do bt=$(ticks $b 2>/dev/null || echo $bt); sleep 0.5; done
  wait $b || true
  s1=$(ticks $3); q1=$(runq $3); t1=$(date +%s.%N)
  n=$(sed -n 's/^highest passing viewer count: //p' "$work/$1.out")
  echo "  $1 viewers held ($4): ${n:-0}   (steps n:p99/verdict: $(grep -o '^ *[0-9]* viewers: p50 [^ ]* p99 [^ ]*.*: [a-z]*$' "$work/$1.steps" |
    awk '{printf "%s:%s/%s ", $1, $6, $NF}'))"
  python3 -c "w=$t1-$t0; print('    over the search: server cpu %.0f%% of a core, server run-queue wait %.0f%%, bench client cpu %.0f%%' % (100*($s1-$s0)/$hz/w, 100*($q1-$q0)/1e9/w, 100*$bt/$hz/w))"
  echo "$r viewers-$4 $1 ${n:-0}" >>"$res"
}
cost() { # name url pid gzip|identity: server and client CPU at COST_VIEWERS viewers
  local s0 s1 t0 t1 gz=true rq
  [ "$4" = identity ] && gz=false
  settle "$1" "$2"
  s0=$(ticks $3); t0=$(date +%s.%N)
  "${client[@]}" /usr/bin/time -f "%U %S" -o "$work/cost.time" "$work/glasscast" bench viewers --url "$2" --gzip=$gz \
    --viewers "$COST_VIEWERS" --ramp 1s --duration ${secs}s >"$work/cost.out" 2>/dev/null || true
  s1=$(ticks $3); t1=$(date +%s.%N)
  rq=$(sed -n 's/^requests \([0-9]*\) .*/\1/p' "$work/cost.out")
  python3 - "$1" "$COST_VIEWERS" "$((s1 - s0))" "$hz" "$t0" "$t1" "${rq:-0}" \
    "$(cat "$work/cost.time" 2>/dev/null)" "$(grep -E '^(PASS|FAIL)' "$work/cost.out" | cut -d, -f1)" "$r" "$res" <<'PY'
import sys
name, n, ticks, hz, t0, t1, rq, client, verdict, r, res = sys.argv[1:]
n, rq = int(n), int(rq)
server, wall = int(ticks) / int(hz), float(t1) - float(t0)
client = sum(map(float, client.split())) if client.strip() else float('nan')
if rq == 0:
    print('  %-9s cost at %d viewers: no requests answered' % (name, n)); sys.exit()
per_k = 1000 * server / wall / n  # cores per 1,000 viewers
print('  %-9s cost at %d viewers: %.0f requests/s; server %.0f %% of a core (%.1f us a request, %.2f cores per 1,000 viewers); '
      'load client %.1f us a request; %s' % (name, n, rq / wall, 100 * server / wall, 1e6 * server / rq, per_k, 1e6 * client / rq, verdict))
open(res, 'a').write('%s cores-per-1000-viewers %s %.4f\n' % (r, name, per_k))
PY
}
latency() { # name url pid mode (the pid is not needed here)
  local enc
  enc=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$2")
  if [ "$4" = own ] && [ "$1" = mediamtx ]; then
    (cd "$root/e2e/browser" && "${client[@]}" node hlspage.mjs "http://127.0.0.1:$mhls/live/" "$lsecs" 2>/dev/null) >"$work/lat.jsonl" || true
  else
    (cd "$root/e2e/browser" && "${client[@]}" node player.mjs "http://127.0.0.1:$api/player/?url=$enc&hls=${4/own/tuned}" "$lsecs" "" 2>/dev/null) >"$work/lat.jsonl" || true
  fi
  python3 - "$work/lat.jsonl" "$1" "$4" "$r" "$res" <<'PY'
import json, sys
s = [json.loads(l)['sample'] for l in open(sys.argv[1]) if l.startswith('{"sample"')]
v = sorted(x['behindWallClock'] for x in s[len(s)//4:] if x.get('behindWallClock') is not None)
t = [x['latency'] for x in s if x.get('latency') is not None]
if not v:
    print('  %-9s hls.js %-8s: no samples' % (sys.argv[2], sys.argv[3])); sys.exit()
stalls = max((x.get('stalls') or 0) for x in s)
print('  %-9s hls.js %-8s: behind program-date-time p50 %.2f s p90 %.2f s (%d samples after warm-up), hls.js latency at end %.2f s, stalls %d' % (
    sys.argv[2], sys.argv[3], v[len(v)//2], v[len(v)*9//10], len(v), t[-1] if t else float('nan'), stalls))
open(sys.argv[5], 'a').write('%s latency-%s %s %.3f\n' % (sys.argv[4], sys.argv[3], sys.argv[2], v[len(v)//2]))
PY
}

on() { # measure server args...: runs measure with the server's name, playlist URL and pid, then args
  local f=$1 s=$2
  shift 2
  if [ "$s" = glasscast ]; then "$f" glasscast "$url" "$serve" "$@"; else "$f" mediamtx "$murl" "$mtx" "$@"; fi
}
cost_mode=$(set -- ${GZIP_MODES-gzip} gzip; echo "$1") # COST_VIEWERS asks as the first of GZIP_MODES

echo "glasscast $url (serve pid $serve); mediamtx $murl (pid $mtx); $(nproc) cores$pinned"
for r in $(seq "$rounds"); do
  order="glasscast mediamtx"; [ $((r % 2)) = 0 ] && order="mediamtx glasscast"
  echo "round $r ($order), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for g in ${GZIP_MODES-gzip identity}; do
    for s in $order; do
      on viewers $s $g
    done
  done
  if [ -n "${COST_VIEWERS:-}" ]; then
    for s in $order; do
      on cost $s "$cost_mode"
    done
  fi
  for m in ${LATENCY_MODES:-tuned own defaults}; do
    for s in $order; do
      on latency $s $m
    done
  done
  echo "  load average after round $r: $(cut -d' ' -f1-3 /proc/loadavg)"
done
python3 - "$res" <<'PY'
import sys, collections
d = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    r, what, who, val = line.split()
    d[(r, what)][who] = float(val)
print('ratios Glasscast / MediaMTX (goals: viewers >= 5, hls.js latency with the project\'s page <= 0.6;')
print('  latency-tuned: both in Glasscast\'s page; latency-own: each in its own page; cores-per-1000-viewers:')
print('  server CPU at COST_VIEWERS, lower is better):')
for (r, what), v in sorted(d.items()):
    if 'glasscast' in v and 'mediamtx' in v and v['mediamtx'] > 0:
        print('  round %s %-16s glasscast %8g  mediamtx %8g  ratio %.2f' % (r, what, v['glasscast'], v['mediamtx'], v['glasscast'] / v['mediamtx']))
    else:
        print('  round %s %-16s %s' % (r, what, v))
PY

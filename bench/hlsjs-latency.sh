#!/usr/bin/env bash
# hls.js latency in Glasscast's player page: now minus the program-date-time of the frame on
# screen, sampled every 250 ms in headless Chromium (e2e/browser/player.mjs), for the page's
# tuned hls.js settings and for hls.js's defaults (?hls=defaults), alternating, one `serve`
# (BASIC LOW channel, 0.2 s parts, 1 s segments) fed by a clip looped with -c copy. Prints p50
# and p90 per run, after a warm-up, and hls.js's stall count. STALL=AT:FOR holds every stream
# request from AT s into each run until AT+FOR s (a network stall) and reports the latency in
# the last quarter of the run, after it. Needs ffmpeg, node and chromium (make deps).
# MODES=tuned runs the page's settings only; SERVE_ARGS="--origin-part-hold-back 2" tries another
# PART-HOLD-BACK.
#   [STALL=15:2] bash bench/hlsjs-latency.sh [seconds per run] [rounds]
set -euo pipefail
secs=${1:-40}
rounds=${2:-2}
source "$(dirname "$0")/live-channel.sh"
enc=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$url")
for r in $(seq "$rounds"); do
  modes=${MODES:-tuned defaults}; [ $((r % 2)) = 0 ] && modes=$(echo $modes | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}')
  for m in $modes; do
    (cd "$root/e2e/browser" && node player.mjs "http://127.0.0.1:$api/player/?url=$enc&hls=$m" "$secs" "" ${STALL:+stall=$STALL} 2>/dev/null) >"$work/$m.jsonl" || true
    python3 - "$work/$m.jsonl" "$r" "$m" <<'PY'
import json, sys
s = [json.loads(l)['sample'] for l in open(sys.argv[1]) if l.startswith('{"sample"')]
v = sorted(x['behindWallClock'] for x in s[len(s)//4:] if x.get('behindWallClock') is not None)
tail = sorted(x['behindWallClock'] for x in s[len(s)*3//4:] if x.get('behindWallClock') is not None)
stalls = max((x.get('stalls') or 0) for x in s) if s else 0
t = [x['latency'] for x in s if x.get('latency') is not None]
if not v:
    print('round %s %-8s: no samples' % (sys.argv[2], sys.argv[3])); sys.exit()
print('round %s %-8s: behind program-date-time p50 %.2f s p90 %.2f s (%d samples after warm-up), last quarter p50 %.2f s; hls.js latency at end %.2f s target %.2f s; stalls %d' % (
    sys.argv[2], sys.argv[3], v[len(v)//2], v[len(v)*9//10], len(v), tail[len(tail)//2] if tail else float('nan'),
    t[-1] if t else float('nan'), s[-1].get('target') or float('nan'), stalls))
PY
  done
done
# The server's share: time from a part's last sample to the origin holding it, over the whole run.
curl -s "http://127.0.0.1:$metrics/metrics" | python3 -c '
import sys
b = [(float(l.split("le=\"")[1].split("\"")[0]), float(l.split()[-1])) for l in sys.stdin if l.startswith("glasscast_ingest_part_delay_seconds_bucket")]
n = b[-1][1] if b else 0
q = lambda f: next((le for le, c in b if c >= f * n), float("nan"))
print("server part delay (glasscast_ingest_part_delay_seconds, %d parts): p50 <= %g s, p99 <= %g s" % (n, q(0.5), q(0.99)))'

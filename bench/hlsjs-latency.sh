#!/usr/bin/env bash
# hls.js latency in Glasscast's player page: now minus the program-date-time of the frame on
# screen, sampled every 250 ms in headless Chromium (e2e/browser/player.mjs), for the page's
# tuned hls.js settings and for hls.js's defaults (?hls=defaults), alternating, one `serve`
# (BASIC LOW channel, 0.2 s parts, 1 s segments) fed by a clip looped with -c copy. Prints p50
# and p90 per run, after a warm-up. Needs ffmpeg, node and chromium (make deps).
#   bash bench/hlsjs-latency.sh [seconds per run] [rounds]
set -euo pipefail
secs=${1:-40}
rounds=${2:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf $work' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api=$(port); rtmp=$(port)

go build -o "$work/glasscast" "$root/cmd/glasscast"
"$work/glasscast" serve --data-dir "$work/serve" --http-listen 127.0.0.1:$api --https-listen "" \
  --ingest-rtmp-listen 127.0.0.1:$rtmp --ingest-rtmps-listen "" --ingest-segment-target 1s --ingest-part-target 200ms \
  --api-access-key-id AKGCBENCHBENCHBENCH0 --api-secret-access-key benchsecret >"$work/serve.log" 2>&1 &
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:$api/healthz && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=AKGCBENCHBENCHBENCH0 AWS_SECRET_ACCESS_KEY=benchsecret AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
ch=$(aws ivs create-channel --type BASIC --latency-mode LOW --insecure-ingest --endpoint-url http://127.0.0.1:$api --output json)
key=$(echo "$ch" | python3 -c 'import json,sys; print(json.load(sys.stdin)["streamKey"]["value"])')
url=$(echo "$ch" | python3 -c 'import json,sys; print(json.load(sys.stdin)["channel"]["playbackUrl"])')
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 -t 20 \
  -c:v libx264 -preset veryfast -tune zerolatency -g 30 -b:v 2500k -maxrate 2500k -bufsize 1250k -pix_fmt yuv420p \
  -c:a aac -b:a 128k -f flv "$work/clip.flv"
ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$work/clip.flv" -c copy -f flv rtmp://127.0.0.1:$rtmp/app/$key &
for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.2; done
enc=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$url")
for r in $(seq "$rounds"); do
  modes="tuned defaults"; [ $((r % 2)) = 0 ] && modes="defaults tuned"
  for m in $modes; do
    (cd "$root/e2e/browser" && node player.mjs "http://127.0.0.1:$api/player/?url=$enc&hls=$m" "$secs" "" 2>/dev/null) >"$work/$m.jsonl" || true
    python3 - "$work/$m.jsonl" "$r" "$m" <<'PY'
import json, sys
s = [json.loads(l)['sample'] for l in open(sys.argv[1]) if l.startswith('{"sample"')]
v = sorted(x['behindWallClock'] for x in s[len(s)//4:] if x.get('behindWallClock') is not None)
t = [x['latency'] for x in s if x.get('latency') is not None]
if not v:
    print('round %s %-8s: no samples' % (sys.argv[2], sys.argv[3])); sys.exit()
print('round %s %-8s: behind program-date-time p50 %.2f s p90 %.2f s (%d samples after warm-up); hls.js latency at end %.2f s' % (
    sys.argv[2], sys.argv[3], v[len(v)//2], v[len(v)*9//10], len(v), t[-1] if t else float('nan')))
PY
  done
done

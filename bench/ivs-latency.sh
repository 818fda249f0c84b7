#!/usr/bin/env bash
# IVS player latency: the IVS Player SDK alone in headless Chromium (e2e/browser/ivslatency.mjs)
# on one `serve` (BASIC LOW channel, 0.2 s parts, 1 s segments, clip looped with -c copy, see
# live-channel.sh). Twice a second a PutMetadata call carries its own send time; latency is
# when its TEXT_METADATA_CUE fires at the playhead minus that time (it includes up to one part
# of waiting for the next part, as a frame captured at that moment would). Prints p50/p90 per
# run after a warm-up. GOP=60 gives 2 s key frame intervals (so 2 s segments), GOP=15 0.5 s
# (0.5 s segments, the IVS player's lowest latency); GLASSCAST_BIN
# runs another build. Needs ffmpeg, node, chromium (make deps), curl and the aws CLI.
#   GOP=30 bash bench/ivs-latency.sh [seconds per run] [runs]
set -euo pipefail
secs=${1:-40}
runs=${2:-1}
source "$(dirname "$0")/live-channel.sh"
arn=$(echo "$ch" | python3 -c 'import json,sys; print(json.load(sys.stdin)["channel"]["arn"])')
(
  while sleep 0.5; do
    curl -s -o /dev/null --aws-sigv4 "aws:amz:us-east-1:ivs" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
      -H 'Content-Type: application/json' -X POST "http://127.0.0.1:$api/PutMetadata" \
      -d "{\"channelArn\":\"$arn\",\"metadata\":\"$(date +%s%3N)\"}" || true
  done
) &
for r in $(seq "$runs"); do
  (cd "$root/e2e/browser" && node ivslatency.mjs "$url" "$secs" ${IVS_DEBUG:+debug} 2>/dev/null) >"$work/ivs.jsonl" || true
  [ -n "${IVS_KEEP:-}" ] && cp "$work/ivs.jsonl" "$IVS_KEEP.$r.jsonl"
  python3 - "$work/ivs.jsonl" "$r" "${GOP:-30}" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
done = next((l['done'] for l in lines if 'done' in l), None)
samples = [l['sample'] for l in lines if 'sample' in l]
if not done or not done['cues']:
    print('run %s GOP %s: no cues (errors %s)' % (sys.argv[2], sys.argv[3], done and done['errors'])); sys.exit()
playing = next((s['now'] for s in samples if s['state'] == 'Playing'), None)
# Warm-up: cues fired in the first 10 s of playing are the start-up, not the steady state.
lat = sorted((c['at'] - int(c['text'])) / 1000 for c in done['cues'] if playing and c['at'] > playing + 10000)
low = any(s['lowLatency'] for s in samples)
rebuf = sum(1 for a, b in zip(samples, samples[1:]) if a['state'] == 'Playing' and b['state'] == 'Buffering')
if not lat:
    print('run %s GOP %s: no cues after warm-up' % (sys.argv[2], sys.argv[3])); sys.exit()
print('run %s GOP %s: IVS player latency p50 %.2f s p90 %.2f s min %.2f max %.2f (%d cues after warm-up), low latency %s, rebuffers %d, errors %s' % (
    sys.argv[2], sys.argv[3], lat[len(lat)//2], lat[len(lat)*9//10], lat[0], lat[-1], len(lat), low, rebuf, done['errors']))
PY
done

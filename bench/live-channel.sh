# Sourced by the bench scripts that measure one live channel: builds glasscast, starts `serve`
# (BASIC LOW channel, 0.2 s parts, 1 s segments, or 2 s with GOP=60) in $work, creates the channel and publishes a
# 720p30 x264 2.5 Mb/s clip (1 s GOP, AAC; GOP=60 frames for 2 s) to it. The clip is encoded once, ahead, and looped
# with -c copy: a live encoder that falls behind real time on busy cores would show up as delay.
# SERVE_ARGS adds serve flags, SERVE_WRAP a command prefix (e.g. taskset -c 0); GLASSCAST_BIN
# runs a binary built elsewhere (another revision, to compare). A caller that defines
# before_publish (a shell function) has it run just before the publish, and one that sets
# also_publish (an RTMP URL) has the same looped clip sent there too, by a second ffmpeg started
# with the first. (One ffmpeg with a tee muxer started the two broadcasts unevenly: the first
# output's first frames came late, and it dated the whole broadcast some 30 ms late, as if it
# delivered every part 30 ms sooner.)
# Every simulated viewer comes from 127.0.0.1, so serve's per-address connection cap is off.
# Returns once the playback URL answers. Sets root, work, api, rtmp, serve (the serve's pid), feed
# (the publishing ffmpegs' pids; publish starts them again), key,
# url and metrics (= debug: serve's metrics.listen port, /metrics and Go's profiles, e.g.
# curl 127.0.0.1:$debug/debug/pprof/trace?seconds=5); the caller's exit kills all.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf $work' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api=$(port); rtmp=$(port); debug=$(port); metrics=$debug

if [ -n "${GLASSCAST_BIN:-}" ]; then cp "$GLASSCAST_BIN" "$work/glasscast"; else (cd "$root" && go build -o "$work/glasscast" ./cmd/glasscast); fi
${SERVE_WRAP:-} "$work/glasscast" serve --data-dir "$work/serve" --http-listen 127.0.0.1:$api --https-listen "" \
  --ingest-rtmp-listen 127.0.0.1:$rtmp --ingest-rtmps-listen "" --ingest-segment-target "$(( (${GOP:-30} + 29) / 30 ))s" --ingest-part-target 200ms \
  --api-access-key-id AKGCBENCHBENCHBENCH0 --api-secret-access-key benchsecret --metrics-listen 127.0.0.1:$debug --http-max-conns-per-ip 0 ${SERVE_ARGS:-} >"$work/serve.log" 2>&1 &
serve=$!
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:$api/healthz && break; sleep 0.2; done

export AWS_ACCESS_KEY_ID=AKGCBENCHBENCHBENCH0 AWS_SECRET_ACCESS_KEY=benchsecret AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
ch=$(aws ivs create-channel --type BASIC --latency-mode LOW --insecure-ingest --endpoint-url http://127.0.0.1:$api --output json)
key=$(echo "$ch" | python3 -c 'import json,sys; print(json.load(sys.stdin)["streamKey"]["value"])')
url=$(echo "$ch" | python3 -c 'import json,sys; print(json.load(sys.stdin)["channel"]["playbackUrl"])')
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 -t 20 \
  -c:v libx264 -preset veryfast -tune zerolatency -g "${GOP:-30}" -b:v 2500k -maxrate 2500k -bufsize 1250k -pix_fmt yuv420p \
  -c:a aac -b:a 128k -f flv "$work/clip.flv"
if declare -F before_publish >/dev/null; then before_publish; fi
publish() { # starts the looped clip's ffmpeg (two with also_publish); sets feed (their pids)
  ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$work/clip.flv" -c copy -f flv rtmp://127.0.0.1:$rtmp/app/$key &
  feed=$!
  if [ -n "${also_publish:-}" ]; then
    ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$work/clip.flv" -c copy -f flv "$also_publish" &
    feed="$feed $!"
  fi
}
publish
for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.2; done

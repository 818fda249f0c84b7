#!/usr/bin/env bash
# Measures cache-hit throughput for one ~30 KB part: Glasscast's edge against nginx configured
# as a caching reverse proxy (bench/nginx-edge.conf), both in front of the same origin, side
# by side in one run. Needs ffmpeg, nginx and wrk (apt). Runs `rounds` rounds, alternating
# which server goes first, prints requests/s of each per round with the edge/nginx ratio, and
# the median ratio. Other load on the cores shows up as spread between rounds. Each round also
# gives what a request cost in CPU: the server's (its processes' ticks in /proc) and wrk's, the
# floor that any HTTP/1.1 server and client pay on these cores.
#   bash bench/edge-vs-nginx.sh [seconds] [connections] [rounds]
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
secs=${1:-15}
conns=${2:-100}
rounds=${3:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -f $work/nginx.pid ] && kill $(cat $work/nginx.pid) 2>/dev/null; cat $work/error.log 2>/dev/null | tail -3; [ -n "${TRACE:-}" ] && tail -n 5 $work/edge.log $work/serve.log; rm -rf $work' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api=$(port); origin=$(port); nats=$(port); edge=$(port); ngx=$(port); rtmp=$(port)

go build -o "$work/glasscast" "$root/cmd/glasscast"
"$work/glasscast" serve --data-dir "$work/serve" --http-listen 127.0.0.1:$api --https-listen "" \
  --ingest-rtmp-listen 127.0.0.1:$rtmp --ingest-rtmps-listen "" --origin-listen 127.0.0.1:$origin \
  --nats-listen 127.0.0.1:$nats --api-access-key-id AKGCBENCHBENCHBENCH0 --api-secret-access-key benchsecret >"$work/serve.log" 2>&1 &
for _ in $(seq 50); do [ -s "$work/serve/nats-credentials.json" ] && break; sleep 0.2; done
# serve's NATS requires a login; it writes one for the other roles into its data folder. Every
# wrk connection comes from 127.0.0.1, so the edge's per-address cap is off, as nginx has none.
nuser=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["user"])' "$work/serve/nats-credentials.json")
npass=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"])' "$work/serve/nats-credentials.json")
"$work/glasscast" edge --data-dir "$work/edge" --http-listen 127.0.0.1:$edge --https-listen "" \
  --nats-url nats://127.0.0.1:$nats --nats-user "$nuser" --nats-password "$npass" \
  --edge-upstream http://127.0.0.1:$origin --http-max-conns-per-ip 0 >"$work/edge.log" 2>&1 &
edgepid=$!
sed -e "s|__PORT__|$ngx|; s|__ORIGIN__|127.0.0.1:$origin|; s|__DIR__|$work|g" "$root/bench/nginx-edge.conf" >"$work/nginx.conf"
mkdir -p "$work/cache"
# nginx workers run as an unprivileged user when started by root.
chmod 755 "$work"; chmod 777 "$work/cache"
nginx -c "$work/nginx.conf" -p "$work"
sleep 2
ngxpid=$(cat "$work/nginx.pid")

export AWS_ACCESS_KEY_ID=AKGCBENCHBENCHBENCH0 AWS_SECRET_ACCESS_KEY=benchsecret AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
ch=$(aws ivs create-channel --type BASIC --insecure-ingest --endpoint-url http://127.0.0.1:$api --output json)
key=$(echo "$ch" | python3 -c 'import json,sys; print(json.load(sys.stdin)["streamKey"]["value"])')
url=$(echo "$ch" | python3 -c 'import json,sys; print(json.load(sys.stdin)["channel"]["playbackUrl"])')
# About 1.2 Mb/s of video makes parts of about 30 KB at 0.2 s.
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 \
  -c:v libx264 -preset veryfast -tune zerolatency -g 60 -b:v 1100k -maxrate 1100k -bufsize 600k -pix_fmt yuv420p \
  -c:a aac -b:a 64k -f flv rtmp://127.0.0.1:$rtmp/app/$key &
sleep 6
path=${url#http://127.0.0.1:$api}
media=${path%.m3u8}/source
part=$(curl -s "http://127.0.0.1:$origin$media/index.m3u8" | grep -o 'part[0-9]*\.[0-9]*\.m4s' | sed -n 3p)
size=$(curl -s "http://127.0.0.1:$origin$media/$part" | wc -c)
echo "part $part: $size bytes; $secs s, $conns connections, wrk -t2"
hz=$(getconf CLK_TCK)
# ticks sums user and system CPU of the given processes and of their children (nginx's workers).
ticks() { local t=0 p; for p in $(pgrep -P "$1") "$1"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
# bench prints requests/s, the server's CPU µs a request and wrk's, for one run against $1 (host:port)
# whose server is process $2.
bench() {
  local s0 s1 rps
  s0=$(ticks "$2")
  /usr/bin/time -f "%U %S" -o "$work/wrk.time" wrk -t2 -c$conns -d${secs}s "http://$1$media/$part" >"$work/wrk.out"
  s1=$(ticks "$2")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  python3 -c "import sys; rps, srv, hz, secs = map(float, sys.argv[1:5]); c = sum(map(float, open(sys.argv[5]).read().split()))
n = rps * secs; print('%s %.1f %.1f' % (sys.argv[1], 1e6 * srv / hz / n, 1e6 * c / n))" "$rps" $((s1 - s0)) "$hz" "$secs" "$work/wrk.time"
}
for t in 127.0.0.1:$edge 127.0.0.1:$ngx; do curl -s -o /dev/null "http://$t$media/$part"; done   # fill both caches
ratios=()
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then read -r e ecpu ewrk < <(bench 127.0.0.1:$edge $edgepid); read -r n ncpu nwrk < <(bench 127.0.0.1:$ngx $ngxpid); order="edge first"
  else read -r n ncpu nwrk < <(bench 127.0.0.1:$ngx $ngxpid); read -r e ecpu ewrk < <(bench 127.0.0.1:$edge $edgepid); order="nginx first"; fi
  ratio=$(python3 -c "print('%.2f' % ($e / $n))")
  ratios+=("$ratio")
  echo "round $r ($order): glasscast-edge $e requests/s, nginx $n requests/s, ratio $ratio; CPU a request: edge $ecpu µs (wrk $ewrk), nginx $ncpu µs (wrk $nwrk)"
done
echo "median edge/nginx ratio over $rounds rounds: $(printf '%s\n' "${ratios[@]}" | sort -n | python3 -c 'import sys; v=[float(x) for x in sys.stdin]; v.sort(); n=len(v); print("%.2f" % ((v[n//2]+v[(n-1)//2])/2))')"

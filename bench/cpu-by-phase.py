#!/usr/bin/env python3
"""Whole-machine CPU use folded onto the part period: is a server idle, or saturated in bursts?

usage: cpu-by-phase.py MEDIA_PLAYLIST_URL [SECONDS] [PART_SECONDS]

Samples /proc/stat every 2 ms for SECONDS (default 20) and prints the share of CPU busy in
each 10 ms slice of the part period (PART_SECONDS, default 0.2), phase 0 being a part's end by
program-date-time (a segment's end, read from the playlist once). With viewers that all reload
on the same part, the average use hides bursts: the cores can be saturated for the first
100 ms after each part and idle for the rest.
"""
import re, sys, time, urllib.request
from datetime import datetime

url = sys.argv[1]
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 20
period = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2
body = urllib.request.urlopen(url).read().decode()
anchor, after = None, 0.0
for line in body.splitlines():
    if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
        anchor = datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00")).timestamp()
        after = 0.0
    elif line.startswith("#EXTINF:"):
        after += float(line[8:].split(",")[0])
if anchor is None:
    sys.exit("no EXT-X-PROGRAM-DATE-TIME in " + url)
anchor += after  # the end of the newest complete segment, which is a part's end

def cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)  # busy (all but idle and iowait), total

n = int(round(period / 0.01))
busy, total = [0] * n, [0] * n
b0, t0 = cpu()
end = time.time() + secs
while time.time() < end:
    time.sleep(0.002)
    now = time.time()
    b1, t1 = cpu()
    i = int(((now - anchor) % period) / period * n) % n
    busy[i] += b1 - b0
    total[i] += t1 - t0
    b0, t0 = b1, t1
for i in range(n):
    print("+%3d ms %5.1f%%" % (i * 10, 100.0 * busy[i] / max(total[i], 1)))

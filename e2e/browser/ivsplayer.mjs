// Runs the IVS tutorial's player page (Amazon's IVS Player SDK, bundled locally with esbuild,
// its wasm worker served by this script) beside hls.js on one playback URL in Debian's
// Chromium, and reports what both players do as JSON lines on stdout.
//   node ivsplayer.mjs <playback URL> <seconds> [stop-after-ended]
// With "wait:<file>" for the URL, it opens the page with both players set up, prints
// {"launched":true}, and the page loads the stream once <file> holds the playback URL: the
// players start at a moment of the caller's choosing, without Chromium's start-up in between.
import { build } from 'esbuild';
import { readFileSync, mkdtempSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch } from './chromium.mjs';

const [playbackURL, seconds, untilEnded] = process.argv.slice(2);
const out = mkdtempSync(join(tmpdir(), 'ivsplayer-'));
// The npm build is CommonJS; the tutorial expects a global IVSPlayer, as the CDN build gives.
await build({ entryPoints: ['node_modules/amazon-ivs-player/dist/index.js'], bundle: true, format: 'iife',
  globalName: 'IVSPlayer', outfile: join(out, 'ivsplayer.js'), logLevel: 'warning' });

const assets = 'node_modules/amazon-ivs-player/dist/assets/';
const files = {
  '/ivsplayer.js': [join(out, 'ivsplayer.js'), 'application/javascript'],
  '/amazon-ivs-wasmworker.min.js': [assets + 'amazon-ivs-wasmworker.min.js', 'application/javascript'],
  '/amazon-ivs-wasmworker.min.wasm': [assets + 'amazon-ivs-wasmworker.min.wasm', 'application/wasm'],
  '/hls.min.js': ['../../player/web/vendor/hls.min.js', 'application/javascript'],
};
// The tutorial's page, unchanged but for the playback URL and the worker location the npm
// build needs; hls.js plays the same URL beside it.
const waitFile = playbackURL.startsWith('wait:') ? playbackURL.slice(5) : null;
const page = `<!doctype html><html><body>
<video id="video-player" playsinline muted style="width:480px"></video>
<video id="hls-player" playsinline muted style="width:480px"></video>
<script src="/ivsplayer.js"></script><script src="/hls.min.js"></script>
<script>
const r = window.report = { states: [], events: [], errors: [], hlsWarnings: [], ivsCues: [], hlsCues: [], lowLatency: [], hls: {} };
const now = () => Date.now();
let player = null;
if (IVSPlayer.isPlayerSupported) {
  player = window.ivs = IVSPlayer.create({ wasmWorker: '/amazon-ivs-wasmworker.min.js', wasmBinary: '/amazon-ivs-wasmworker.min.wasm' });
  player.attachHTMLVideoElement(document.getElementById('video-player'));
  player.setMuted(true);
  for (const s of Object.values(IVSPlayer.PlayerState)) player.addEventListener(s, () => r.states.push({ state: s, at: now() }));
  player.addEventListener(IVSPlayer.PlayerEventType.INITIALIZED, () => r.events.push({ event: 'INITIALIZED', at: now() }));
  player.addEventListener(IVSPlayer.PlayerEventType.ERROR, (e) => r.errors.push({ type: e.type, code: e.code, source: e.source, message: e.message, at: now() }));
  player.addEventListener(IVSPlayer.PlayerEventType.TEXT_METADATA_CUE, (cue) => r.ivsCues.push({ text: cue.text, type: cue.type, at: now() }));
} else {
  r.errors.push({ type: 'unsupported' });
}
// hls.js on the same URL: its emsg samples fired at the playhead, and whether it uses parts.
const video = document.getElementById('hls-player');
const hls = window.hlsjs = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 });
const pending = [];
hls.on(Hls.Events.FRAG_PARSING_METADATA, (e, d) => { for (const s of d.samples) pending.push(s); pending.sort((a, b) => a.pts - b.pts); });
hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) r.errors.push({ type: 'hls.js', details: d.details }); else r.hlsWarnings.push(d.details); });
setInterval(() => { while (pending.length && pending[0].pts <= video.currentTime) { const s = pending.shift(); r.hlsCues.push({ pts: s.pts, type: s.type, at: now(), bytes: Array.from(s.data) }); } }, 40);
function start(playbackUrl) {
  if (player) {
    player.load(playbackUrl);
    player.play();
  }
  hls.loadSource(playbackUrl);
  hls.attachMedia(video);
  video.play().catch(() => {});
}
const fixed = ${JSON.stringify(waitFile ? null : playbackURL)};
if (fixed) {
  start(fixed);
} else {
  // Both players are set up; they load the moment the caller names the URL.
  (async () => {
    for (;;) {
      const res = await fetch('/playback-url');
      if (res.ok) { r.loadedAt = now(); start(await res.text()); return; }
      await new Promise((ok) => setTimeout(ok, 5));
    }
  })();
}
</script></body></html>`;

const browser = await launch();
try {
  // The page comes from a real server on loopback: Chromium's local network access rules let
  // only a loopback page fetch the stream on 127.0.0.1.
  const server = createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (p === '/playback-url' && waitFile) {
      if (!existsSync(waitFile)) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(readFileSync(waitFile, 'utf8').trim());
      return;
    }
    const f = p === '/' ? [null, 'text/html'] : files[p];
    if (!f) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'Content-Type': f[1] });
    res.end(f[0] ? readFileSync(f[0]) : page);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const tab = await browser.newPage();
  tab.on('pageerror', (e) => process.stderr.write('pageerror: ' + e.message + '\n'));
  await tab.goto('http://127.0.0.1:' + server.address().port + '/');
  if (waitFile) {
    process.stdout.write(JSON.stringify({ launched: true }) + '\n');
    while (!existsSync(waitFile)) await new Promise((ok) => setTimeout(ok, 5));
  }
  const end = Date.now() + Number(seconds) * 1000;
  while (Date.now() < end) {
    const s = await tab.evaluate(() => {
      const p = window.ivs, v = document.getElementById('hls-player'), lvl = window.hlsjs.levels[window.hlsjs.currentLevel];
      return {
        now: Date.now(),
        ivs: p ? { state: p.getState(), position: p.getPosition(), lowLatency: p.isLiveLowLatency(), quality: p.getQuality() && p.getQuality().name } : null,
        hls: { currentTime: v.currentTime, latency: window.hlsjs.latency, parts: !!(lvl && lvl.details && lvl.details.partList && lvl.details.partList.length) },
        ivsCues: window.report.ivsCues.length, hlsCues: window.report.hlsCues.length, errors: window.report.errors.length,
      };
    });
    process.stdout.write(JSON.stringify({ sample: s }) + '\n');
    if (untilEnded && s.ivs && s.ivs.state === 'Ended') break;
    await tab.waitForTimeout(250);
  }
  const report = await tab.evaluate(() => window.report);
  process.stdout.write(JSON.stringify({ done: report }) + '\n');
} finally {
  await browser.close();
  process.exit(0); // the page server would keep node alive
}

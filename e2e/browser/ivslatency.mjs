// Measures the IVS player's latency alone in headless Chromium: the tutorial's page (Amazon's
// IVS Player SDK bundled locally, as in ivsplayer.mjs) with nothing else playing beside it.
// Each TEXT_METADATA_CUE whose text is a send time in Unix milliseconds (a PutMetadata call
// made at that moment) gives one latency: the wall clock when the cue fires at the playhead
// minus the send time. Prints JSON lines: samples while playing, then {done: {cues, logs}}.
//   node ivslatency.mjs <playback URL> <seconds> [debug]
import { build } from 'esbuild';
import { readFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch } from './chromium.mjs';

const [playbackURL, seconds, debug] = process.argv.slice(2);
const out = mkdtempSync(join(tmpdir(), 'ivslatency-'));
await build({ entryPoints: ['node_modules/amazon-ivs-player/dist/index.js'], bundle: true, format: 'iife',
  globalName: 'IVSPlayer', outfile: join(out, 'ivsplayer.js'), logLevel: 'warning' });
const assets = 'node_modules/amazon-ivs-player/dist/assets/';
const files = {
  '/ivsplayer.js': [join(out, 'ivsplayer.js'), 'application/javascript'],
  '/amazon-ivs-wasmworker.min.js': [assets + 'amazon-ivs-wasmworker.min.js', 'application/javascript'],
  '/amazon-ivs-wasmworker.min.wasm': [assets + 'amazon-ivs-wasmworker.min.wasm', 'application/wasm'],
};
const page = `<!doctype html><html><body>
<video id="video-player" playsinline muted style="width:480px"></video>
<script src="/ivsplayer.js"></script>
<script>
const r = window.report = { cues: [], errors: [], states: [] };
const player = window.ivs = IVSPlayer.create({ wasmWorker: '/amazon-ivs-wasmworker.min.js', wasmBinary: '/amazon-ivs-wasmworker.min.wasm' });
${debug ? "player.setLogLevel('debug');" : ''}
player.attachHTMLVideoElement(document.getElementById('video-player'));
player.setMuted(true);
for (const s of Object.values(IVSPlayer.PlayerState)) player.addEventListener(s, () => r.states.push({ state: s, at: Date.now() }));
player.addEventListener(IVSPlayer.PlayerEventType.ERROR, (e) => r.errors.push({ type: e.type, code: e.code, source: e.source }));
player.addEventListener(IVSPlayer.PlayerEventType.TEXT_METADATA_CUE, (cue) => r.cues.push({ text: cue.text, at: Date.now() }));
player.load(${JSON.stringify(playbackURL)});
player.play();
</script></body></html>`;

const browser = await launch();
try {
  const server = createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    const f = p === '/' ? [null, 'text/html'] : files[p];
    if (!f) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'Content-Type': f[1] });
    res.end(f[0] ? readFileSync(f[0]) : page);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const tab = await browser.newPage();
  const logs = [];
  if (debug) tab.on('console', (m) => logs.push(Date.now() + ' ' + m.text()));
  await tab.goto('http://127.0.0.1:' + server.address().port + '/');
  const end = Date.now() + Number(seconds) * 1000;
  while (Date.now() < end) {
    const s = await tab.evaluate(() => {
      const p = window.ivs;
      return { now: Date.now(), state: p.getState(), position: p.getPosition(), buffered: p.getBufferDuration(),
        lowLatency: p.isLiveLowLatency(), liveLatency: p.getLiveLatency(), rate: p.getPlaybackRate() };
    });
    process.stdout.write(JSON.stringify({ sample: s }) + '\n');
    await tab.waitForTimeout(500);
  }
  const report = await tab.evaluate(() => window.report);
  process.stdout.write(JSON.stringify({ done: { ...report, logs } }) + '\n');
} finally {
  await browser.close();
  process.exit(0);
}

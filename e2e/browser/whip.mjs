// Goes live from Glasscast's Go live page with Chromium's fake camera and microphone (WHIP),
// after checking that a wrong key is refused, then plays the channel with hls.js on the player
// page in a second page, and finally stops (DELETE). Prints JSON lines:
//   {"refused": {...}}, {"live": {...}}, {"sample": {...}} while playing, {"stopped": {...}}.
//   node whip.mjs <go-live URL> <stream key> <wrong key> <player URL> <playlist URL> <seconds>
import { launch } from './chromium.mjs';

const [goLiveURL, key, wrongKey, playerURL, playlistURL, seconds] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const browser = await launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
try {
  const ctx = await browser.newContext({ permissions: ['camera', 'microphone'] });
  const pub = await ctx.newPage();
  pub.on('console', (m) => process.stderr.write('golive console: ' + m.text() + '\n'));
  pub.on('pageerror', (e) => process.stderr.write('golive pageerror: ' + e.message + '\n'));
  await pub.goto(goLiveURL);
  const goLive = async (k) => {
    await pub.fill('#key', k);
    await pub.click('#start');
    await pub.waitForFunction(() => ['live', 'failed', 'stopped'].includes(window.golive.state), null, { timeout: 20000 });
    return pub.evaluate(() => ({ state: window.golive.state, status: window.golive.status, error: window.golive.error, location: window.golive.location }));
  };
  out({ refused: await goLive(wrongKey) });
  const started = Date.now();
  const live = await goLive(key);
  out({ live: { ...live, ms: Date.now() - started } });
  if (live.state !== 'live') process.exit(0);

  // The channel is playable once its playlist exists.
  for (let i = 0; i < 100; i++) {
    const r = await fetch(playlistURL).catch(() => null);
    if (r && r.status === 200) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  const page = await ctx.newPage();
  page.on('pageerror', (e) => process.stderr.write('player pageerror: ' + e.message + '\n'));
  await page.goto(playerURL);
  const end = Date.now() + Number(seconds) * 1000;
  while (Date.now() < end) {
    const s = await page.evaluate(() => {
      const g = window.glasscast, v = document.getElementById('video');
      const lvl = g.hls && g.hls.levels[g.hls.currentLevel >= 0 ? g.hls.currentLevel : 0];
      return {
        currentTime: v.currentTime, paused: v.paused, readyState: v.readyState,
        latency: g.hls ? g.hls.latency : null,
        behindWallClock: g.hls && g.hls.playingDate ? (Date.now() - g.hls.playingDate.getTime()) / 1000 : null,
        codecs: lvl ? (lvl.attrs && lvl.attrs.CODECS) || [lvl.videoCodec, lvl.audioCodec].join(',') : null,
        videoWidth: v.videoWidth, errors: g.errors.length,
        audioDecoded: v.webkitAudioDecodedByteCount || 0, videoDecoded: v.webkitVideoDecodedByteCount || 0,
      };
    });
    const p = await pub.evaluate(() => ({ codec: window.golive.codec, bytesSent: window.golive.bytesSent }));
    out({ sample: { ...s, publisher: p } });
    await page.waitForTimeout(500);
  }
  await pub.evaluate(() => window.golive.stop());
  out({ stopped: await pub.evaluate(() => ({ state: window.golive.state })) });
} finally {
  await browser.close();
}

// Opens Glasscast's player page, reports playback state as JSON lines on stdout while it
// plays, saves a screenshot when an overlay is showing, and ends with a summary line. With
// stall=AT:FOR, every stream request made from AT seconds in is held until AT+FOR: a network
// stall, after which the page must get back to its target latency.
//   node player.mjs <page URL> <seconds> <screenshot.png> [stall=AT:FOR]
import { launch } from './chromium.mjs';

const [pageURL, seconds, shot, stallArg] = process.argv.slice(2);
const [stallAt, stallFor] = stallArg ? stallArg.slice('stall='.length).split(':').map(Number) : [];
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => process.stderr.write('console: ' + m.text() + '\n'));
  page.on('pageerror', (e) => process.stderr.write('pageerror: ' + e.message + '\n'));
  await page.goto(pageURL);
  const begin = Date.now(), end = begin + Number(seconds) * 1000;
  let shotTaken = false, stallState = stallArg ? 'pending' : 'none';
  const stallEnd = begin + (stallAt + stallFor) * 1000;
  const hold = async (route) => {
    const wait = stallEnd - Date.now();
    if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
    await route.continue().catch(() => {});
  };
  while (Date.now() < end) {
    if (stallState === 'pending' && Date.now() >= begin + stallAt * 1000) {
      await page.route('**/api/video/**', hold);
      stallState = 'on';
    } else if (stallState === 'on' && Date.now() >= stallEnd) {
      await page.unroute('**/api/video/**', hold);
      stallState = 'off';
    }
    const s = await page.evaluate(() => {
      const g = window.glasscast, v = document.getElementById('video');
      return {
        now: Date.now(), currentTime: v.currentTime, paused: v.paused, readyState: v.readyState,
        latency: g.hls ? g.hls.latency : null, target: g.hls ? g.hls.targetLatency : null,
        rate: v.playbackRate, stalls: g.stalls, jumps: g.jumps || 0, lagPeak: g.aim.peak, extra: g.aim.extra, aim: g.aim.set,
        buffered: Array.from({ length: v.buffered.length }, (_, i) => [v.buffered.start(i), v.buffered.end(i)]),
        behindWallClock: g.hls && g.hls.playingDate ? (Date.now() - g.hls.playingDate.getTime()) / 1000 : null,
        cues: g.cues.length, errors: g.errors, overlay: !document.getElementById('overlay').hidden,
        level: g.hls && g.hls.levels[g.hls.currentLevel] ? g.hls.levels[g.hls.currentLevel].height : null,
        partsUsed: g.hls && g.hls.levels[g.hls.currentLevel] && g.hls.levels[g.hls.currentLevel].details ? g.hls.levels[g.hls.currentLevel].details.partList !== null : null,
      };
    });
    s.stall = stallState;
    process.stdout.write(JSON.stringify({ sample: s }) + '\n');
    if (s.overlay && !shotTaken && shot) {
      await page.screenshot({ path: shot });
      shotTaken = true;
    }
    await page.waitForTimeout(250);
  }
  const cues = await page.evaluate(() => window.glasscast.cues);
  // Every cue the metadata tracks hold, fired or not, to tell a lost cue from an unfired one.
  const trackCues = await page.evaluate(() => Array.from(document.getElementById('video').textTracks)
    .flatMap((t) => Array.from(t.cues || []).map((c) => ({ track: t.label, mode: t.mode, startTime: c.startTime, endTime: c.endTime, type: c.type }))));
  process.stdout.write(JSON.stringify({ done: { cues, trackCues, screenshot: shotTaken } }) + '\n');
} finally {
  await browser.close();
}

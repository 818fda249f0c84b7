// Opens any page that plays a stream with hls.js (another server's own player page, say) and
// reports, as JSON lines like player.mjs, how far behind the program-date-time the frame on
// screen is. The page's Hls constructor is wrapped before its scripts run, so the instance it
// creates, with the page's own settings, can be read.
//   node hlspage.mjs <page URL> <seconds>
import { launch } from './chromium.mjs';

const [pageURL, seconds] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => process.stderr.write('pageerror: ' + e.message + '\n'));
  await page.addInitScript(() => {
    let wrapped;
    Object.defineProperty(window, 'Hls', {
      configurable: true,
      get: () => wrapped,
      set: (Hls) => {
        wrapped = new Proxy(Hls, {
          construct(target, args) {
            const hls = new target(...args);
            window.__hls = hls;
            window.__stalls = 0;
            hls.on(Hls.Events.ERROR, (e, d) => { if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) window.__stalls++; });
            return hls;
          },
        });
      },
    });
  });
  await page.goto(pageURL);
  const end = Date.now() + Number(seconds) * 1000;
  while (Date.now() < end) {
    const s = await page.evaluate(() => {
      const hls = window.__hls, v = document.querySelector('video');
      return {
        now: Date.now(), currentTime: v ? v.currentTime : null,
        latency: hls ? hls.latency : null, target: hls ? hls.targetLatency : null, stalls: window.__stalls || 0,
        behindWallClock: hls && hls.playingDate ? (Date.now() - hls.playingDate.getTime()) / 1000 : null,
      };
    });
    process.stdout.write(JSON.stringify({ sample: s }) + '\n');
    await page.waitForTimeout(250);
  }
} finally {
  await browser.close();
}

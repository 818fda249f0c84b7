// Plays several pages of Glasscast's player in one headless Chromium and reports, every 250 ms,
// each page's playback position and the HTTP codes of hls.js's errors, as JSON lines. It ends
// <after> seconds after every page has played 1.5 s, or after <seconds> in all.
//   node viewers.mjs <seconds> <after> <page URL>...
import { launch } from './chromium.mjs';

const [seconds, after, ...pageURLs] = process.argv.slice(2);
const browser = await launch();
try {
  const pages = await Promise.all(pageURLs.map(async (u) => {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => process.stderr.write('pageerror: ' + e.message + '\n'));
    await page.goto(u);
    return page;
  }));
  let end = Date.now() + Number(seconds) * 1000;
  const first = [];
  let allPlaying = false;
  while (Date.now() < end) {
    for (const [i, page] of pages.entries()) {
      const s = await page.evaluate(() => {
        const g = window.glasscast, v = document.getElementById('video');
        return { now: Date.now(), currentTime: v.currentTime, paused: v.paused, codes: g.errors.map((e) => e.code || 0), fatal: g.errors.some((e) => e.fatal) };
      });
      process.stdout.write(JSON.stringify({ sample: { page: i, ...s } }) + '\n');
      if (first[i] === undefined) first[i] = s.currentTime;
      if (s.currentTime > first[i] + 1.5) first[i] = -Infinity;
    }
    if (!allPlaying && pages.every((_, i) => first[i] === -Infinity)) {
      allPlaying = true;
      end = Math.min(end, Date.now() + Number(after) * 1000);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
} finally {
  await browser.close();
}

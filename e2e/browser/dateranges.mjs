// Opens Glasscast's player page (hls.js) and, once the date range with the given ID has both
// its SCTE35-OUT and SCTE35-IN (hls.js merges the two tags that share an ID), prints what
// hls.js made of it; prints {"done": null} if that does not happen within the given seconds.
//   node dateranges.mjs <page URL> <date range ID> <seconds>
import { launch } from './chromium.mjs';

const [pageURL, id, seconds] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => process.stderr.write('pageerror: ' + e.message + '\n'));
  await page.goto(pageURL);
  const end = Date.now() + Number(seconds) * 1000;
  let found = null;
  while (Date.now() < end && !found) {
    found = await page.evaluate((id) => {
      const hls = window.glasscast.hls;
      const lvl = hls && hls.levels[hls.currentLevel];
      const dr = lvl && lvl.details && lvl.details.dateRanges[id];
      if (!dr || !dr.attr['SCTE35-OUT'] || !dr.attr['SCTE35-IN']) return null;
      return { id: dr.id, startDate: dr.startDate.toISOString(), duration: dr.duration, plannedDuration: dr.plannedDuration,
        out: dr.attr['SCTE35-OUT'], in: dr.attr['SCTE35-IN'], valid: dr.isValid,
        currentTime: document.getElementById('video').currentTime };
    }, id);
    if (!found) await page.waitForTimeout(250);
  }
  process.stdout.write(JSON.stringify({ done: found }) + '\n');
} finally {
  await browser.close();
}

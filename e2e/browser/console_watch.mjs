// Opens the console's live channel page in N signed-in browser contexts at once, for the
// server-CPU figure of e2e/console_figures_test.go; also reports one cold first load.
//   node console_watch.mjs <console URL> <channel id> <N> <seconds>
// Environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
import { launch } from './chromium.mjs';

const [base, channelId, n, seconds] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const browser = await launch();
try {
  // A cold first load: bytes on the wire (encoded) and time until the sign-in form is usable.
  const first = await browser.newPage();
  const cdp = await first.context().newCDPSession(first);
  await cdp.send('Network.enable');
  let wire = 0;
  cdp.on('Network.loadingFinished', (e) => { wire += e.encodedDataLength; });
  const t0 = Date.now();
  await first.goto(base, { waitUntil: 'load' });
  await first.waitForSelector('#signin input[name=accessKeyId]');
  const tti = Date.now() - t0;
  await first.waitForTimeout(500);
  say({ firstLoad: { bytesOnWire: wire, msToSignInForm: tti } });
  await first.close();

  const pages = [];
  for (let i = 0; i < Number(n); i++) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const r = await ctx.request.post(new URL('signin', base).toString(), { data: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY } });
    if (!r.ok()) throw new Error(`sign-in ${r.status()}`);
    const page = await ctx.newPage();
    const t = Date.now();
    await page.goto(`${base}#/channels/${channelId}`);
    await page.waitForFunction(() => window.console_ && window.console_.playing, null, { timeout: 60000 });
    pages.push(page);
    say({ watching: i + 1, msToPlaying: Date.now() - t });
  }
  say({ ready: pages.length });
  await pages[0].waitForTimeout(Number(seconds) * 1000);
  const st = await Promise.all(pages.map((p) => p.evaluate(() => ({ playing: window.console_.playing, live: window.console_.live }))));
  say({ done: st });
} finally {
  await browser.close();
}

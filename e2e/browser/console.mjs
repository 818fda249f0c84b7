// Drives Glasscast's web console like a person would and reports each step as a JSON line:
// sign-in (a wrong secret first), create a channel, wait for the publish the Go test starts,
// see it LIVE with a playing preview and a rising viewer count, send metadata and see the cue,
// moderate a chat room a real chat SDK client talks in, stop the stream; a screenshot per page.
//   node console.mjs <console URL> <screenshot dir>
// Environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, GLASSCAST_ENDPOINT, CHAT_URL.
import { createRequire } from 'node:module';
import { launch } from './chromium.mjs';

const [base, dir] = process.argv.slice(2);
const env = process.env;
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const fail = (msg) => { throw new Error(msg); };
const browser = await launch();
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await ctx.newPage();
  page.on('console', (m) => process.stderr.write('console: ' + m.text() + '\n'));
  page.on('pageerror', (e) => process.stderr.write('pageerror: ' + e.message + '\n'));
  page.on('dialog', (d) => d.accept());
  const shot = (name) => page.screenshot({ path: `${dir}/console-${name}.png`, fullPage: true });
  const g = () => page.evaluate(() => ({ ...window.console_, session: undefined }));
  const until = async (what, secs, fn) => {
    const end = Date.now() + secs * 1000;
    for (;;) { const v = await fn(); if (v) return v; if (Date.now() > end) fail(`timed out after ${secs}s waiting for ${what}`); await page.waitForTimeout(250); }
  };

  // 1. Sign-in: first-load figures, a wrong secret, then the right one.
  const t0 = Date.now();
  let bytes = 0;
  page.on('response', async (r) => { try { bytes += (await r.body()).length; } catch { /* redirects */ } });
  await page.goto(base);
  await page.waitForSelector('#signin input[name=accessKeyId]');
  say({ firstLoad: { ms: Date.now() - t0, bytes } });
  await page.fill('input[name=accessKeyId]', env.AWS_ACCESS_KEY_ID);
  await page.fill('input[name=secretAccessKey]', 'not-the-secret');
  await page.click('#signin button[type=submit]');
  const refused = await page.waitForSelector('#signin .err', { timeout: 5000 });
  say({ signInRefused: await refused.textContent() });
  await shot('signin');
  await page.fill('input[name=secretAccessKey]', env.AWS_SECRET_ACCESS_KEY);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#create input[name=name]');

  // 2. A recording configuration, then a channel that records to it, through the forms.
  await page.goto(`${base}#/recordings`);
  await page.fill('#create input[name=bucketName]', 'console-e2e-bucket');
  await page.fill('#create input[name=interval]', '1');
  await page.click('#create button[type=submit]');
  await page.waitForSelector('#recs tr[data-arn]');
  await page.goto(`${base}#/channels`);
  await page.waitForSelector('#create select[name=recordingConfigurationArn] option:nth-child(2)', { state: 'attached' });
  await page.selectOption('#create select[name=recordingConfigurationArn]', { index: 1 });
  await page.fill('#create input[name=name]', 'console-e2e');
  await page.check('#create input[name=insecureIngest]');
  await page.fill('#create input[name=tags]', 'made-by=console');
  await page.click('#create button[type=submit]');
  await page.waitForSelector('#keys code.key');
  const channelId = page.url().split('/').pop();
  const key = await page.getAttribute('#keys code.key', 'data-value');
  await page.click('#keys .reveal');
  const revealed = await page.textContent('#keys code.key');
  if (revealed !== key) fail('reveal did not show the stream key');
  say({ channel: { id: channelId, streamKey: key, ffmpeg: await page.textContent('#ingest pre') } });

  // 3. The Go test publishes now: wait for LIVE and a playing preview.
  await until('LIVE', 40, async () => (await g()).live);
  await until('the preview to play', 30, async () => (await g()).playing);
  const first = (await g()).viewers.at(-1);
  say({ live: { viewers: first } });
  // The count seen since the channel went live climbs to at least two viewers (the preview
  // and the Go test's HLS client): the series holds a rise to its highest value.
  await until('the viewer count to rise', 30, async () => {
    const v = (await g()).viewers, top = Math.max(...v), i = v.indexOf(top);
    return top >= 2 && v.slice(0, i).some((x) => x < top) ? v : null;
  })
    .then((v) => say({ viewersRose: v }));
  const text = `console cue ${Date.now()}`;
  await page.fill('#meta input[name=metadata]', text);
  await page.click('#meta button[type=submit]');
  await until('the metadata cue in the preview', 40, async () => (await g()).cues.includes(text));
  say({ cue: text });
  await page.waitForTimeout(2500); // let the charts draw a few points
  await shot('channel-live');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${dir}/console-channel-phone.png` });
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.goto(`${base}#/channels`);
  await page.waitForSelector(`#list tr[data-arn$="${channelId}"] .badge.LIVE`);
  await shot('channels');
  await page.goto(`${base}#/channels/${channelId}`);
  await until('the Stop stream button', 15, async () => page.$('#stop:not([disabled])'));
  await page.click('#stop');
  await until('the stream to stop', 20, async () => !(await g()).live);
  say({ stopped: true });

  // The session's events in the live feed, filtered to this channel.
  await page.goto(`${base}#/events?channel=${channelId}`);
  const evs = await until('the Stream End event in the feed', 15, async () => {
    const e = (await g()).events || [];
    return e.some((x) => x.detail?.event_name === 'Stream End') ? e : null;
  });
  if (evs.some((x) => !(x.resources || []).some((r) => r.endsWith(channelId)))) fail('the feed showed another channel\'s event');
  say({ events: evs.map((x) => x.detail?.event_name || x.detail?.recording_status) });
  const hooks = await until('the webhook delivery state', 15, async () => {
    const w = (await g()).webhooks || [];
    return w.length && w[0].delivered > 0 && w[0].state === 'idle' ? w : null;
  });
  say({ webhooks: hooks });
  await shot('events');

  // The recording, listed from the bucket with its thumbnail, plays in the VOD player.
  await page.goto(`${base}#/recordings`);
  await page.waitForSelector('#byChannel h3');
  const rec = await until('the ended recording', 40, async () => {
    const r = await page.evaluate(async () => { await window.console_.reloadRecordings(); return window.console_.recordings; });
    return r.find((x) => x.status === 'RECORDING_ENDED');
  });
  await page.click(`#byChannel .play[data-prefix="${rec.prefix}"]`);
  await until('the recording to play', 20, async () => (await g()).vodPlaying);
  await page.waitForTimeout(1000);
  say({ recording: rec });
  await shot('recordings');

  // 4. Chat moderation against the real SDK.
  await page.goto(`${base}#/chat`);
  await page.fill('#create input[name=name]', 'console-room');
  await page.click('#create button[type=submit]');
  await until('the moderator connection', 15, async () => (await g()).chatConnected);
  const roomArn = (await g()).roomArn;
  const require = createRequire(new URL('../chatjs/package.json', import.meta.url));
  globalThis.WebSocket = require('ws');
  const { ChatRoom, SendMessageRequest } = require('amazon-ivs-chat-messaging');
  const ivschat = require('@aws-sdk/client-ivschat');
  const client = new ivschat.IvschatClient({ region: env.AWS_REGION, endpoint: env.GLASSCAST_ENDPOINT, maxAttempts: 1,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } });
  const room = new ChatRoom({ regionOrUrl: env.CHAT_URL, tokenProvider: async () => {
    const o = await client.send(new ivschat.CreateChatTokenCommand({ roomIdentifier: roomArn, userId: 'sdk-viewer', capabilities: ['SEND_MESSAGE'] }));
    return { token: o.token, tokenExpirationTime: o.tokenExpirationTime, sessionExpirationTime: o.sessionExpirationTime };
  }, maxReconnectAttempts: 0 });
  room.logger = { debug() {}, info() {}, warn() {}, error() {} };
  const heard = { deletes: [], kicks: [], disconnects: [] };
  room.addListener('messageDelete', (e) => heard.deletes.push(e.messageId));
  room.addListener('userDisconnect', (e) => heard.kicks.push(e.userId));
  room.addListener('disconnect', (r) => heard.disconnects.push(r));
  const connected = new Promise((res) => room.addListener('connect', res));
  room.connect();
  await connected;
  const sent = await room.sendMessage(new SendMessageRequest('spam from the SDK'));
  await until('the SDK message in the console', 10, async () => (await g()).chat.some((m) => m.id === sent.id));
  await page.waitForTimeout(300);
  await shot('chat-room');
  await page.click(`#msgs li[data-id="${sent.id}"] .delmsg`);
  await until('the deletion in the console', 10, async () => page.$(`#msgs li.deleted[data-id="${sent.id}"]`));
  const sdkUntil = async (what, fn) => { const end = Date.now() + 10000; while (!fn()) { if (Date.now() > end) fail(`SDK: timed out waiting for ${what}`); await new Promise((r) => setTimeout(r, 100)); } };
  await sdkUntil('messageDelete', () => heard.deletes.includes(sent.id));
  say({ chatDeleted: sent.id });
  await room.sendMessage(new SendMessageRequest('more spam')).catch(() => {});
  await until('the second message', 10, async () => (await g()).chat.length > 0 && page.$('#msgs li:not(.deleted) .kick'));
  await page.click('#msgs li:not(.deleted) .kick');
  await sdkUntil('the disconnect', () => heard.disconnects.length > 0);
  say({ chatDisconnected: heard.disconnects.map(String), kicks: heard.kicks });
  await shot('chat-moderated');

  // 5. The other pages.
  await page.goto(`${base}#/chat`); await page.waitForSelector('#rooms table'); await shot('chat');
  await page.goto(`${base}#/keys`); await page.waitForSelector('#import textarea'); await shot('keys');
  await page.click('#signout');
  await page.waitForSelector('#signin');
  say({ signedOut: true, errors: (await g()).errors });
} finally {
  await browser.close();
}

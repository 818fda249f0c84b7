// Publishes Chromium's fake camera and microphone over WHIP with one video codec forced
// (RTCRtpTransceiver.setCodecPreferences) and takes commands on stdin: "pause" stops sending
// media while the peer connection stays up (RTCRtpSender.replaceTrack(null), as a muted
// publisher does), "resume" sends again, and "stop" (or any other line) DELETEs the session.
// Prints JSON lines: {"live": {...}}, {"sample": {...}} every second, {"paused": {}},
// {"resumed": {}}, {"deleted": {...}}.
//   node whip_codec.mjs <page URL on the server's origin> <WHIP URL> <stream key> <video/H264|video/VP8|video/VP9> [WxH, default 640x360]
import { createInterface } from 'node:readline';
import { launch } from './chromium.mjs';

const [pageURL, whipURL, key, mime, size = '640x360'] = process.argv.slice(2);
const [width, height] = size.split('x').map(Number);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const commands = [];
let wake = () => {};
createInterface({ input: process.stdin }).on('line', (l) => { commands.push(l.trim()); wake(); });
const nextCommand = (ms) => new Promise((res) => {
  if (commands.length) return res(commands.shift());
  const t = setTimeout(() => res(null), ms);
  wake = () => { clearTimeout(t); wake = () => {}; res(commands.shift()); };
});
const browser = await launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
try {
  const ctx = await browser.newContext({ permissions: ['camera', 'microphone'] });
  const page = await ctx.newPage();
  page.on('console', (m) => process.stderr.write('console: ' + m.text() + '\n'));
  page.on('pageerror', (e) => process.stderr.write('pageerror: ' + e.message + '\n'));
  // A page on the server's origin: a secure context (loopback) that getUserMedia accepts.
  await page.goto(pageURL);
  const live = await page.evaluate(async ([whipURL, key, mime, width, height]) => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width, height, frameRate: 30 }, audio: true });
    const pc = window.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    for (const track of stream.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      if (track.kind !== 'video') continue;
      const only = RTCRtpSender.getCapabilities('video').codecs.filter((c) =>
        c.mimeType.toLowerCase() === mime.toLowerCase() && (!c.sdpFmtpLine || !c.sdpFmtpLine.includes('profile-id=') || c.sdpFmtpLine.includes('profile-id=0')));
      if (only.length === 0) throw new Error('Chromium cannot send ' + mime);
      tr.setCodecPreferences(only);
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((res) => {
      if (pc.iceGatheringState === 'complete') return res();
      setTimeout(res, 2000);
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && res());
    });
    const resp = await fetch(whipURL, { method: 'POST', body: pc.localDescription.sdp,
      headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + key } });
    const body = await resp.text();
    if (resp.status !== 201) return { status: resp.status, error: body };
    window.location_ = new URL(resp.headers.get('Location'), whipURL).toString();
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    await new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('not connected after 10 s: ' + pc.connectionState)), 10000);
      const check = () => pc.connectionState === 'connected' && (clearTimeout(t), res());
      pc.addEventListener('connectionstatechange', check);
      check();
    });
    return { status: resp.status, location: window.location_, offeredVideo: pc.localDescription.sdp.match(/a=rtpmap:\d+ (\w+)\/90000/g) };
  }, [whipURL, key, mime, width, height]);
  out({ live });
  if (live.status !== 201) process.exit(0);
  for (;;) {
    const s = await page.evaluate(async () => {
      const stats = await window.pc.getStats();
      let codec = null, bytes = 0, frames = 0, width = 0, height = 0, fps = 0;
      stats.forEach((r) => {
        if (r.type === 'outbound-rtp' && r.kind === 'video') {
          bytes = r.bytesSent; frames = r.framesEncoded; width = r.frameWidth; height = r.frameHeight; fps = r.framesPerSecond;
          if (r.codecId && stats.get(r.codecId)) codec = stats.get(r.codecId).mimeType;
        }
      });
      return { codec, bytes, frames, width, height, fps, state: window.pc.connectionState };
    });
    out({ sample: s });
    const cmd = await nextCommand(1000);
    if (cmd === null) continue;
    if (cmd === 'pause' || cmd === 'resume') {
      await page.evaluate(async (pause) => {
        for (const sender of window.pc.getSenders()) {
          if (pause) {
            sender.kept = sender.track;
            await sender.replaceTrack(null);
          } else {
            await sender.replaceTrack(sender.kept);
          }
        }
      }, cmd === 'pause');
      out({ [cmd + 'd']: {} });
      continue;
    }
    break;
  }
  const deleted = await page.evaluate(async () => {
    const r = await fetch(window.location_, { method: 'DELETE' });
    return { status: r.status };
  });
  out({ deleted });
  // The DELETE alone must end the stream: the peer connection stays open until the browser
  // closes.
} finally {
  await browser.close();
}

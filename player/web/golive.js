// Glasscast's "Go live" page: publishes the camera and microphone over WHIP (RFC 9725), with
// the stream key as the bearer token, preferring H.264 (which Glasscast passes through; the
// Opus audio becomes AAC on the server). State is on window.golive for scripts and tests.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const form = $('golive');
  const endpoint = new URL(form.dataset.endpoint || '/whip', location.href).toString();
  const state = window.golive = { state: 'idle', error: null, status: 0, location: null, codec: null, bytesSent: 0 };
  let pc = null, stream = null, statsTimer = null;

  function show(s, err) {
    state.state = s;
    if (err) state.error = String(err);
    $('status').textContent = err ? s + ': ' + err : s;
  }

  // H.264 first (packetization mode 1, constrained baseline first), then whatever else.
  function preferH264(transceiver) {
    if (!transceiver.setCodecPreferences || !RTCRtpSender.getCapabilities) return;
    const codecs = RTCRtpSender.getCapabilities('video').codecs;
    const rank = (c) => {
      if (c.mimeType.toLowerCase() !== 'video/h264') return 3;
      const f = c.sdpFmtpLine || '';
      if (!f.includes('packetization-mode=1')) return 2;
      return f.includes('42e01f') ? 0 : 1;
    };
    const sorted = codecs.slice().sort((a, b) => rank(a) - rank(b));
    if (rank(sorted[0]) < 3) transceiver.setCodecPreferences(sorted);
  }

  function gathered(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
  }

  async function start(key) {
    show('opening camera');
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720, frameRate: 30 }, audio: true });
    $('preview').srcObject = stream;
    pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    for (const track of stream.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      if (track.kind === 'video') preferH264(tr);
    }
    pc.addEventListener('connectionstatechange', () => {
      if (pc && (pc.connectionState === 'failed' || pc.connectionState === 'closed')) show(pc.connectionState);
      else if (pc && pc.connectionState === 'connected') show('live');
    });
    await pc.setLocalDescription(await pc.createOffer());
    // The server's ports are fixed: one offer with the candidates gathered so far suffices.
    await gathered(pc, 2000);
    show('connecting');
    const resp = await fetch(endpoint, {
      method: 'POST', body: pc.localDescription.sdp,
      headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + key },
    });
    state.status = resp.status;
    const body = await resp.text();
    if (resp.status !== 201) throw new Error('WHIP ' + resp.status + ': ' + body.trim());
    state.location = new URL(resp.headers.get('Location'), endpoint).toString();
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    statsTimer = setInterval(updateStats, 1000);
  }

  async function updateStats() {
    if (!pc) return;
    const stats = await pc.getStats();
    let bytes = 0;
    stats.forEach((s) => {
      if (s.type === 'outbound-rtp') bytes += s.bytesSent || 0;
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.codecId && stats.get(s.codecId)) {
        state.codec = stats.get(s.codecId).mimeType;
      }
    });
    state.bytesSent = bytes;
    $('codec').textContent = state.codec || '–';
    $('sent').textContent = (bytes / 1e6).toFixed(1) + ' MB';
  }

  async function stop(failed) {
    clearInterval(statsTimer);
    const loc = state.location;
    state.location = null;
    if (loc) {
      try { await fetch(loc, { method: 'DELETE' }); } catch (e) { /* the session times out anyway */ }
    }
    if (pc) pc.close();
    pc = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    $('start').disabled = false;
    $('stop').disabled = true;
    if (failed !== true) show('stopped');
  }
  window.golive.stop = stop;

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    $('start').disabled = true;
    $('stop').disabled = false;
    state.error = null;
    try {
      await start($('key').value.trim());
    } catch (err) {
      await stop(true);
      show('failed', err.message || err);
    }
  });
  $('stop').addEventListener('click', () => stop());
  window.addEventListener('pagehide', () => {
    if (state.location) fetch(state.location, { method: 'DELETE', keepalive: true });
  });
})();

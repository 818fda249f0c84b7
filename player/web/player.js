// Glasscast's reference player: hls.js in low-latency mode, live latency and quality on
// screen, and timed metadata (PutMetadata, in-band RTMP cues) rendered as overlays. Kept small:
// it is also the example integration for users. State is exposed on window.glasscast so
// scripts (and the browser tests) can read it.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const video = $('video');
  const state = window.glasscast = { hls: null, cues: [], errors: [], levels: [], stalls: 0 };

  function withToken(url, token) {
    if (!token) return url;
    const u = new URL(url, location.href);
    u.searchParams.set('token', token);
    return u.toString();
  }

  // Wall-clock time of media time t, from the program-date-time of what is playing now.
  function dateOf(t) {
    const hls = state.hls;
    if (!hls || !hls.playingDate) return null;
    return hls.playingDate.getTime() + (t - video.currentTime) * 1000;
  }

  // The text of an ID3v2 tag's TXXX (or other text) frame: what the broadcaster sent.
  function id3Text(bytes) {
    if (bytes.length < 10 || bytes[0] !== 0x49 || bytes[1] !== 0x44 || bytes[2] !== 0x33) return '';
    const syncsafe = (o) => (bytes[o] << 21) | (bytes[o + 1] << 14) | (bytes[o + 2] << 7) | bytes[o + 3];
    const v4 = bytes[3] === 4;
    const end = Math.min(bytes.length, 10 + syncsafe(6));
    for (let o = 10; o + 10 <= end;) {
      const id = String.fromCharCode(bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]);
      const size = v4 ? syncsafe(o + 4) : (bytes[o + 4] << 24) | (bytes[o + 5] << 16) | (bytes[o + 6] << 8) | bytes[o + 7];
      const body = bytes.subarray(o + 10, o + 10 + size);
      o += 10 + size;
      if (id[0] !== 'T' || body.length < 1) continue;
      const enc = body[0];
      const utf16 = enc === 1 || enc === 2;
      const dec = new TextDecoder(enc === 0 ? 'latin1' : utf16 ? (enc === 2 ? 'utf-16be' : 'utf-16') : 'utf-8');
      let text = body.subarray(1);
      if (id === 'TXXX') { // skip the description, null-terminated in the frame's encoding
        let i = 0;
        if (utf16) { while (i + 1 < text.length && (text[i] || text[i + 1])) i += 2; i += 2; } else { while (i < text.length && text[i]) i++; i++; }
        text = text.subarray(i);
      }
      return dec.decode(text).replace(/\0+$/, '');
    }
    return '';
  }

  // Timed metadata is taken from hls.js's parsed samples and fired when the playhead reaches
  // it, not from the text track hls.js builds: Chromium drops a cue added to that track
  // before its empty WebVTT source has loaded, so the first cue of a stream would be lost.
  const pending = [];
  const seen = new Set();
  function onMetadata(e, data) {
    for (const s of data.samples) {
      const text = id3Text(s.data);
      const key = s.pts.toFixed(3) + '|' + text;
      if (!text || seen.has(key)) continue;
      seen.add(key);
      pending.push({ pts: s.pts, text, type: s.type });
    }
    pending.sort((a, b) => a.pts - b.pts);
  }
  function fireDue() {
    while (pending.length && pending[0].pts <= video.currentTime) {
      const p = pending.shift();
      if (video.currentTime - p.pts > 10) continue; // long past (a seek): do not replay
      const entry = { text: p.text, type: p.type, startTime: p.pts, firedAt: Date.now(), mediaDate: dateOf(p.pts) };
      state.cues.push(entry);
      const li = document.createElement('li');
      li.textContent = new Date(entry.firedAt).toISOString().slice(11, 23) + '  ' + p.text;
      $('cues').prepend(li);
      render(p.text);
    }
  }
  setInterval(fireDue, 40);

  function render(text) {
    const overlay = $('overlay');
    let m;
    try { m = JSON.parse(text); } catch (e) { m = { type: 'text', text: text }; }
    overlay.replaceChildren();
    const h = document.createElement('h3');
    switch (m.type) {
      case 'poll': {
        h.textContent = m.question || 'Poll';
        const ul = document.createElement('ul');
        for (const o of m.options || m.answers || []) {
          const li = document.createElement('li');
          li.textContent = o;
          ul.append(li);
        }
        overlay.append(h, ul);
        break;
      }
      case 'product': {
        h.textContent = m.name || m.title || 'Product';
        const p = document.createElement('div');
        p.className = 'price';
        p.textContent = m.price || '';
        overlay.append(h, p);
        break;
      }
      case 'score': {
        h.textContent = (m.home || 'Home') + ' – ' + (m.away || 'Away');
        const s = document.createElement('div');
        s.className = 'score';
        s.textContent = (m.homeScore ?? 0) + ' : ' + (m.awayScore ?? 0);
        overlay.append(h, s);
        break;
      }
      default:
        h.textContent = m.text || text;
        overlay.append(h);
    }
    overlay.hidden = false;
    clearTimeout(render.timer);
    render.timer = setTimeout(() => { overlay.hidden = true; }, 10000);
  }

  function stats() {
    const hls = state.hls;
    if (!hls) return;
    $('latency').textContent = isFinite(hls.latency) ? hls.latency.toFixed(2) + ' s (target ' + (hls.targetLatency || 0).toFixed(2) + ' s)' : '–';
    if (hls.playingDate) $('wallclock').textContent = ((Date.now() - hls.playingDate.getTime()) / 1000).toFixed(2) + ' s';
    const lvl = hls.levels[hls.currentLevel];
    if (lvl) $('quality').textContent = (lvl.height ? lvl.height + 'p' : '') + ' ' + Math.round(lvl.bitrate / 1000) + ' kb/s' + (hls.autoLevelEnabled ? ' (auto)' : '');
    const b = video.buffered;
    if (b.length) $('buffer').textContent = (b.end(b.length - 1) - video.currentTime).toFixed(2) + ' s';
  }
  setInterval(stats, 250);

  // The page's target latency. hls.js aims at PART-HOLD-BACK (three part targets from
  // Glasscast), room for a part that comes two part targets late. Where parts come on time the
  // page aims lower, at what this link needs: the furthest the end of the buffer trailed the
  // live edge over the last 5 s of playback (a part target, and the time parts take to arrive)
  // plus half a part target to spare; never above PART-HOLD-BACK, and never under two part
  // targets, the least PART-HOLD-BACK the specification allows. Closer than that, hls.js 1.7
  // now and then stops loading parts for 2 s at a segment's first part (seen at 0.3 s, every
  // 10 to 30 s with a 10 s or 30 s back buffer, once in three 60 s runs without one; never at
  // 0.4 s in six), and the video stalls. Each stall once the page aims itself adds a part
  // target, and 20 s without one takes a part target off again. A stall before that (tuning
  // in, or a busy machine in the first seconds) happened at hls.js's own target, and the first
  // one just after the page's own jump to the live edge is that jump filling its buffer:
  // neither says anything about the page's target, and the lag they leave is in what the page
  // measures next. Only a jump 10 s after the one before is forgiven so: a link that stalls
  // after every jump raises the target as any other stall does.
  // What the page knows before it has measured anything: at start and for each new source.
  const aimStart = () => ({ extra: 0, stallAt: 0, set: 0, jumpAt: -Infinity, forgive: false, peak: 0 });
  const aim = state.aim = { lag: [], ...aimStart() };
  // The playlist hls.js plays now, and its part target (its target duration without parts).
  const levelDetails = (hls) => hls.levels[hls.currentLevel] && hls.levels[hls.currentLevel].details;
  const partOf = (details) => details.partTarget || details.targetduration;
  function adaptTarget(hls, details, latency, ahead, part) {
    const now = performance.now();
    if (ahead > 0.05) aim.lag.push({ t: now, v: latency - ahead });
    while (aim.lag.length && now - aim.lag[0].t > 5000) aim.lag.shift();
    if (aim.extra > 0 && now - aim.stallAt > 20000) { aim.extra = Math.max(0, aim.extra - part); aim.stallAt = now; }
    if (aim.lag.length < 30) return; // 3 s of playback first
    const hold = details.partHoldBack || 3 * part;
    let peak = 0;
    for (const s of aim.lag) peak = Math.max(peak, s.v);
    aim.peak = peak;
    const want = Math.min(hold + aim.extra, Math.max(2 * part, peak + part / 2) + aim.extra);
    // Compared with hls.js's target, not with what the page set last: hls.js raises its own at
    // every stall, and the page keeps its own instead (setting it clears hls.js's raise).
    aim.set = want;
    if (Math.abs(want - hls.targetLatency) > 0.02) hls.targetLatency = want;
  }
  // A stall is the video waiting for data once it has played, not a seek.
  video.addEventListener('waiting', () => { if (state.tuned && !video.seeking && video.currentTime > 0) onStall(); });
  function onStall() {
    if (!aim.set) return;
    if (aim.forgive && performance.now() - aim.jumpAt < 2000) { aim.forgive = false; return; }
    const details = state.hls && levelDetails(state.hls);
    const part = details ? partOf(details) : 0.2;
    aim.extra = Math.min(aim.extra + part, details ? details.targetduration : 1);
    aim.stallAt = performance.now();
  }

  // catchUp keeps hls.js at its target latency after start-up and after any stall: it plays up
  // to 1.25x (cheap to decode, hardly audible) while the playhead is behind the target and more
  // than a part target is buffered, and jumps to the live sync position when more than two
  // seconds behind, where playing fast takes too long.
  function catchUp() {
    const hls = state.hls;
    if (!hls || !state.tuned || video.paused || video.readyState < 3) return;
    const details = levelDetails(hls);
    const latency = hls.latency;
    if (!details || !details.live || !isFinite(latency)) return;
    const b = video.buffered;
    const ahead = b.length ? b.end(b.length - 1) - video.currentTime : 0;
    const part = partOf(details);
    adaptTarget(hls, details, latency, ahead, part);
    const target = hls.targetLatency;
    if (!isFinite(target)) return;
    const behind = latency - target;
    let rate = 1;
    if (behind > 2 && isFinite(hls.liveSyncPosition) && hls.liveSyncPosition > video.currentTime) {
      video.currentTime = hls.liveSyncPosition;
      const now = performance.now();
      aim.forgive = now - aim.jumpAt > 10000;
      aim.jumpAt = now;
      state.jumps = (state.jumps || 0) + 1;
    } else if (behind > 0.05 && ahead > part) {
      rate = Math.min(1.25, 1 + behind);
    }
    if (video.playbackRate !== rate) video.playbackRate = rate;
  }
  setInterval(catchUp, 100);

  function play(url) {
    if (state.hls) state.hls.destroy();
    state.cues.length = 0;
    $('status').textContent = 'loading';
    if (!window.Hls || !Hls.isSupported()) {
      video.src = url; // Safari: native HLS
      video.play().catch(() => {});
      return;
    }
    pending.length = 0;
    seen.clear();
    // hls.js aims at PART-HOLD-BACK behind the live edge in low-latency mode, but left at its
    // defaults it raises that target by 1 s at every stall (liveSyncOnStallIncrease), start-up
    // included, and never plays faster to win it back. Its own catch-up (maxLiveSyncPlaybackRate)
    // only runs with more than 1 s of forward buffer and within one target duration of the
    // target, so with a 0.6 s target it settles near 1 s and never recovers from a long stall.
    // The page sets and keeps the target itself instead (adaptTarget and catchUp above).
    // ?hls=defaults keeps hls.js's own settings, to compare the two in this page.
    const tuned = new URLSearchParams(location.search).get('hls') !== 'defaults';
    // No backBufferLength: trimming the back buffer while a part is between loaded and buffered
    // makes hls.js 1.7 forget the parts of the live segment and stop loading for 2 s (see
    // adaptTarget); the browser evicts played media itself when its quota fills.
    const cfg = { lowLatencyMode: true, enableEmsgMetadataCues: true, enableID3MetadataCues: true };
    // Until the page has measured the link, a stall raises hls.js's target by 0.2 s (one
    // default part target) rather than 1 s.
    if (tuned) Object.assign(cfg, { liveSyncOnStallIncrease: 0.2 });
    state.tuned = tuned;
    aim.lag.length = 0;
    Object.assign(aim, aimStart());
    const hls = state.hls = new Hls(cfg);
    hls.on(Hls.Events.FRAG_PARSING_METADATA, onMetadata);
    hls.on(Hls.Events.MANIFEST_PARSED, (e, d) => { state.levels = d.levels.map((l) => l.height); $('status').textContent = 'playing'; video.play().catch(() => {}); });
    hls.on(Hls.Events.ERROR, (e, d) => {
      if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) state.stalls++;
      state.errors.push({ type: d.type, details: d.details, fatal: d.fatal, code: d.response && d.response.code });
      if (d.fatal) $('status').textContent = 'error: ' + d.details + (d.response ? ' (' + d.response.code + ')' : '');
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  $('source').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = withToken($('url').value, $('token').value.trim());
    history.replaceState(null, '', '?url=' + encodeURIComponent($('url').value) + ($('token').value ? '&token=' + encodeURIComponent($('token').value) : ''));
    play(url);
  });
  if ($('url').value) play(withToken($('url').value, $('token').value.trim()));
})();

// Glasscast's web console: a small single-page client of the same IVS / IVS Chat / CloudWatch
// operations the CLI calls, posted to /console/api/<service>/<Operation> with the session's
// CSRF token. State is exposed on window.console_ for the browser tests.
const $ = (sel, root = document) => root.querySelector(sel);
const main = $('#main');
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const state = window.console_ = { session: null, cues: [], errors: [], viewers: [], playing: false, chat: [] };
let cleanup = []; // stops the current page's timers, players and sockets

// api runs one operation and throws an Error whose message is the API's AWS-shaped answer.
async function api(service, op, body = {}, method = 'POST') {
  busy(1);
  try {
    const r = await fetch(`/console/api/${service}/${op}`, {
      method, credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-Csrf-Token': state.session?.csrfToken || '' },
      body: method === 'GET' ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    const out = text ? JSON.parse(text) : {};
    if (!r.ok) {
      const type = r.headers.get('x-amzn-ErrorType') || out.__type || `HTTP ${r.status}`;
      const e = new Error(`${type.split(':')[0]}: ${out.message || out.Message || text}`);
      e.code = type.split(':')[0];
      if (r.status === 403 && /not signed in|CSRF/.test(out.message || '')) { state.session = null; route(); }
      throw e;
    }
    return out;
  } finally { busy(-1); }
}
let busyN = 0;
function busy(d) { busyN += d; $('#busy').hidden = busyN <= 0; }

// act runs fn for a button or form, shows its error next to it, and disables it meanwhile.
async function act(el, fn) {
  const where = el.closest('section, form, .signin') || main;
  where.querySelectorAll(':scope > .err').forEach((e) => e.remove());
  el.disabled = true;
  try { await fn(); } catch (e) {
    state.errors.push(e.message);
    const d = document.createElement('div');
    d.className = 'err'; d.setAttribute('role', 'alert'); d.textContent = e.message;
    where.append(d);
  } finally { el.disabled = false; }
}
const on = (sel, ev, fn, root = main) => root.querySelectorAll(sel).forEach((el) => el.addEventListener(ev, (e) => {
  if (ev === 'submit') e.preventDefault();
  act(ev === 'submit' ? el.querySelector('button[type=submit]') || el : el, () => fn(e, el));
}));
const formData = (f) => Object.fromEntries(new FormData(f).entries());
const idOf = (arn) => arn.split('/').pop();
const arnOf = (kind, id) => `arn:aws:ivs:${state.session.region}:${state.session.account}:${kind}/${id}`;
const badge = (s) => `<span class="badge ${esc(s)}">${esc(s)}</span>`;
// every runs fn now and then ms after each run ends, so a slow server never sees calls pile up.
const every = (ms, fn) => {
  let stopped = false, t = null;
  const run = async () => { try { await fn(); } finally { if (!stopped) t = setTimeout(run, ms); } };
  cleanup.push(() => { stopped = true; clearTimeout(t); });
  run();
};

// ---- session ----
async function loadSession() {
  const r = await fetch('/console/session', { credentials: 'same-origin' });
  const s = await r.json();
  state.session = s.signedIn ? s : null;
}
function signInPage() {
  $('#top').hidden = true;
  main.innerHTML = `<form class="signin" id="signin" autocomplete="off">
    <h1>Sign in to Glasscast</h1>
    <p class="muted">Use an API access key: the one <code>glasscast serve</code> printed on first start (also in the data folder's credentials.json) or one configured with --api-access-key-id. The secret is sent once and never kept in the browser.</p>
    <label>Access key ID <input name="accessKeyId" required autofocus></label>
    <label>Secret access key <input name="secretAccessKey" type="password" autocomplete="current-password" required></label>
    <button type="submit">Sign in</button></form>`;
  on('#signin', 'submit', async (e, f) => {
    const r = await fetch('/console/signin', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(formData(f)) });
    const out = await r.json();
    if (!r.ok) throw new Error(out.message);
    state.session = out;
    if (!location.hash || location.hash === '#/') location.hash = '#/channels'; else route();
  });
}
$('#signout').addEventListener('click', async () => {
  await fetch('/console/signout', { method: 'POST', credentials: 'same-origin', headers: { 'X-Csrf-Token': state.session?.csrfToken || '' } });
  state.session = null; route();
});

// ---- channels ----
const channelFields = (c = {}, recs = []) => `
  <label>Name <input name="name" value="${esc(c.name)}" maxlength="128" pattern="[a-zA-Z0-9_\\-]*"></label>
  <label>Latency mode <select name="latencyMode">${['LOW', 'NORMAL'].map((v) => `<option ${c.latencyMode === v ? 'selected' : ''}>${v}</option>`).join('')}</select></label>
  <label>Type <select name="type">${['STANDARD', 'BASIC', 'ADVANCED_SD', 'ADVANCED_HD'].map((v) => `<option ${c.type === v ? 'selected' : ''}>${v}</option>`).join('')}</select></label>
  <label>Recording <select name="recordingConfigurationArn"><option value="">none</option>${recs.map((r) => `<option value="${esc(r.arn)}" ${c.recordingConfigurationArn === r.arn ? 'selected' : ''}>${esc(r.name || idOf(r.arn))}</option>`).join('')}</select></label>
  <label class="check"><input type="checkbox" name="authorized" ${c.authorized ? 'checked' : ''}> Private (tokens required)</label>
  <label class="check"><input type="checkbox" name="insecureIngest" ${c.insecureIngest ? 'checked' : ''}> Allow plain RTMP</label>`;
function channelInput(f) {
  const d = formData(f);
  return { name: d.name, latencyMode: d.latencyMode, type: d.type, authorized: !!d.authorized, insecureIngest: !!d.insecureIngest,
    recordingConfigurationArn: d.recordingConfigurationArn || '' };
}
function parseTags(s) {
  const tags = {};
  for (const kv of (s || '').split(',').map((x) => x.trim()).filter(Boolean)) { const [k, ...v] = kv.split('='); tags[k.trim()] = v.join('=').trim(); }
  return tags;
}

async function channelsPage() {
  main.innerHTML = `<h1>Channels</h1><section id="list"><p class="muted">Loading…</p></section>
    <h2>Create a channel</h2><section><form class="grid" id="create">${channelFields({ latencyMode: 'LOW', type: 'STANDARD' })}
    <label>Tags <input name="tags" placeholder="team=live, env=test"></label><button type="submit">Create channel</button></form></section>`;
  const recs = (await api('ivs', 'ListRecordingConfigurations').catch(() => ({}))).recordingConfigurations || [];
  $('#create select[name=recordingConfigurationArn]').innerHTML = `<option value="">none</option>` + recs.map((r) => `<option value="${esc(r.arn)}">${esc(r.name || idOf(r.arn))}</option>`).join('');
  on('#create', 'submit', async (e, f) => {
    const input = channelInput(f);
    if (!input.recordingConfigurationArn) delete input.recordingConfigurationArn;
    const tags = parseTags(formData(f).tags);
    if (Object.keys(tags).length) input.tags = tags;
    const out = await api('ivs', 'CreateChannel', input);
    location.hash = `#/channels/${idOf(out.channel.arn)}`;
  });
  every(3000, async () => {
    const list = $('#list');
    try {
      const [ch, st] = await Promise.all([api('ivs', 'ListChannels', { maxResults: 100 }), api('ivs', 'ListStreams', { maxResults: 100 })]);
      const live = Object.fromEntries((st.streams || []).map((s) => [s.channelArn, s]));
      list.innerHTML = ch.channels.length ? `<div class="wrap"><table><thead><tr><th>Name</th><th>State</th><th>Health</th><th>Viewers</th><th>Latency</th><th>Type</th><th>Private</th><th>ID</th></tr></thead><tbody>
        ${ch.channels.map((c) => { const s = live[c.arn]; return `<tr data-arn="${esc(c.arn)}"><td><a href="#/channels/${esc(idOf(c.arn))}">${esc(c.name || '(no name)')}</a></td>
        <td>${badge(s ? 'LIVE' : 'OFFLINE')}</td><td>${s ? badge(s.health) : ''}</td><td>${s ? s.viewerCount : ''}</td><td>${esc(c.latencyMode)}</td><td>${esc(c.type)}</td><td>${c.authorized ? 'yes' : ''}</td><td class="mono">${esc(idOf(c.arn))}</td></tr>`; }).join('')}</tbody></table></div>`
        : `<p class="muted">No channels yet: create one below.</p>`;
    } catch (e) { list.innerHTML = `<div class="err">${esc(e.message)}</div>`; }
  });
}

// ID3 text of a timed-metadata sample (PutMetadata arrives as a TXXX frame).
function id3Text(b) {
  if (b.length < 10 || b[0] !== 0x49 || b[1] !== 0x44 || b[2] !== 0x33) return '';
  const ss = (o) => (b[o] << 21) | (b[o + 1] << 14) | (b[o + 2] << 7) | b[o + 3];
  const v4 = b[3] === 4, end = Math.min(b.length, 10 + ss(6));
  for (let o = 10; o + 10 <= end;) {
    const id = String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]);
    const size = v4 ? ss(o + 4) : (b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7];
    let body = b.subarray(o + 11, o + 10 + size); o += 10 + size;
    if (id[0] !== 'T') continue;
    if (id === 'TXXX') body = body.subarray(body.indexOf(0) + 1);
    return new TextDecoder().decode(body).replace(/\0+$/, '');
  }
  return '';
}

// chart draws series (arrays of [epoch s, value]) as a line on a canvas.
function chart(canvas, points, label, fmt = (v) => v) {
  if (!canvas) return; // the page was left
  const w = canvas.width = canvas.clientWidth * devicePixelRatio, h = canvas.height = canvas.clientHeight * devicePixelRatio;
  const g = canvas.getContext('2d'); g.clearRect(0, 0, w, h);
  const last = points.length ? points[points.length - 1][1] : null;
  g.fillStyle = '#5f6b76'; g.font = `${12 * devicePixelRatio}px system-ui`;
  g.fillText(`${label}: ${last === null ? '–' : fmt(last)}`, 6, 14 * devicePixelRatio);
  if (points.length < 2) return;
  const t0 = points[0][0], t1 = points[points.length - 1][0], max = Math.max(1, ...points.map((p) => p[1]));
  g.strokeStyle = '#0b63ce'; g.lineWidth = 2 * devicePixelRatio; g.beginPath();
  points.forEach(([t, v], i) => { const x = (t - t0) / Math.max(1, t1 - t0) * (w - 4) + 2, y = h - 4 - v / max * (h - 24 * devicePixelRatio); i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke();
}

async function metricSeries(arn, minutes = 5) {
  const end = Math.floor(Date.now() / 1000), start = end - minutes * 60;
  const q = (id, name, stat) => ({ Id: id, MetricStat: { Metric: { Namespace: 'AWS/IVS', MetricName: name, Dimensions: [{ Name: 'Channel', Value: arn }] }, Period: 1, Stat: stat } });
  const out = await api('monitoring', 'GetMetricData', { StartTime: start, EndTime: end,
    MetricDataQueries: [q('views', 'ConcurrentViews', 'Maximum'), q('bitrate', 'IngestVideoBitrate', 'Average'), q('fps', 'IngestFramerate', 'Average')] });
  const res = {};
  for (const r of out.MetricDataResults || []) res[r.Id] = (r.Timestamps || []).map((t, i) => [typeof t === 'number' ? t : Date.parse(t) / 1000, r.Values[i]]).sort((a, b) => a[0] - b[0]);
  return res;
}

async function channelPage(id) {
  const arn = arnOf('channel', id);
  const [{ channel: c }, recs] = await Promise.all([api('ivs', 'GetChannel', { arn }), api('ivs', 'ListRecordingConfigurations').then((o) => o.recordingConfigurations).catch(() => [])]);
  main.innerHTML = `<h1>${esc(c.name || '(no name)')} <span id="state">${badge('OFFLINE')}</span></h1>
  <div class="cols"><div>
    <section id="live"><video id="preview" muted playsinline controls></video>
      <div class="row"><button id="stop" class="danger" type="button" disabled>Stop stream</button>
        <span id="why" class="muted"></span></div>
      <div class="row" ${c.authorized ? '' : 'hidden'}><label>Playback token (private channel) <input id="token" size="40"></label></div>
    </section>
    <section><h2>Timed metadata</h2><form id="meta" class="row"><input name="metadata" maxlength="1024" placeholder='{"question":"Who wins?"}' required size="36"><button type="submit">PutMetadata</button></form>
      <ol class="feed" id="cues"></ol></section>
    <section><h2>Stream keys</h2><div id="keys"></div><div class="row"><button id="newkey" class="plain" type="button">Create another key</button></div></section>
    <section><h2>Ingest</h2><div id="ingest"></div></section>
  </div><div>
    <section><h2>Health</h2><dl class="stats" id="stats"><dt>State</dt><dd>offline</dd></dl>
      <canvas id="c-views"></canvas><canvas id="c-bitrate"></canvas><canvas id="c-fps"></canvas><canvas id="c-latency"></canvas></section>
    <section><h2>Session events</h2><ol class="feed" id="sessevents"><li class="muted">No session yet.</li></ol></section>
    <section><h2>Settings</h2><form class="grid" id="update">${channelFields(c, recs)}<button type="submit">Save</button></form>
      <p class="mono muted">${esc(c.arn)}<br>Playback: ${esc(c.playbackUrl)}</p>
      <div class="row"><button id="delete" class="danger" type="button">Delete channel…</button></div></section>
  </div></div>`;
  state.cues = []; state.viewers = []; state.playing = false;

  on('#update', 'submit', async (e, f) => { await api('ivs', 'UpdateChannel', { arn, ...channelInput(f) }); f.insertAdjacentHTML('beforeend', '<span class="okmsg">Saved.</span>'); });
  on('#delete', 'click', async () => {
    if (!confirm(`Delete channel ${c.name || id}? Its stream keys go with it.`)) return;
    await api('ivs', 'DeleteChannel', { arn }); location.hash = '#/channels';
  });
  on('#stop', 'click', async () => { await api('ivs', 'StopStream', { channelArn: arn }); $('#why').textContent = 'Stop requested.'; });
  on('#meta', 'submit', async (e, f) => { await api('ivs', 'PutMetadata', { channelArn: arn, metadata: formData(f).metadata }); $('#why').textContent = 'Metadata sent: watch for the cue below.'; });

  const keys = async () => {
    const list = (await api('ivs', 'ListStreamKeys', { channelArn: arn })).streamKeys || [];
    const full = await Promise.all(list.map((k) => api('ivs', 'GetStreamKey', { arn: k.arn }).then((o) => o.streamKey)));
    state.streamKey = full[0]?.value;
    $('#keys').innerHTML = full.map((k) => `<div class="row" data-arn="${esc(k.arn)}"><code class="key" data-value="${esc(k.value)}">${'•'.repeat(12)}${esc(k.value.slice(-4))}</code>
      <button class="plain reveal" type="button">Reveal</button><button class="plain copy" type="button">Copy</button>
      ${full.length > 1 ? '<button class="danger delkey" type="button">Delete</button>' : ''}</div>`).join('') || '<p class="muted">No stream key.</p>';
    on('.reveal', 'click', (e, b) => { const k = b.parentNode.querySelector('.key'); const shown = b.textContent === 'Hide'; k.textContent = shown ? '•'.repeat(12) + k.dataset.value.slice(-4) : k.dataset.value; b.textContent = shown ? 'Reveal' : 'Hide'; }, $('#keys'));
    on('.copy', 'click', async (e, b) => { await navigator.clipboard.writeText(b.parentNode.querySelector('.key').dataset.value); b.textContent = 'Copied'; }, $('#keys'));
    on('.delkey', 'click', async (e, b) => { if (!confirm('Delete this stream key? A publisher using it is disconnected.')) return; await api('ivs', 'DeleteStreamKey', { arn: b.parentNode.dataset.arn }); await keys(); }, $('#keys'));
    ingest(full[0]?.value || '<stream key>');
  };
  const ingest = (key) => {
    const ports = state.session.ingest || {};
    const urls = Object.entries(ports).filter(([p]) => p === 'rtmps' || (p === 'rtmp' && c.insecureIngest)).map(([p, port]) => [p, `${p}://${c.ingestEndpoint}:${port}/app/`]);
    const url = (urls.find(([p]) => p === 'rtmps') || urls[0] || ['', ''])[1];
    // SRT: the stream key is the streamid, the channel's passphrase encrypts (IVS's srt member).
    const srtHost = c.srt?.endpoint ? (c.srt.endpoint.includes(':') ? c.srt.endpoint : `${c.srt.endpoint}:9000`) : '';
    const srt = ports.srt && srtHost ? `srt://${srtHost}?streamid=${key}${c.srt.passphrase ? `&passphrase=${c.srt.passphrase}` : ''}` : '';
    const whip = `${location.origin}/whip`;
    $('#ingest').innerHTML = `<dl class="stats">${urls.map(([p, u]) => `<dt>${esc(p.toUpperCase())}</dt><dd><code>${esc(u)}</code></dd>`).join('')}
      ${srt ? `<dt>SRT</dt><dd><code>${esc(srt)}</code></dd>` : ''}<dt>WHIP</dt><dd><code>${esc(whip)}</code> (bearer token: the stream key; or <a href="/player/go-live">Go live from this browser</a>)</dd></dl>
      <p>ffmpeg (a test pattern; replace the inputs with your source):</p>
      <pre>ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 \\
  -c:v libx264 -preset veryfast -tune zerolatency -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k \\
  -f flv ${esc(url)}${esc(key)}</pre>
      <p>OBS: Settings → Stream → Service “Custom…”, Server <code>${esc(url)}</code>, Stream Key: the key above. Output: keyframe interval 2 s, ${c.type === 'BASIC' ? 'up to 1.5 Mbps' : 'up to 8.5 Mbps'}.</p>`;
  };
  on('#newkey', 'click', async () => { await api('ivs', 'CreateStreamKey', { channelArn: arn }); await keys(); });
  await keys();

  // Live state, preview and metrics.
  let hls = null, streamId = null;
  const latency = [];
  const stopPlayer = () => { if (hls) { hls.destroy(); hls = null; } state.playing = false; };
  cleanup.push(stopPlayer);
  const startPlayer = (url) => {
    const video = $('#preview');
    if (c.authorized) {
      const tok = $('#token').value.trim();
      if (!tok) { $('#why').textContent = 'Private channel: the server keeps only public keys, so paste a token signed with your playback private key to preview.'; return; }
      const u = new URL(url); u.searchParams.set('token', tok); url = u.toString();
    }
    if (!window.Hls || !Hls.isSupported()) { video.src = url; return; }
    hls = new Hls({ lowLatencyMode: true, backBufferLength: 30 });
    hls.on(Hls.Events.FRAG_PARSING_METADATA, (ev, d) => {
      for (const s of d.samples || []) {
        const text = id3Text(s.data);
        if (!text) continue;
        state.cues.push(text);
        $('#cues').insertAdjacentHTML('afterbegin', `<li>${new Date().toLocaleTimeString()} cue: <code>${esc(text)}</code></li>`);
      }
    });
    hls.on(Hls.Events.ERROR, (ev, d) => { if (d.fatal) { state.errors.push('player: ' + d.details); stopPlayer(); } });
    hls.loadSource(url); hls.attachMedia(video);
    video.play().catch(() => {});
  };
  $('#preview').addEventListener('playing', () => { state.playing = true; });
  every(2000, async () => {
    let s = null;
    try { s = (await api('ivs', 'GetStream', { channelArn: arn })).stream; } catch (e) { if (e.code !== 'ChannelNotBroadcasting' && $('#why')) $('#why').textContent = e.message; }
    if (!$('#sessevents')) return; // the page was left while the call ran
    $('#state').innerHTML = badge(s ? 'LIVE' : 'OFFLINE');
    $('#stop').disabled = !s;
    state.live = !!s;
    if (s) state.viewers.push(s.viewerCount);
    $('#stats').innerHTML = s ? `<dt>State</dt><dd>${badge(s.state)}</dd><dt>Health</dt><dd>${badge(s.health)}</dd><dt>Viewers</dt><dd id="viewers">${s.viewerCount}</dd><dt>Started</dt><dd>${esc(new Date(s.startTime).toLocaleString())}</dd><dt>Stream ID</dt><dd class="mono">${esc(s.streamId)}</dd>`
      : '<dt>State</dt><dd>offline: publish to a key above</dd>';
    if (s && !hls) startPlayer(s.playbackUrl);
    if (!s && hls) stopPlayer();
    if (s) streamId = s.streamId;
    // The preview's own latency behind live (hls.js): the server keeps no per-viewer latency.
    if (hls && hls.latency > 0) latency.push([Date.now() / 1000, hls.latency]);
    while (latency.length && latency[0][0] < Date.now() / 1000 - 300) latency.shift();
    chart($('#c-latency'), latency, 'Preview latency', (v) => `${v.toFixed(2)} s`);
    if (streamId) {
      api('ivs', 'GetStreamSession', { channelArn: arn, streamId }).then((o) => {
        const ss = o.streamSession, v = ss.ingestConfiguration?.video;
        if (!$('#sessevents')) return; // the page was left
        $('#sessevents').innerHTML = (ss.truncatedEvents || []).map((e) => `<li>${esc(new Date(e.eventTime).toLocaleTimeString())} <strong>${esc(e.name)}</strong> <span class="muted">${esc(e.type)}</span></li>`).join('')
          + (v ? `<li class="muted">ingest: ${esc(v.codec || v.avcProfile || '')} ${v.videoWidth}×${v.videoHeight} ${v.targetBitrate ? `target ${Math.round(v.targetBitrate / 1000)} kbps` : ''} ${v.targetFramerate ? `@ ${v.targetFramerate} fps` : ''}</li>` : '');
      }).catch(() => {});
    }
    await metricSeries(arn).then((m) => {
      chart($('#c-views'), m.views || [], 'Concurrent views');
      chart($('#c-bitrate'), m.bitrate || [], 'Ingest video bitrate', (v) => `${(v / 1e6).toFixed(2)} Mbps`);
      chart($('#c-fps'), m.fps || [], 'Ingest frame rate', (v) => `${v.toFixed(1)} fps`);
    }).catch((e) => { state.errors.push(e.message); });
  });
}

// ---- chat ----
async function chatPage() {
  main.innerHTML = `<h1>Chat rooms</h1><section id="rooms"></section><h2>Create a room</h2>
    <section><form class="grid" id="create"><label>Name <input name="name" pattern="[a-zA-Z0-9_\\-]*"></label>
    <label>Max message length <input name="maximumMessageLength" type="number" min="1" max="500" value="500"></label>
    <label>Max messages / s <input name="maximumMessageRatePerSecond" type="number" min="1" max="100" value="10"></label>
    <label>Review handler Lambda ARN <input name="uri"></label><button type="submit">Create room</button></form></section>`;
  const load = async () => {
    const rooms = (await api('ivschat', 'ListRooms', { maxResults: 50 })).rooms || [];
    $('#rooms').innerHTML = rooms.length ? `<div class="wrap"><table><thead><tr><th>Name</th><th>ID</th><th>Review handler</th><th>Logging</th><th></th></tr></thead><tbody>${rooms.map((r) => `<tr data-arn="${esc(r.arn)}">
      <td><a href="#/chat/${esc(r.id || idOf(r.arn))}">${esc(r.name || '(no name)')}</a></td><td class="mono">${esc(r.id || idOf(r.arn))}</td><td class="mono">${esc(r.messageReviewHandler?.uri || '')}</td>
      <td>${(r.loggingConfigurationIdentifiers || []).length}</td><td><button class="danger del" type="button">Delete…</button></td></tr>`).join('')}</tbody></table></div>` : '<p class="muted">No rooms yet.</p>';
    on('.del', 'click', async (e, b) => { if (!confirm('Delete this room? Everyone in it is disconnected.')) return; await api('ivschat', 'DeleteRoom', { identifier: b.closest('tr').dataset.arn }); await load(); }, $('#rooms'));
  };
  on('#create', 'submit', async (e, f) => {
    const d = formData(f), input = { maximumMessageLength: +d.maximumMessageLength, maximumMessageRatePerSecond: +d.maximumMessageRatePerSecond };
    if (d.name) input.name = d.name;
    if (d.uri) input.messageReviewHandler = { uri: d.uri, fallbackResult: 'ALLOW' };
    const r = await api('ivschat', 'CreateRoom', input);
    location.hash = `#/chat/${r.id || idOf(r.arn)}`;
  });
  await load();
}

async function roomPage(id) {
  const room = await api('ivschat', 'GetRoom', { identifier: `arn:aws:ivschat:${state.session.region}:${state.session.account}:room/${id}` });
  state.roomArn = room.arn;
  main.innerHTML = `<h1>Room ${esc(room.name || id)} <span id="conn" class="badge">connecting</span></h1>
  <div class="cols"><section><h2>Messages (moderator view)</h2><ol class="feed" id="msgs"></ol>
    <form id="send" class="row"><input name="content" maxlength="500" required placeholder="Say something as the moderator" size="40"><button type="submit">Send</button></form></section>
  <section><h2>Settings</h2><form class="grid" id="update"><label>Name <input name="name" value="${esc(room.name)}"></label>
    <label>Max message length <input name="maximumMessageLength" type="number" value="${room.maximumMessageLength}"></label>
    <label>Max messages / s <input name="maximumMessageRatePerSecond" type="number" value="${room.maximumMessageRatePerSecond}"></label>
    <label>Review handler <input name="uri" value="${esc(room.messageReviewHandler?.uri || '')}"></label><button type="submit">Save</button></form>
    <p class="mono muted">${esc(room.arn)}<br>Logging configurations: ${esc((room.loggingConfigurationIdentifiers || []).join(', ') || 'none')}</p></section></div>`;
  state.chat = [];
  on('#update', 'submit', async (e, f) => {
    const d = formData(f);
    await api('ivschat', 'UpdateRoom', { identifier: room.arn, name: d.name, maximumMessageLength: +d.maximumMessageLength, maximumMessageRatePerSecond: +d.maximumMessageRatePerSecond, messageReviewHandler: { uri: d.uri } });
    f.insertAdjacentHTML('beforeend', '<span class="okmsg">Saved.</span>');
  });
  const tok = await api('ivschat', 'CreateChatToken', { roomIdentifier: room.arn, userId: `console-${state.session.accessKeyId}`, capabilities: ['SEND_MESSAGE', 'DELETE_MESSAGE', 'DISCONNECT_USER'], sessionDurationInMinutes: 60 });
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/chat`, tok.token);
  cleanup.push(() => ws.close());
  ws.onopen = () => { $('#conn').textContent = 'connected'; $('#conn').className = 'badge LIVE'; state.chatConnected = true; };
  ws.onclose = () => { const b = $('#conn'); if (b) { b.textContent = 'disconnected'; b.className = 'badge OFFLINE'; } state.chatConnected = false; };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.Type === 'MESSAGE') {
      state.chat.push({ id: m.Id, content: m.Content, user: m.Sender?.UserId });
      $('#msgs').insertAdjacentHTML('beforeend', `<li data-id="${esc(m.Id)}" data-user="${esc(m.Sender?.UserId)}"><strong>${esc(m.Sender?.UserId)}</strong>: <span class="content">${esc(m.Content)}</span>
        <button class="plain delmsg" type="button">Delete</button> <button class="danger kick" type="button">Disconnect user</button></li>`);
      const li = $('#msgs').lastElementChild;
      on('.delmsg', 'click', () => api('ivschat', 'DeleteMessage', { roomIdentifier: room.arn, id: m.Id, reason: 'removed by a moderator' }), li);
      on('.kick', 'click', () => api('ivschat', 'DisconnectUser', { roomIdentifier: room.arn, userId: m.Sender?.UserId, reason: 'disconnected by a moderator' }), li);
    } else if (m.Type === 'EVENT' && m.EventName === 'aws:DELETE_MESSAGE') {
      const li = $(`#msgs li[data-id="${CSS.escape(m.Attributes?.MessageID || '')}"]`);
      if (li) li.classList.add('deleted');
      state.chat = state.chat.filter((x) => x.id !== m.Attributes?.MessageID);
    } else if (m.Type === 'EVENT' && m.EventName === 'aws:DISCONNECT_USER') {
      $('#msgs').insertAdjacentHTML('beforeend', `<li class="muted">${esc(m.Attributes?.UserId)} was disconnected</li>`);
    } else if (m.Type === 'ERROR') {
      $('#msgs').insertAdjacentHTML('beforeend', `<li class="err">${esc(m.ErrorMessage)}</li>`);
    }
  };
  on('#send', 'submit', async (e, f) => { ws.send(JSON.stringify({ Action: 'SEND_MESSAGE', RequestId: crypto.randomUUID(), Content: formData(f).content })); f.reset(); });
}

// ---- events ----
async function eventsPage() {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const types = ['IVS Stream State Change', 'IVS Stream Health Change', 'IVS Recording State Change', 'IVS Limit Breach'];
  main.innerHTML = `<h1>Events</h1><form id="filter" class="row"><label>Type <select name="type"><option value="">all</option>${types.map((t) => `<option ${q.get('type') === t ? 'selected' : ''}>${t}</option>`).join('')}</select></label>
    <label>Channel ID <input name="channel" value="${esc(q.get('channel'))}" size="16"></label><button type="submit">Filter</button> <span id="feedstate" class="badge">connecting</span></form>
    <p class="muted">The EventBridge-shaped events of the last hour, then live (what <code>glasscast events tail</code> and webhooks receive).</p>
    <ol class="feed" id="events" style="max-height:none"></ol><h2>Webhooks</h2><div id="hooks" class="wrap"></div>`;
  state.events = [];
  const hooks = async () => {
    const { webhooks } = await getJSON('/console/webhooks');
    state.webhooks = webhooks;
    const el = $('#hooks');
    if (el) el.innerHTML = webhooks.length ? `<table><thead><tr><th>URL</th><th>Filters</th><th>State</th><th>Delivered</th><th>Pending</th><th>Unanswered</th><th>Last sent</th></tr></thead><tbody>${webhooks.map((w) => `<tr><td class="mono">${esc(w.url)}</td>
      <td>${esc([...(w.detailTypes || []), ...(w.channels || [])].join(', ') || 'all')}</td><td>${badge(w.state)}</td><td>${w.delivered}</td><td>${w.pending}</td><td>${w.unacked}${w.redelivered ? ` (${w.redelivered} retrying)` : ''}</td>
      <td>${w.lastSent ? esc(new Date(w.lastSent).toLocaleString()) : ''}</td></tr>`).join('')}</tbody></table>` : '<p class="muted">No webhooks configured (<code>--events-webhooks</code>).</p>';
  };
  every(5000, () => hooks().catch((e) => { const el = $('#hooks'); if (el) el.innerHTML = `<div class="err">${esc(e.message)}</div>`; }));
  on('#filter', 'submit', async (e, f) => { const d = formData(f); location.hash = `#/events?${new URLSearchParams(Object.entries(d).filter(([, v]) => v))}`; });
  const src = new EventSource(`/console/events?${new URLSearchParams({ type: q.get('type') || '', channel: q.get('channel') || '', since: '1h' })}`);
  cleanup.push(() => src.close());
  src.onopen = () => { $('#feedstate').textContent = 'live'; $('#feedstate').className = 'badge LIVE'; };
  src.onerror = () => { const b = $('#feedstate'); if (b) { b.textContent = 'reconnecting'; b.className = 'badge STARVING'; } };
  src.addEventListener('failure', (ev) => $('#events').insertAdjacentHTML('afterbegin', `<li class="err">${esc(JSON.parse(ev.data).message)}</li>`));
  src.onmessage = (ev) => {
    const e = JSON.parse(ev.data), d = e.detail || {};
    state.events.push(e);
    $('#events').insertAdjacentHTML('afterbegin', `<li><span class="muted">${esc(new Date(e.time).toLocaleString())}</span> <strong>${esc(d.event_name || d.recording_status || d.limit_name || '')}</strong>
      ${esc(e['detail-type'])} · <a href="#/channels/${esc(idOf((e.resources || [''])[0]))}">${esc(d.channel_name || idOf((e.resources || [''])[0]))}</a> <span class="mono muted">${esc(d.stream_id || '')}</span></li>`);
  };
}

// ---- recordings ----
async function getJSON(url) {
  busy(1);
  try {
    const r = await fetch(url, { credentials: 'same-origin' });
    const out = await r.json();
    if (!r.ok) throw new Error(`${r.headers.get('x-amzn-ErrorType') || r.status}: ${out.message}`);
    return out;
  } finally { busy(-1); }
}
const fmtDur = (ms) => ms == null ? 'recording…' : `${Math.floor(ms / 60000)}:${String(Math.round(ms / 1000) % 60).padStart(2, '0')}`;

async function recordingsPage() {
  main.innerHTML = `<h1>Recordings</h1><div class="cols"><section><h2>By channel</h2><div id="byChannel"><p class="muted">Loading…</p></div></section>
    <section><h2>Player</h2><video id="vod" controls playsinline muted></video><p id="vodinfo" class="muted">Pick a recording.</p></section></div>
  <h2>Recording configurations</h2><section id="recs"></section><h2>Create a recording configuration</h2>
  <section><form class="grid" id="create"><label>Name <input name="name"></label><label>S3 bucket <input name="bucketName" required></label>
    <label>Thumbnails <select name="recordingMode"><option>INTERVAL</option><option>DISABLED</option></select></label>
    <label>Thumbnail interval (s) <input name="interval" type="number" value="60" min="1" max="60"></label><button type="submit">Create</button></form>
  <p class="muted">Channels record when their settings name a configuration. From a terminal: <code>glasscast recordings list --bucket NAME --channel-id ID</code>.</p></section>`;
  state.recordings = []; state.vodPlaying = false;
  let hls = null;
  cleanup.push(() => hls && hls.destroy());
  $('#vod').addEventListener('playing', () => { state.vodPlaying = true; });
  const play = (rec) => {
    if (hls) hls.destroy();
    state.vodPlaying = false;
    hls = new Hls(); hls.loadSource(rec.master); hls.attachMedia($('#vod'));
    hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) $('#vodinfo').textContent = `Player error: ${d.details}`; });
    $('#vod').play().catch(() => {});
    $('#vodinfo').innerHTML = `<span class="mono">${esc(rec.prefix)}</span> · ${esc(rec.status)} · ${fmtDur(rec.durationMs)}`;
  };
  const load = async () => {
    const [recs, chans] = await Promise.all([api('ivs', 'ListRecordingConfigurations'), api('ivs', 'ListChannels', { maxResults: 100 })]);
    const byArn = Object.fromEntries((recs.recordingConfigurations || []).map((r) => [r.arn, r]));
    $('#recs').innerHTML = recs.recordingConfigurations?.length ? `<div class="wrap"><table><thead><tr><th>Name</th><th>Bucket</th><th>State</th><th>ARN</th><th></th></tr></thead><tbody>${recs.recordingConfigurations.map((r) => `<tr data-arn="${esc(r.arn)}"><td>${esc(r.name)}</td>
      <td>${esc(r.destinationConfiguration?.s3?.bucketName)}</td><td>${badge(r.state)}</td><td class="mono">${esc(r.arn)}</td><td><button class="danger del" type="button">Delete…</button></td></tr>`).join('')}</tbody></table></div>` : '<p class="muted">No recording configurations.</p>';
    on('.del', 'click', async (e, b) => { if (!confirm('Delete this recording configuration?')) return; await api('ivs', 'DeleteRecordingConfiguration', { arn: b.closest('tr').dataset.arn }); await load(); }, $('#recs'));
    const recording = (chans.channels || []).filter((c) => byArn[c.recordingConfigurationArn]);
    if (!recording.length) { $('#byChannel').innerHTML = '<p class="muted">No channel records: pick a recording configuration in a channel\'s settings.</p>'; return; }
    const lists = await Promise.all(recording.map(async (c) => {
      const bucket = byArn[c.recordingConfigurationArn].destinationConfiguration.s3.bucketName;
      try { return [c, bucket, (await getJSON(`/console/recordings?${new URLSearchParams({ bucket, channel: idOf(c.arn) })}`)).recordings]; } catch (e) { return [c, bucket, e]; }
    }));
    state.recordings = lists.flatMap(([, , l]) => Array.isArray(l) ? l : []);
    $('#byChannel').innerHTML = lists.map(([c, bucket, l]) => `<h3>${esc(c.name || idOf(c.arn))} <span class="muted">→ ${esc(bucket)}</span></h3>` + (l instanceof Error ? `<div class="err">${esc(l.message)}</div>`
      : l.length ? `<div class="wrap"><table><tbody>${l.map((r, i) => `<tr><td>${r.thumbnail ? `<img class="thumb" alt="" src="${esc(r.thumbnail)}">` : ''}</td><td>${esc(new Date(r.startedAt).toLocaleString())}<br>${badge(r.status)} ${fmtDur(r.durationMs)}</td>
        <td><button class="plain play" type="button" data-prefix="${esc(r.prefix)}">Play</button></td></tr>`).join('')}</tbody></table></div>` : '<p class="muted">No recordings yet.</p>')).join('');
    on('.play', 'click', (e, b) => play(state.recordings.find((r) => r.prefix === b.dataset.prefix)), $('#byChannel'));
  };
  on('#create', 'submit', async (e, f) => {
    const d = formData(f);
    await api('ivs', 'CreateRecordingConfiguration', { name: d.name || undefined, destinationConfiguration: { s3: { bucketName: d.bucketName } },
      thumbnailConfiguration: { recordingMode: d.recordingMode, targetIntervalSeconds: +d.interval } });
    f.reset(); await load();
  });
  await load();
  state.reloadRecordings = load;
}

// ---- playback key pairs ----
async function keysPage() {
  main.innerHTML = `<h1>Playback key pairs</h1><section id="pairs"></section><h2>Import a public key</h2>
  <section><form id="import"><label>Name <input name="name"></label><label>Public key (PEM, ECDSA P-384) <textarea name="publicKeyMaterial" required placeholder="-----BEGIN PUBLIC KEY-----"></textarea></label>
  <div class="row"><button type="submit">Import</button></div></form>
  <h2>How to sign playback tokens</h2><pre>openssl ecparam -name secp384r1 -genkey -noout -out private.pem
openssl ec -in private.pem -pubout -out public.pem     # import public.pem above
# A token is an ES384 JWT signed with private.pem, claims:
#   {"aws:channel-arn": "&lt;channel ARN&gt;", "aws:access-control-allow-origin": "*", "exp": &lt;unix time&gt;}
# Play with  &lt;playback URL&gt;?token=&lt;JWT&gt;  on channels marked private.</pre></section>`;
  const load = async () => {
    const pairs = (await api('ivs', 'ListPlaybackKeyPairs')).keyPairs || [];
    $('#pairs').innerHTML = pairs.length ? `<div class="wrap"><table><thead><tr><th>Name</th><th>ARN</th><th></th></tr></thead><tbody>${pairs.map((p) => `<tr data-arn="${esc(p.arn)}"><td>${esc(p.name)}</td><td class="mono">${esc(p.arn)}</td>
      <td><button class="danger del" type="button">Delete…</button></td></tr>`).join('')}</tbody></table></div>` : '<p class="muted">No key pairs: private channels cannot be played until one is imported.</p>';
    on('.del', 'click', async (e, b) => { if (!confirm('Delete this key pair? Tokens it signed stop working.')) return; await api('ivs', 'DeletePlaybackKeyPair', { arn: b.closest('tr').dataset.arn }); await load(); }, $('#pairs'));
  };
  on('#import', 'submit', async (e, f) => { const d = formData(f); await api('ivs', 'ImportPlaybackKeyPair', { name: d.name || undefined, publicKeyMaterial: d.publicKeyMaterial }); f.reset(); await load(); });
  await load();
}

// ---- router ----
async function route() {
  cleanup.forEach((f) => f()); cleanup = [];
  if (!state.session) return signInPage();
  $('#top').hidden = false;
  $('#who').textContent = state.session.accessKeyId;
  const [, page, id] = (location.hash || '#/channels').split('?')[0].split('/');
  document.querySelectorAll('header nav a').forEach((a) => a.classList.toggle('on', a.getAttribute('href') === `#/${page}`));
  main.innerHTML = '<p class="muted">Loading…</p>';
  try {
    if (page === 'channels' && id) await channelPage(id);
    else if (page === 'chat' && id) await roomPage(id);
    else if (page === 'chat') await chatPage();
    else if (page.startsWith('events')) await eventsPage();
    else if (page === 'recordings') await recordingsPage();
    else if (page === 'keys') await keysPage();
    else await channelsPage();
    state.page = page + (id ? '/' + id : '');
  } catch (e) {
    main.innerHTML = `<div class="err" role="alert">${esc(e.message)}</div>`;
  }
  main.focus();
}
window.addEventListener('hashchange', route);
await loadSession();
route();

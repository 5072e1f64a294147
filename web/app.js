// SPDX-License-Identifier: MIT
// app.js: every page of the UI after login. The page is chosen by the path
// (/overview, /routes, ...); data comes from the JSON API under /api/.
// Everything shown that came from the box or the cluster is untrusted text:
// it is put into the page only with textContent (the el() helper), never
// as HTML. Changes are POSTs with the session's CSRF token. Charts are
// drawn by hand on canvas. No external assets.
'use strict';

const state = { csrf: '', timer: null, page: '', idleMs: 1800000, lastActivity: Date.now() };

// Pages poll the API, and every request keeps the session alive: so that
// an unattended tab still logs out after the idle timeout, polling stops
// when the person has not touched the page for that long.
for (const ev of ['pointerdown', 'keydown', 'wheel', 'touchstart'])
  addEventListener(ev, () => { state.lastActivity = Date.now(); }, { passive: true });
function idleTooLong() {
  return Date.now() - state.lastActivity > state.idleMs - Math.min(10000, state.idleMs / 10);
}

// ---------- helpers ----------

// el('td', {class: 'num'}, 'text', child...): children are strings (added as
// text nodes) or nodes. Attributes are set with setAttribute; only fixed
// names from this file are used, never names from data.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'on') { for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn); continue; }
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function badge(text, kind) { return el('span', { class: 'badge ' + (kind || '') }, text); }
function fmtTime(ms) { return ms ? new Date(Number(ms)).toLocaleString() : 'never'; }
function fmtAgo(ms) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Number(ms)) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}
function fmtDur(s) {
  s = Number(s) || 0;
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm';
}
function fmtBytes(n) {
  n = Number(n) || 0;
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}
function fmtRate(x) { return x < 10 ? x.toFixed(1) : String(Math.round(x)); }
function fmtShare(x) { return (x * 100).toFixed(x < 0.1 ? 1 : 0) + ' %'; }
// A route's traffic: requests per second and error share over the UI's
// last window (null until one has closed), and the total. An L4 route's
// requests are connections (TCP, TLS) or sessions (UDP).
function trafficCell(t, kind) {
  if (!t) return el('span', { class: 'muted' }, '—');
  const [rate, total] = kind === 'UDPRoute' ? ['sess/s', 'sessions'] :
    kind === 'TCPRoute' || kind === 'TLSRoute' ? ['conn/s', 'connections'] : ['req/s', 'requests'];
  return el('div', { class: 'traffic' },
    el('div', { class: 'rps' }, t.rps === null ? '… ' + rate : fmtRate(t.rps) + ' ' + rate),
    t.error_share === null ? null : el('div', { class: 'small errors ' + (t.error_share > 0.05 ? 'error' : 'muted') },
      fmtShare(t.error_share) + ' errors'),
    el('div', { class: 'muted small total' }, t.requests + ' ' + total));
}
function kv(pairs) {
  const dl = el('dl', { class: 'kv' });
  for (const [k, v] of pairs) dl.append(el('dt', null, k), el('dd', null, v));
  return dl;
}
// On a phone each row becomes a card: every cell carries its column's name
// (data-label, shown by the stylesheet).
function table(headers, rows) {
  const names = headers.map((h) => h.t || h);
  for (const tr of rows) [...tr.children].forEach((td, i) => td.setAttribute('data-label', names[i] || ''));
  const t = el('table', { class: 'cards-on-phone' },
    el('thead', null, el('tr', null, headers.map((h) => el('th', h.num ? { class: 'num' } : null, h.t || h)))),
    el('tbody', null, rows));
  return el('div', { class: 'table-wrap' }, t);
}
function condBadges(conds) {
  if (!conds || !conds.length) return el('span', { class: 'muted' }, '—');
  return el('span', null, conds.map((c) => {
    const good = (c.status === 'True') !== (c.type === 'Conflicted' || c.type === 'Degraded');
    const b = badge(c.type + (c.reason ? ': ' + c.reason : ''), good ? 'ok' : 'bad');
    if (c.message) b.title = c.message;
    return [b, ' '];
  }));
}
function setStatus(text, bad) {
  const s = document.getElementById('status');
  s.textContent = text || '';
  s.className = bad ? 'error' : 'muted';
}

async function api(path, body) {
  const opts = { credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.headers['X-CSRF-Token'] = state.csrf;
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  if (res.status === 401) {
    location.assign('/login?next=' + encodeURIComponent(location.pathname));
    throw new Error('session ended');
  }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw new Error((data && data.error) || ('HTTP ' + res.status));
  return data;
}

function refreshEvery(ms, fn) {
  clearInterval(state.timer);
  const run = async () => {
    try { await fn(); setStatus(''); } catch (e) { setStatus(e.message, true); }
  };
  run();
  state.timer = setInterval(() => {
    if (idleTooLong()) {
      clearInterval(state.timer);
      location.assign('/login?idle=1');
    } else if (!document.hidden) {
      run();
    }
  }, ms);
}

function page() { return document.getElementById('page'); }
function render(...nodes) { page().replaceChildren(...nodes); }

// ---------- charts (canvas, hand-written) ----------

// series: [{label, color, values: [numbers]}]; xs: timestamps (ms).
function lineChart(canvas, xs, series, unit) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, h = canvas.clientHeight || 180;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const g = canvas.getContext('2d');
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const padL = 48, padR = 8, padT = 8, padB = 20;
  let max = 0;
  for (const s of series) for (const v of s.values) max = Math.max(max, v);
  if (max <= 0) max = 1;
  const mag = Math.pow(10, Math.floor(Math.log10(max)));
  max = Math.ceil(max / mag) * mag;
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#5d6773';
  g.strokeStyle = '#e5e8eb';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = padT + (h - padT - padB) * (1 - i / 4);
    g.beginPath(); g.moveTo(padL, y); g.lineTo(w - padR, y); g.stroke();
    const v = max * i / 4;
    g.fillText((v >= 100 ? Math.round(v) : +v.toFixed(2)) + (unit || ''), 4, y + 4);
  }
  const n = xs.length;
  if (n > 1) {
    g.fillText(new Date(xs[0]).toLocaleTimeString(), padL, h - 5);
    const last = new Date(xs[n - 1]).toLocaleTimeString();
    g.fillText(last, w - padR - g.measureText(last).width, h - 5);
  } else {
    g.fillText('no data yet', padL + 10, padT + 20);
  }
  for (const s of series) {
    if (n < 2) break;
    g.strokeStyle = s.color;
    g.lineWidth = 1.8;
    g.beginPath();
    s.values.forEach((v, i) => {
      const x = padL + (w - padL - padR) * i / (n - 1);
      const y = padT + (h - padT - padB) * (1 - v / max);
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  }
}

function chartCard(title, series) {
  const c = el('canvas', { class: 'chart', role: 'img', 'aria-label': title });
  const legend = el('div', { class: 'legend' }, series.map((s) => {
    const sp = el('span', null, s.label);
    sp.style.setProperty('--c', s.color);
    return sp;
  }));
  return { node: el('div', { class: 'card' }, el('h2', null, title), c, legend), canvas: c };
}

// ---------- pages ----------

async function pageOverview() {
  refreshEvery(2000, async () => {
    const o = await api('/api/overview');
    const c = o.cluster, s = o.serving, st = o.store, b = o.box, t = o.traffic || {};
    const conn = c.mode === 'local' ? badge('local mode', 'ok')
      : c.connected ? badge('connected', 'ok') : badge('not connected', 'bad');
    const ws = c.watches || [];
    const stateKind = { watching: 'ok', listing: 'warn', waiting: 'warn', backoff: 'bad', absent: '' };
    const watches = ws.length ? el('div', { class: 'card wide', id: 'card-watches' },
      el('h2', null, 'Watches', c.watches_total > ws.length ? el('span', { class: 'muted small' },
        ' (' + ws.length + ' of ' + c.watches_total + ')') : null),
      table(['Resource', 'State', 'Last event', 'Version', { t: 'Lists', num: 1 }, { t: 'Relists', num: 1 },
        { t: 'Events', num: 1 }, { t: 'Errors', num: 1 }],
      ws.map((w) => el('tr', { class: 'watch', 'data-resource': w.resource + (w.namespace ? '/' + w.namespace : '') },
        el('td', null, w.resource, w.namespace ? el('span', { class: 'muted' }, ' in ' + w.namespace) : null),
        el('td', null, badge(w.state === 'watching' && !w.up ? 'connecting' : w.state, stateKind[w.state]),
          w.synced ? null : [' ', badge('not listed yet', 'warn')]),
        el('td', null, fmtAgo(w.last_event_ms)),
        el('td', { class: 'mono' }, w.resource_version || '—'),
        el('td', { class: 'num' }, String(w.lists)),
        el('td', { class: 'num' }, String(w.relists)),
        el('td', { class: 'num' }, String(w.events)),
        el('td', { class: 'num' }, String(w.errors),
          w.last_error ? el('div', { class: 'error small' }, w.last_error) : null))))) : null;
    render(el('div', { class: 'cards' },
      el('div', { class: 'card', id: 'card-cluster' }, el('h2', null, 'Cluster'), kv([
        ['State', conn],
        ['Mode', c.mode],
        c.mode === 'cluster' ? ['Server', c.server || '—'] : ['Config', c.config_path || '—'],
        c.mode === 'cluster' ? ['Context', c.context || '—'] : null,
        ['Last sync', fmtAgo(c.last_sync_ms)],
        c.insecure ? ['TLS', badge('API server not verified', 'bad')] : null,
        c.last_error ? ['Last error', el('span', { class: 'error' }, c.last_error)] : null,
      ].filter(Boolean))),
      el('div', { class: 'card', id: 'card-serving' }, el('h2', null, 'Serving'), kv([
        ['Revision', el('span', null, String(s.revision || '—'), ' ',
          s.pinned ? badge('pinned', 'warn') : badge('newest', 'ok'))],
        ['Compiled', fmtTime(s.compiled_ms)],
        ['Listeners', String(s.listeners)],
        ['Route rules', String(s.rules)],
        ['Stored revisions', String(st.revisions)],
        ['Store size', fmtBytes(st.db_bytes)],
        st.recovery_note ? ['Store', el('span', { class: 'error' }, st.recovery_note)] : null,
      ].filter(Boolean))),
      el('div', { class: 'card', id: 'card-traffic' }, el('h2', null, 'Traffic now'), kv([
        ['Requests/s', String(t.rps ?? 0)],
        ['p99 latency', (t.p99_ms ?? 0) + ' ms'],
        ['Connections', String(t.active ?? 0)],
      ])),
      el('div', { class: 'card', id: 'card-box' }, el('h2', null, 'Box'), kv([
        ['Host', b.hostname],
        ['Version', b.version || '—'],
        ['Board', b.board || '—'],
        ['System', (b.arch || '') + ' · Linux ' + (b.kernel || '')],
        ['Uptime', fmtDur(b.uptime_s)],
        ['CPU', (b.cpu_percent >= 0 ? b.cpu_percent + ' % of ' : '') + b.cpus + ' cores · load ' +
          (b.load || []).map((x) => x.toFixed(2)).join(' ')],
        ['Memory', fmtBytes(b.mem_available_kb * 1024) + ' free of ' + fmtBytes(b.mem_total_kb * 1024)],
      ])), watches));
  });
}

async function pageGateways() {
  refreshEvery(5000, async () => {
    const d = await api('/api/gateways');
    if (!d.gateways.length) { render(el('p', { class: 'muted' }, 'No Gateway is served.')); return; }
    render(...d.gateways.map((g) => el('section', { class: 'gateway' },
      el('h2', null, g.name, ' ', g.conditions && g.conditions.length ? condBadges(g.conditions) : null),
      g.addresses && g.addresses.length ? el('p', null, 'Addresses: ', g.addresses.join(', ')) : null,
      table(['Listener', 'Protocol', 'Hostname', 'Bound', 'TLS', 'Certificates', { t: 'Rules', num: 1 }, 'Conditions'],
        g.listeners.map((l) => el('tr', null,
          el('td', null, l.name),
          el('td', null, l.protocol),
          el('td', null, l.hostname || '*'),
          el('td', { class: 'mono' }, (l.address.includes(':') ? '[' + l.address + ']' : l.address) + ':' + l.port),
          el('td', null, l.tls_mode || '—'),
          el('td', null, l.certificates.length ? l.certificates.map((c) => {
            const days = c.not_after ? Math.floor((c.not_after * 1000 - Date.now()) / 86400000) : null;
            return el('div', null, c.name, ' ', days === null ? '' :
              badge(days < 0 ? 'expired' : 'expires in ' + days + ' d', days < 14 ? 'bad' : days < 30 ? 'warn' : 'ok'));
          }) : '—'),
          el('td', { class: 'num' }, String(l.rules)),
          el('td', null, condBadges(l.conditions))))))));
  });
}

function matchText(m) {
  let s = (m.method ? m.method + ' ' : '') + (m.path_type === 'Exact' ? '= ' : m.path_type === 'RegularExpression' ? '~ ' : '') + (m.path || '/');
  for (const h of m.headers || []) s += ' [' + h.name + (h.type === 'Exact' ? '=' : '~') + h.value + ']';
  for (const q of m.query || []) s += ' ?' + q.name + '=' + q.value;
  return s;
}

async function pageRoutes() {
  const filter = el('input', { id: 'route-filter', type: 'search', placeholder: 'Filter by route, hostname or backend' });
  const list = el('div');
  render(filter, el('p'), list);
  let last = null;
  const matches = (r, q) => !q || [r.name, ...(r.hostnames || []),
    ...(r.rules || []).flatMap((x) => (x.backends || []).map((b) => b.name))].some((t) => t.toLowerCase().includes(q));
  const draw = () => {
    if (!last) return;
    const q = filter.value.trim().toLowerCase();
    const routes = last.routes.filter((r) => matches(r, q));
    if (!last.routes.length) { list.replaceChildren(el('p', { class: 'muted' }, 'No route is served.')); return; }
    // replaceChildren() would show a null as the text "null": filter it out
    list.replaceChildren(...[table(['Route', 'Hostnames', 'Matches → backends', 'Parents', { t: 'Traffic', num: 1 }, 'Status'],
      routes.map((r) => el('tr', { class: 'route', 'data-route': r.name },
        el('td', null, el('strong', { class: 'route-name' }, r.name), el('div', { class: 'muted small' }, r.kind)),
        el('td', null, (r.hostnames || []).length ? r.hostnames.map((h) => el('div', null, h)) : '*'),
        el('td', null, (r.rules || []).map((rule) => el('div', { class: 'rule' },
          rule.name ? el('div', { class: 'muted small' }, 'rule ' + rule.name) : null,
          (rule.matches || []).map((m) => el('div', { class: 'mono' }, matchText(m))),
          (rule.filters || []).length ? el('div', { class: 'muted small' }, 'filters: ' + rule.filters.join(', ')) : null,
          el('div', { class: 'small' }, '→ ', (rule.backends || []).length ? rule.backends.map((b, i) =>
            [i ? ', ' : '', b.name, el('span', { class: 'muted' }, ' w' + b.weight),
              b.invalid_status ? badge('invalid', 'bad') : b.endpoints ? null : badge('no endpoints', 'warn')]) :
            el('span', { class: 'muted' }, 'none'))))),
        el('td', null, (r.parents || []).map((p) => el('div', null, p.gateway + ' / ' + p.listener))),
        el('td', { class: 'num' }, trafficCell(r.traffic, r.kind)),
        el('td', null, (r.status || []).map((s) => el('div', null, condBadges(s.conditions))))))),
      routes.length < last.routes.length ? el('p', { class: 'muted' }, routes.length + ' of ' + last.routes.length + ' routes') : null]
      .filter(Boolean));
  };
  filter.addEventListener('input', draw);
  refreshEvery(1000, async () => {
    last = await api('/api/routes');
    draw();
  });
}

async function pageBackends() {
  refreshEvery(3000, async () => {
    const d = await api('/api/backends');
    if (!d.backends.length) { render(el('p', { class: 'muted' }, 'No backend is referenced.')); return; }
    render(table(['Backend', 'Protocol', 'Health', 'Endpoints', 'Used by'],
      d.backends.map((b) => el('tr', null,
        el('td', null, b.name),
        el('td', null, b.protocol, b.tls ? [' ', badge('TLS', 'ok')] : null),
        el('td', null, badge(b.health, b.health === 'ready' ? 'ok' : 'bad')),
        el('td', { class: 'mono' }, b.endpoints.length ? b.endpoints.map((e) =>
          el('div', null, (e.address.includes(':') ? '[' + e.address + ']' : e.address) + ':' + e.port)) : '—'),
        el('td', null, b.routes.map((r) => el('div', null, r)))))));
  });
}

async function pageTraffic() {
  const rps = chartCard('Requests per second', [{ label: 'requests/s', color: '#1f6feb' }]);
  const lat = chartCard('Latency', [{ label: 'p50', color: '#1a7f37' }, { label: 'p99', color: '#cf222e' }]);
  const codes = chartCard('Responses by status', [
    { label: '2xx', color: '#1a7f37' }, { label: '3xx', color: '#8250df' },
    { label: '4xx', color: '#9a6700' }, { label: '5xx', color: '#cf222e' }]);
  const hist = chartCard('Last hour (per minute)', [{ label: 'requests', color: '#1f6feb' }, { label: 'errors', color: '#cf222e' }]);
  const totals = el('div', { class: 'card' });
  render(el('div', { class: 'cards' }, rps.node, lat.node, codes.node, hist.node, totals));
  refreshEvery(1000, async () => {
    const d = await api('/api/traffic?minutes=60');
    const s = d.samples, xs = s.map((x) => x.t);
    lineChart(rps.canvas, xs, [{ color: '#1f6feb', values: s.map((x) => x.rps) }]);
    lineChart(lat.canvas, xs, [{ color: '#1a7f37', values: s.map((x) => x.p50_ms) },
      { color: '#cf222e', values: s.map((x) => x.p99_ms) }], ' ms');
    lineChart(codes.canvas, xs, [2, 3, 4, 5].map((c, i) => ({
      color: ['#1a7f37', '#8250df', '#9a6700', '#cf222e'][i], values: s.map((x) => x.by_class[c]) })));
    const h = d.history;
    lineChart(hist.canvas, h.map((x) => x.minute * 60000), [
      { color: '#1f6feb', values: h.map((x) => x.requests) }, { color: '#cf222e', values: h.map((x) => x.errors) }]);
    const t = d.totals;
    totals.replaceChildren(el('h2', null, 'Since start'), kv([
      ['Requests', String(t.requests)],
      ['2xx / 3xx / 4xx / 5xx', [2, 3, 4, 5].map((c) => t.responses_by_class[c]).join(' / ')],
      ['Upstream errors', String(t.upstream_errors)],
      ['Latency p50 / p99', t.p50_ms + ' / ' + t.p99_ms + ' ms'],
      ['Bytes in / out', fmtBytes(t.bytes_in) + ' / ' + fmtBytes(t.bytes_out)],
      ['Connections open / total', t.active_connections + ' / ' + t.total_connections],
    ]));
  });
}

// Line diff (LCS) of two texts, for one object between two revisions.
function lineDiff(a, b) {
  const x = a ? a.split('\n') : [], y = b ? b.split('\n') : [];
  if (x.length * y.length > 4e6) return [{ t: ' ', s: 'too large to compare here' }];
  const n = x.length, m = y.length, L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push({ t: ' ', s: x[i] }); i++; j++; }
    else if (L[i + 1][j] >= L[i][j + 1]) out.push({ t: '-', s: x[i++] });
    else out.push({ t: '+', s: y[j++] });
  }
  while (i < n) out.push({ t: '-', s: x[i++] });
  while (j < m) out.push({ t: '+', s: y[j++] });
  return out;
}

async function showObjectDiff(box, from, to, ch) {
  const q = (rev) => '/api/object?rev=' + rev + '&kind=' + encodeURIComponent(ch.kind) +
    '&namespace=' + encodeURIComponent(ch.namespace) + '&name=' + encodeURIComponent(ch.name);
  let a = '', b = '';
  try { if (ch.change !== 'added') a = (await api(q(from))).text; } catch (e) { a = ''; }
  try { if (ch.change !== 'removed') b = (await api(q(to))).text; } catch (e) { b = ''; }
  const pre = el('pre', { class: 'diff' }, lineDiff(a, b).map((l) =>
    el('span', { class: l.t === '+' ? 'diff-add' : l.t === '-' ? 'diff-del' : null }, l.t + ' ' + l.s)));
  box.replaceChildren(el('h2', null, ch.kind + ' ' + (ch.namespace ? ch.namespace + '/' : '') + ch.name +
    ' (r' + from + ' → r' + to + ')'), pre);
}

async function pageRevisions() {
  const msg = el('p', { class: 'msg', id: 'rev-msg', role: 'status' });
  const diffBox = el('div', { id: 'diff' });
  const list = el('div');
  render(msg, list, diffBox);
  const load = async () => {
    const d = await api('/api/revisions?limit=100');
    const revs = d.revisions;
    const pinAction = async (rev) => {
      msg.className = 'msg';
      msg.textContent = rev ? 'Pinning r' + rev + '…' : 'Unpinning…';
      try {
        const r = rev ? await api('/api/pin', { revision: rev }) : await api('/api/unpin', {});
        msg.className = 'msg ok';
        msg.textContent = r.message;
      } catch (e) { msg.className = 'msg bad'; msg.textContent = e.message; }
      await load();
    };
    const diffAction = async (from, to) => {
      diffBox.replaceChildren(el('p', { class: 'muted' }, 'Comparing…'));
      try {
        const df = await api('/api/diff?from=' + from + '&to=' + to);
        const objBox = el('div');
        diffBox.replaceChildren(el('h2', null, 'Changes from r' + from + ' to r' + to),
          df.changes.length ? table(['Change', 'Kind', 'Object'], df.changes.map((c) => el('tr', null,
            el('td', null, badge(c.change, c.change === 'added' ? 'ok' : c.change === 'removed' ? 'bad' : 'warn')),
            el('td', null, c.kind),
            el('td', null, c.kind === 'Secret' ? (c.namespace ? c.namespace + '/' : '') + c.name :
              el('a', { href: '#', on: { click: (ev) => { ev.preventDefault(); showObjectDiff(objBox, from, to, c); } } },
                (c.namespace ? c.namespace + '/' : '') + c.name))))) :
            el('p', { class: 'muted' }, 'No object differs.'), objBox);
      } catch (e) { diffBox.replaceChildren(el('p', { class: 'error' }, e.message)); }
    };
    list.replaceChildren(
      d.pinned ? el('p', null, badge('pinned', 'warn'), ' Revision ' + d.pinned + ' is pinned: changes from the cluster are stored but not served. ',
        el('button', { class: 'secondary', id: 'unpin', on: { click: () => pinAction(0) } }, 'Unpin (serve newest)')) :
        el('p', { class: 'muted' }, 'The newest revision is served.'),
      table([{ t: 'Rev', num: 1 }, 'When', 'Source', 'Summary', { t: 'Objects', num: 1 }, 'State', ''],
        revs.map((r, i) => el('tr', { class: 'revision', 'data-rev': r.revision },
          el('td', { class: 'num' }, String(r.revision)),
          el('td', null, fmtTime(r.time_ms)),
          el('td', null, r.source + (r.user ? ' (' + r.user + ')' : '')),
          el('td', null, r.summary || ''),
          el('td', { class: 'num' }, String(r.objects)),
          el('td', null, r.serving ? badge('serving', 'ok') : null, ' ', r.pinned ? badge('pinned', 'warn') : null),
          el('td', null,
            r.pinned ? null : el('button', { class: 'secondary pin', title: 'Serve this revision (roll back or forward to it) until unpinned',
              on: { click: () => pinAction(r.revision) } }, 'Pin'),
            ' ',
            i + 1 < revs.length ? el('button', { class: 'secondary diff', on: { click: () => diffAction(revs[i + 1].revision, r.revision) } }, 'Diff') : null)))));
  };
  // new revisions from the cluster show up without a reload
  refreshEvery(5000, load);
}

function formMsg() { return el('p', { class: 'msg', role: 'status' }); }
// ok: true (done), false (refused), null (in progress)
function showResult(m, ok, text) { m.className = 'msg' + (ok === null ? '' : ok ? ' ok' : ' bad'); m.textContent = text; }

function fileInto(textarea) {
  return el('input', { type: 'file', on: { change: (ev) => {
    const f = ev.target.files[0];
    if (!f) return;
    const r = new FileReader();
    r.onload = () => { textarea.value = r.result; };
    r.readAsText(f);
  } } });
}

async function pageSettings() {
  clearInterval(state.timer);
  const s = await api('/api/settings');
  // kubeconfig
  const kc = el('textarea', { id: 'kubeconfig', spellcheck: 'false', placeholder: 'apiVersion: v1\nkind: Config\n…' });
  const ctx = el('input', { id: 'context', placeholder: 'current-context' });
  const kcMsg = formMsg();
  const kcForm = el('form', { id: 'kubeconfig-form' },
    el('label', { for: 'kubeconfig' }, 'Kubeconfig (validated and connection-tested before it is used)'),
    fileInto(kc), kc,
    el('label', { for: 'context' }, 'Context (empty: the file\'s current-context)'), ctx,
    el('div', { class: 'row' }, el('button', { type: 'submit', disabled: !s.can_upload_kubeconfig }, 'Test and use')), kcMsg);
  kcForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showResult(kcMsg, null, 'Testing the connection…');
    try { showResult(kcMsg, true, (await api('/api/settings/kubeconfig', { kubeconfig: kc.value, context: ctx.value })).message); kc.value = ''; }
    catch (e) { showResult(kcMsg, false, e.message); }
  });
  // mode
  const modeMsg = formMsg();
  const modeSel = el('select', { id: 'mode' }, el('option', { value: 'cluster' }, 'cluster (watch the cluster)'),
    el('option', { value: 'local' }, 'local (serve the local configuration)'));
  modeSel.value = s.mode;
  const modeForm = el('form', { id: 'mode-form' }, el('label', { for: 'mode' }, 'Mode'), modeSel,
    el('div', { class: 'row' }, el('button', { type: 'submit', disabled: !s.can_switch_mode }, 'Switch')), modeMsg);
  modeForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try { showResult(modeMsg, true, (await api('/api/settings/mode', { mode: modeSel.value })).message); }
    catch (e) { showResult(modeMsg, false, e.message); }
  });
  // password
  const cur = el('input', { id: 'pw-current', type: 'password', autocomplete: 'current-password', required: true });
  const nw = el('input', { id: 'pw-new', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const nw2 = el('input', { id: 'pw-new2', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const pwMsg = formMsg();
  const pwForm = el('form', { id: 'password-form' },
    el('label', { for: 'pw-current' }, 'Current password'), cur,
    el('label', { for: 'pw-new' }, 'New password (at least 10 characters)'), nw,
    el('label', { for: 'pw-new2' }, 'New password again'), nw2,
    el('div', { class: 'row' }, el('button', { type: 'submit' }, 'Change password')), pwMsg);
  pwForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (nw.value !== nw2.value) { showResult(pwMsg, false, 'The new passwords differ.'); return; }
    try {
      const r = await api('/api/settings/password', { current: cur.value, new: nw.value });
      state.csrf = r.csrf;
      showResult(pwMsg, true, r.message);
      cur.value = nw.value = nw2.value = '';
    } catch (e) { showResult(pwMsg, false, e.message); }
  });
  // certificate
  const cert = el('textarea', { id: 'cert-pem', spellcheck: 'false', placeholder: '-----BEGIN CERTIFICATE-----' });
  const key = el('textarea', { id: 'key-pem', spellcheck: 'false', placeholder: 'the key, PEM' });
  const certMsg = formMsg();
  const days = s.certificate.not_after ? Math.floor((s.certificate.not_after * 1000 - Date.now()) / 86400000) : null;
  const certForm = el('form', { id: 'cert-form' },
    el('p', null, 'Current: ', s.certificate.uploaded ? 'uploaded' : 'generated on this box', days === null ? '' : ', expires in ' + days + ' days'),
    el('label', { for: 'cert-pem' }, 'Certificate chain (PEM)'), fileInto(cert), cert,
    el('label', { for: 'key-pem' }, 'Private key (PEM; stored 0600 on the box, never shown again)'), fileInto(key), key,
    el('div', { class: 'row' }, el('button', { type: 'submit' }, 'Upload')), certMsg);
  certForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try { showResult(certMsg, true, (await api('/api/settings/certificate', { cert_pem: cert.value, key_pem: key.value })).message); key.value = ''; }
    catch (e) { showResult(certMsg, false, e.message); }
  });
  render(el('div', { class: 'cards' },
    el('div', { class: 'card' }, el('h2', null, 'Cluster connection'),
      kv([['Mode', s.mode], ['Server', s.server || '—'], ['Context', s.context || '—']]), kcForm),
    el('div', { class: 'card' }, el('h2', null, 'Mode'), modeForm),
    el('div', { class: 'card' }, el('h2', null, 'Password'), pwForm),
    el('div', { class: 'card' }, el('h2', null, 'UI certificate'), certForm),
    el('div', { class: 'card wide' }, el('h2', null, 'Access'), kv([
      ['Metrics', el('span', null, el('code', null, s.metrics.path), ' with a bearer token from ', el('code', null, s.metrics.token_file))],
      ['Idle logout', Math.round(s.session_idle_s / 60) + ' min'],
      ['Host names accepted', s.allowed_hosts.join(', ')],
    ]))));
}

async function pageEvents() {
  const logBox = el('div', { class: 'table-wrap log', id: 'events' });
  const auditBox = el('div');
  render(el('h2', null, 'Recent log events'), logBox, el('h2', null, 'Changes (audit)'), auditBox);
  let after = 0;
  const lines = [];
  refreshEvery(2000, async () => {
    const d = await api('/api/events?after=' + after);
    for (const e of d.events) { lines.push(e); after = Math.max(after, e.seq); }
    while (lines.length > 500) lines.shift();
    logBox.replaceChildren(...lines.slice().reverse().map((e) =>
      el('div', { class: 'ev-' + e.level }, e.line)));
    auditBox.replaceChildren(table(['When', 'Source', 'User', 'What'], d.audit.map((a) => el('tr', null,
      el('td', null, fmtTime(a.time_ms)), el('td', null, a.source), el('td', null, a.user || '—'), el('td', null, a.summary)))));
  });
}

const pages = {
  '/overview': ['Overview', pageOverview],
  '/gateways': ['Gateways & listeners', pageGateways],
  '/routes': ['Routes', pageRoutes],
  '/backends': ['Backends', pageBackends],
  '/traffic': ['Traffic', pageTraffic],
  '/revisions': ['Revisions', pageRevisions],
  '/settings': ['Settings', pageSettings],
  '/events': ['Events', pageEvents],
};

document.addEventListener('DOMContentLoaded', async () => {
  const path = location.pathname;
  const [title, fn] = pages[path] || pages['/overview'];
  document.getElementById('title').textContent = title;
  document.title = 'waygate · ' + title;
  for (const a of document.querySelectorAll('#nav a'))
    if (a.getAttribute('href') === path) a.classList.add('active');
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('/api/logout', {}); } catch (e) { /* gone anyway */ }
    location.assign('/login');
  });
  try {
    const s = await api('/api/session');
    state.csrf = s.csrf;
    state.idleMs = (s.idle_timeout_s || 1800) * 1000;
    document.getElementById('who').textContent = s.user;
    await fn();
  } catch (e) {
    setStatus(e.message, true);
  }
});

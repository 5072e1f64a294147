// SPDX-License-Identifier: MIT
// browser.mjs: the web UI's browser and security tests. Starts the UI under
// test (the harness by default, or any command that logs
// "ui listening on https://ADDR:PORT" and prints the first-start password),
// then checks the HTTP gate with raw requests (401 without a session, 403
// without CSRF or from a foreign Origin, 421 for a foreign Host, 429 after
// ten bad passwords, no secret anywhere, /metrics parsed by the Prometheus
// client library's parser) and drives headless Chromium through every page
// with Playwright (log in, see the seed routes, see a cluster change within
// 2 s, pin an older revision and see the served routes follow, payloads
// render as text, log out). Screenshots go to the artefacts folder.
// Prints "ui: N passed, N failed"; exits 1 on any failure. Every wait is
// bounded; the whole run is capped.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith('--') ? a.concat([[v.slice(2), all[i + 1]]]) : a), []));
const ART = args.artifacts || 'build/ui-artifacts';
const NODE_DIR = args['node-dir'] || 'build/ui-node';
const HARNESS = args.harness || 'build/ui-test/harness';
const CHROMIUM = args.chromium || '/usr/bin/chromium';
const WAYGATE = args.waygate || ''; // the real binary: an end-to-end phase in local mode
const SEED = args.seed || 'rootfs/etc/waygate/config';
const MARKER = 'WG-SECRET-MARKER-7f3a';
const require = createRequire(path.resolve(NODE_DIR, 'package.json'));
const { chromium } = require('playwright-core');

let passed = 0, failed = 0;
const results = [];
function ok(name, cond, detail) {
  if (cond) { passed++; results.push('  ok   ' + name); }
  else { failed++; results.push('  FAIL ' + name + (detail ? ': ' + detail : '')); }
  console.log(results[results.length - 1]);
}
async function step(name, fn) {
  try { await fn(); } catch (e) { ok(name, false, e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : String(e)); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------- the UI under test ----------

fs.rmSync(ART, { recursive: true, force: true });
fs.mkdirSync(path.join(ART, 'screens'), { recursive: true });
const STATE = path.resolve(ART, 'state');
const proc = spawn(HARNESS, ['--state-dir', STATE, '--listen', '127.0.0.1:0'],
  { stdio: ['pipe', 'pipe', 'pipe'] });
let out = '', err = '';
proc.stdout.on('data', (d) => { out += d; });
proc.stderr.on('data', (d) => { err += d; fs.appendFileSync(path.join(ART, 'ui.log'), d); });
const killer = setTimeout(() => { console.log('ui: timeout after 200 s'); finish(true); }, 200000);

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(50);
  }
}

let BASE, HOSTPORT, PASSWORD, TOKEN;

// ---------- raw HTTPS requests ----------

function req(method, p, { headers = {}, body, local } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(BASE + p);
    const r = https.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method,
      headers: { Host: HOSTPORT, ...headers }, rejectUnauthorized: false, localAddress: local,
      agent: false, timeout: 5000,
    }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(data); } catch (e) { json = null; }
        resolve({ status: res.statusCode, headers: res.headers, body: data, json });
      });
    });
    r.on('timeout', () => r.destroy(new Error('request timeout ' + p)));
    r.on('error', reject);
    if (body !== undefined) r.write(typeof body === 'string' ? body : JSON.stringify(body));
    r.end();
  });
}
const jsonPost = (p, body, extra = {}) => req('POST', p, {
  headers: { Origin: BASE, 'Content-Type': 'application/json', ...extra }, body });

async function login(password, local) {
  const r = await req('POST', '/api/login', {
    headers: { Origin: BASE, 'Content-Type': 'application/json' },
    body: { user: 'admin', password }, local });
  const m = /__Host-wg_session=([0-9a-f]+)/.exec(r.headers['set-cookie'] || '');
  return { r, cookie: m ? '__Host-wg_session=' + m[1] : null, csrf: r.json && r.json.csrf };
}

const GET_APIS = ['/api/session', '/api/overview', '/api/gateways', '/api/routes', '/api/backends',
  '/api/traffic', '/api/revisions', '/api/revision?rev=1', '/api/diff?from=1&to=2',
  '/api/object?rev=1&kind=HTTPRoute&namespace=default&name=web', '/api/settings', '/api/events'];
const POST_APIS = ['/api/logout', '/api/pin', '/api/unpin', '/api/settings/kubeconfig',
  '/api/settings/mode', '/api/settings/password', '/api/settings/certificate'];
const PAGES = ['/overview', '/gateways', '/routes', '/backends', '/traffic', '/revisions', '/settings', '/events'];

async function securityTests() {
  await step('api without session', async () => {
    const bad = [];
    for (const p of GET_APIS) {
      const r = await req('GET', p);
      if (r.status !== 401 || !r.json || !r.json.error) bad.push(p + '=' + r.status);
    }
    for (const p of POST_APIS) {
      const r = await jsonPost(p, {});
      if (r.status !== 401) bad.push('POST ' + p + '=' + r.status);
    }
    ok('every API without a session answers 401 JSON (' + (GET_APIS.length + POST_APIS.length) + ' endpoints)',
      bad.length === 0, bad.join(' '));
  });
  await step('pages without session', async () => {
    const bad = [];
    for (const p of [...PAGES, '/', '/app.js', '/app.html']) {
      const r = await req('GET', p);
      if (!(r.status === 303 && r.headers.location === '/login') && r.status !== 404) bad.push(p + '=' + r.status);
      if (r.body.includes('pageOverview')) bad.push(p + ' leaked the app');
    }
    const l = await req('GET', '/login');
    ok('every page without a session redirects to /login', bad.length === 0 && l.status === 200, bad.join(' '));
  });
  await step('headers', async () => {
    const r = await req('GET', '/login');
    const csp = r.headers['content-security-policy'] || '';
    ok('strict CSP without inline script', /script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp) &&
      /default-src 'none'/.test(csp) && /frame-ancestors 'none'/.test(csp), csp);
    ok('nosniff and no framing', r.headers['x-content-type-options'] === 'nosniff' && r.headers['x-frame-options'] === 'DENY');
  });
  await step('foreign host', async () => {
    const a = await req('GET', '/login', { headers: { Host: 'evil.example:' + new URL(BASE).port } });
    const b = await req('GET', '/api/overview', { headers: { Host: 'attacker.test' } });
    const c = await req('GET', '/login', { headers: { Host: 'waygate.test:1234' } });
    ok('a foreign Host is refused (DNS rebinding)', a.status === 421 && b.status === 421, a.status + ' ' + b.status);
    ok('a configured extra host name is accepted', c.status === 200, String(c.status));
  });

  const s = await login(PASSWORD);
  ok('login with the first-start password', s.r.status === 200 && !!s.cookie && !!s.csrf, s.r.status + ' ' + s.r.body);
  const setc = s.r.headers['set-cookie'] ? s.r.headers['set-cookie'].join(';') : '';
  ok('session cookie is HttpOnly, Secure, SameSite=Strict, __Host-',
    /HttpOnly/.test(setc) && /Secure/.test(setc) && /SameSite=Strict/.test(setc) && /^__Host-/.test(setc), setc);
  const s2 = await login(PASSWORD);
  ok('each login gets a new session id', s2.cookie && s2.cookie !== s.cookie);
  const auth = { Cookie: s.cookie };

  await step('csrf', async () => {
    const noTok = await jsonPost('/api/unpin', {}, auth);
    const wrongTok = await jsonPost('/api/unpin', {}, { ...auth, 'X-CSRF-Token': s2.csrf });
    const foreign = await req('POST', '/api/unpin', { headers: { ...auth, 'X-CSRF-Token': s.csrf,
      Origin: 'https://evil.example', 'Content-Type': 'application/json' }, body: {} });
    const noOrigin = await req('POST', '/api/unpin', { headers: { ...auth, 'X-CSRF-Token': s.csrf,
      'Content-Type': 'application/json' }, body: {} });
    const crossSite = await req('POST', '/api/unpin', { headers: { ...auth, 'X-CSRF-Token': s.csrf, Origin: BASE,
      'Sec-Fetch-Site': 'cross-site', 'Content-Type': 'application/json' }, body: {} });
    const form = await req('POST', '/api/unpin', { headers: { ...auth, 'X-CSRF-Token': s.csrf, Origin: BASE,
      'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
    const good = await jsonPost('/api/unpin', {}, { ...auth, 'X-CSRF-Token': s.csrf });
    ok('a change without a CSRF token is refused (403)', noTok.status === 403, String(noTok.status));
    ok('a change with another session\'s CSRF token is refused (403)', wrongTok.status === 403, String(wrongTok.status));
    ok('a change from a foreign Origin is refused (403)', foreign.status === 403, String(foreign.status));
    ok('a change without Origin is refused (403)', noOrigin.status === 403, String(noOrigin.status));
    ok('a cross-site fetch is refused (403)', crossSite.status === 403, String(crossSite.status));
    ok('a form-encoded change is refused (415)', form.status === 415, String(form.status));
    ok('a change with token and Origin is accepted', good.status === 200, good.status + ' ' + good.body);
    const login403 = await req('POST', '/api/login', { headers: { Origin: 'https://evil.example',
      'Content-Type': 'application/json' }, body: { user: 'admin', password: PASSWORD } });
    ok('login from a foreign Origin is refused (403)', login403.status === 403, String(login403.status));
  });

  await step('secrets', async () => {
    const leaks = [];
    const secrets = [MARKER, PASSWORD, TOKEN, s.cookie.split('=')[1], 'PRIVATE KEY'];
    for (const p of [...GET_APIS, ...PAGES, '/app.js', '/login', '/login.js', '/style.css']) {
      const r = await req('GET', p, { headers: auth });
      if (r.status !== 200) leaks.push(p + ' status ' + r.status);
      for (const x of secrets) if (x && r.body.includes(x)) leaks.push(p + ' contains ' + x.slice(0, 6) + '…');
    }
    for (const rev of [1, 2]) {
      const r = await req('GET', '/api/revision?rev=' + rev, { headers: auth });
      for (const x of secrets) if (x && r.body.includes(x)) leaks.push('revision ' + rev);
    }
    ok('no secret material in any page or API (' + (GET_APIS.length + PAGES.length + 6) + ' responses)',
      leaks.length === 0, leaks.join('; '));
    const sec = await req('GET', '/api/object?rev=1&kind=Secret&namespace=default&name=edge-tls', { headers: auth });
    ok('a Secret object is never returned', sec.status === 403 && !sec.body.includes(MARKER), String(sec.status));
    const ev = await req('GET', '/api/events', { headers: auth });
    ok('the first-start password line is redacted in events',
      ev.json && ev.json.events.some((e) => e.line.includes('ui_first_start_password') && e.line.includes('[redacted]')) &&
      !ev.body.includes(PASSWORD));
  });

  await step('escaping', async () => {
    const r = await req('GET', '/api/routes', { headers: auth });
    ok('API escapes <, >, & and quotes in cluster text',
      r.status === 200 && !/<script/i.test(r.body) && r.body.includes('\\u003cscript\\u003e') &&
      r.json.routes.some((x) => x.name.includes('<script>window.pwned=1</script>')));
  });

  await step('metrics', async () => {
    const no = await req('GET', '/metrics');
    const wrong = await req('GET', '/metrics', { headers: { Authorization: 'Bearer ' + 'f'.repeat(64) } });
    const cookieOnly = await req('GET', '/metrics', { headers: auth });
    const m = await req('GET', '/metrics', { headers: { Authorization: 'Bearer ' + TOKEN, Host: 'scraper.example' } });
    ok('/metrics needs the bearer token', no.status === 401 && wrong.status === 401 && cookieOnly.status === 401,
      [no.status, wrong.status, cookieOnly.status].join(' '));
    ok('/metrics answers with the token', m.status === 200 && /text\/plain; version=0\.0\.4/.test(m.headers['content-type']),
      m.status + ' ' + m.headers['content-type']);
    fs.writeFileSync(path.join(ART, 'metrics.txt'), m.body);
    const py = spawnSync('/usr/bin/python3', ['-c', `
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
need = ['waygate_requests', 'waygate_request_duration_seconds', 'waygate_sent_bytes',
        'waygate_upstream_errors', 'waygate_active_connections', 'waygate_route_requests',
        'waygate_route_responses', 'waygate_route_request_duration_seconds',
        'waygate_watch_synced', 'waygate_watch_up', 'waygate_watch_state', 'waygate_watch_errors',
        'waygate_store_revision', 'waygate_listener_info']
missing = [n for n in need if n not in fams]
h = fams['waygate_request_duration_seconds']
assert h.type == 'histogram', h.type
buckets = [s for s in h.samples if s.name.endswith('_bucket')]
assert buckets[-1].labels['le'] == '+Inf'
vals = [s.value for s in buckets]
assert vals == sorted(vals), 'buckets not cumulative'
count = [s.value for s in h.samples if s.name.endswith('_count')][0]
assert count == vals[-1]
web = [s for s in fams['waygate_route_requests'].samples if s.labels.get('route') == 'default/web']
assert web and web[0].labels['rule'] == '0' and web[0].value > 0, web
rh = fams['waygate_route_request_duration_seconds']
assert rh.type == 'histogram', rh.type
rb = [s for s in rh.samples if s.name.endswith('_bucket') and s.labels['route'] == 'default/web']
assert rb[-1].labels['le'] == '+Inf' and [s.value for s in rb] == sorted(s.value for s in rb)
up = {s.labels['resource']: s.value for s in fams['waygate_watch_up'].samples}
assert up == {'gatewayclasses': 1, 'gateways': 1, 'httproutes': 1, 'services': 0}, up
rev = [s.value for s in fams['waygate_store_revision'].samples][0]
assert rev >= 2, rev
print('families=%d samples=%d missing=%s' % (len(fams), sum(len(f.samples) for f in fams.values()), missing))
sys.exit(1 if missing else 0)
`], { input: m.body, encoding: 'utf8', timeout: 20000 });
    ok('/metrics parses with the Prometheus text parser (' + (py.stdout || '').trim() + ')', py.status === 0,
      (py.stderr || '').trim().split('\n').slice(-2).join(' '));
  });

  // Ten bad passwords from another address (the limiter is per client,
  // so the browser's own logins from 127.0.0.1 are not affected).
  await step('rate limit', async () => {
    const codes = [];
    for (let i = 0; i < 10; i++) codes.push((await login('wrong-password-' + i, '127.0.0.2')).r.status);
    const after = await login(PASSWORD, '127.0.0.2');
    ok('ten bad passwords → rate limited (' + codes.join(',') + ')',
      codes.slice(0, 5).every((c) => c === 401) && codes.slice(5).every((c) => c === 429) &&
      after.r.status === 429 && !!after.r.headers['retry-after']);
    const other = await login(PASSWORD);
    ok('another client can still log in', other.r.status === 200, String(other.r.status));
  });

  await step('connection caps', async () => {
    const port = Number(new URL(BASE).port);
    const socks = [];
    const closedAt = [];
    for (let i = 0; i < 36; i++) {
      const so = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' });
      so.on('error', () => {});
      so.on('close', () => { closedAt.push(i); });
      socks.push(so);
      await new Promise((r) => { so.once('connect', r); so.once('error', r); });
    }
    await sleep(800);
    const other = await req('GET', '/login');
    ok('one client cannot take every connection (' + closedAt.length + ' of 36 refused)',
      closedAt.length === 4 && closedAt.every((i) => i >= 32), closedAt.join(','));
    ok('another client is still served meanwhile', other.status === 200, String(other.status));
    for (const so of socks) so.destroy();
    await sleep(200);
  });

  await step('logout', async () => {
    const l = await login(PASSWORD);
    const out2 = await jsonPost('/api/logout', {}, { Cookie: l.cookie, 'X-CSRF-Token': l.csrf });
    const replay = await req('GET', '/api/session', { headers: { Cookie: l.cookie } });
    ok('a logged-out session id is dead', out2.status === 200 && replay.status === 401,
      out2.status + ' ' + replay.status);
  });
  return s;
}

// ---------- the browser ----------

async function browserTests() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30000,
    args: ['--ignore-certificate-errors', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  ctx.setDefaultTimeout(8000);
  const page = await ctx.newPage();
  const problems = [];
  page.on('dialog', (d) => { problems.push('dialog: ' + d.message()); d.dismiss(); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  // The wrong-password (401) and bad-kubeconfig (422) steps fail on purpose.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (401|422)/.test(m.text())) problems.push('console: ' + m.text());
  });
  const shot = (name, p = page) => p.screenshot({ path: path.join(ART, 'screens', name + '.png'), fullPage: true });

  await step('login page', async () => {
    await page.goto(BASE + '/overview');
    ok('a page without a session shows the login form', page.url().startsWith(BASE + '/login') &&
      await page.locator('#login-form').isVisible());
    await shot('01-login');
    await page.fill('#password', 'not-the-password');
    await page.click('#login-button');
    await page.locator('#login-error').waitFor({ state: 'visible' });
    ok('a wrong password shows an error', /wrong user or password/.test(await page.textContent('#login-error')));
    await page.fill('#password', PASSWORD);
    await page.click('#login-button');
    await page.waitForURL(BASE + '/overview');
    await page.locator('#card-cluster').waitFor();
    ok('log in and land on the overview', (await page.textContent('#card-cluster')).includes('connected'));
    const cookies = await ctx.cookies();
    const c = cookies.find((x) => x.name === '__Host-wg_session');
    ok('the browser holds an HttpOnly, Secure, Strict cookie', c && c.httpOnly && c.secure && c.sameSite === 'Strict');
    ok('the cookie is not readable from script', !(await page.evaluate(() => document.cookie)).includes('wg_session'));
    await page.locator('#card-serving').waitFor();
    await page.locator('#card-watches tr.watch').first().waitFor();
    const watchRows = await page.locator('#card-watches tr.watch').count();
    const svc = await page.textContent('#card-watches tr.watch[data-resource="services"]');
    const routesRow = await page.textContent('#card-watches tr.watch[data-resource="httproutes"]');
    ok('the overview shows the health of every watch (' + watchRows + ' rows)',
      watchRows === 4 && /backoff/.test(svc) && /watch: HTTP 500/.test(svc) && /watching/.test(routesRow) &&
      /1002/.test(routesRow) && /2 s ago|[0-9] s ago/.test(routesRow), svc + ' | ' + routesRow);
    await shot('02-overview');
  });

  await step('pages', async () => {
    for (const [p, file, sel, text] of [
      ['/gateways', '03-gateways', 'section.gateway', 'expires in 19 d'],
      ['/routes', '04-routes', 'tr.route', 'default/web'],
      ['/backends', '05-backends', 'table', 'default/web-svc:8080'],
      ['/traffic', '06-traffic', 'canvas.chart', ''],
      ['/revisions', '07-revisions', 'tr.revision', ''],
      ['/settings', '08-settings', '#password-form', 'Password'],
      ['/events', '09-events', '#events div', 'event='],
    ]) {
      await page.click('#nav a[href="' + p + '"]');
      await page.waitForURL(BASE + p);
      await page.locator(sel).first().waitFor();
      if (text) await page.waitForFunction((t) => document.getElementById('page').textContent.includes(t), text, { timeout: 5000 });
      if (p === '/traffic') await sleep(2500); // a few samples on the charts
      await shot(file);
      const txt = await page.textContent('#page');
      ok('page ' + p + ' renders', !txt.includes('[object') && !txt.includes('undefined') && !txt.includes('NaN') &&
        !/\bnull\b/.test(txt), (txt.match(/.{0,40}(\[object|undefined|NaN|\bnull\b).{0,40}/) || [''])[0]);
    }
  });

  await step('seed routes and payload', async () => {
    await page.goto(BASE + '/routes');
    await page.locator('tr.route').first().waitFor();
    const names = await page.locator('.route-name').allTextContents();
    ok('the seed routes are listed', names.includes('default/web') && names.includes('default/shop'), names.join(','));
    ok('a route named with an HTML/script payload renders as text',
      names.some((n) => n.includes('<img src=x onerror=') && n.includes('<script>window.pwned=1</script>')));
    const ran = await page.evaluate(() => ({ pwned: window.pwned, title: document.title,
      scripts: document.querySelectorAll('#page script, #page img').length }));
    ok('the payload ran nothing', ran.pwned === undefined && ran.title !== 'pwned' && ran.scripts === 0, JSON.stringify(ran));
    const hasB = await page.evaluate(() => document.querySelectorAll('#page b').length);
    ok('no element from cluster text reaches the DOM', hasB === 0);
    await page.fill('#route-filter', 'shop');
    await page.waitForFunction(() => document.querySelectorAll('.route-name').length === 1, null, { timeout: 3000 });
    ok('the route filter narrows the list', (await page.locator('.route-name').allTextContents()).join() === 'default/shop');
    await page.fill('#route-filter', '');
  });

  await step('traffic per route', async () => {
    // the harness counts 20 requests a second on default/web, 5 % of them
    // 5xx; the UI's rates close a window every 5 s
    await page.goto(BASE + '/routes');
    const cell = page.locator('tr.route[data-route="default/web"] .traffic');
    await cell.locator('.errors').waitFor({ timeout: 12000 });
    const rps = await cell.locator('.rps').textContent();
    const errs = await cell.locator('.errors').textContent();
    const total = await cell.locator('.total').textContent();
    const r = Number((/^([0-9.]+) req\/s$/.exec(rps) || [])[1]);
    ok('the Routes page shows requests/s, error share and total per route (' + [rps, errs, total].join(' · ') + ')',
      r >= 15 && r <= 25 && /^[45](\.\d)? % errors$/.test(errs) && /^\d+ requests$/.test(total) && Number.parseInt(total) > 50);
    const api = await page.evaluate(async () => (await fetch('/api/routes')).json());
    const web = api.routes.find((x) => x.name === 'default/web');
    const t = web && web.traffic;
    ok('/api/routes carries the same traffic (rps ' + (t && t.rps) + ', error share ' + (t && t.error_share) + ')',
      t && t.rps >= 15 && t.rps <= 25 && Math.abs(t.error_share - 0.05) < 0.02 && t.responses_by_class.length === 6 &&
      t.active === 1 && web.rules[0].traffic && web.rules[0].traffic.requests === t.requests);
    await shot('04b-routes-traffic');
  });

  await step('cluster change appears', async () => {
    await page.goto(BASE + '/routes');
    await page.locator('tr.route').first().waitFor();
    const t0 = Date.now();
    proc.stdin.write('add-route late\n');
    await page.waitForFunction(() => [...document.querySelectorAll('.route-name')].some((e) => e.textContent === 'default/late'),
      null, { timeout: 2000 });
    const ms = Date.now() - t0;
    ok('a route changed in the cluster appears within 2 s (' + ms + ' ms)', ms <= 2000);
    await shot('10-routes-after-change');
  });

  await step('pin a revision', async () => {
    await page.goto(BASE + '/revisions');
    await page.locator('tr.revision[data-rev="1"]').waitFor();
    await page.locator('tr.revision[data-rev="3"]').waitFor();
    await page.click('tr.revision[data-rev="1"] button.pin');
    await page.locator('#rev-msg.ok').waitFor();
    ok('pinning r1 is confirmed', (await page.textContent('#rev-msg')).includes('serving revision 1'));
    await page.locator('tr.revision[data-rev="1"] .badge.warn').waitFor();
    await shot('11-revisions-pinned');
    await page.goto(BASE + '/routes');
    await page.waitForFunction(() => {
      const n = [...document.querySelectorAll('.route-name')].map((e) => e.textContent);
      return n.includes('default/web') && !n.includes('default/shop') && !n.includes('default/late');
    }, null, { timeout: 3000 });
    ok('the served routes follow the pinned revision', true);
    await page.goto(BASE + '/overview');
    await page.locator('#card-serving').waitFor();
    await page.waitForFunction(() => document.getElementById('card-serving').textContent.includes('pinned'), null, { timeout: 3000 });
    ok('the overview shows the pin', true);
    await page.goto(BASE + '/revisions');
    await page.click('#unpin');
    await page.locator('#rev-msg.ok').waitFor();
    await page.goto(BASE + '/routes');
    await page.waitForFunction(() => [...document.querySelectorAll('.route-name')].some((e) => e.textContent === 'default/late'),
      null, { timeout: 3000 });
    ok('unpinning serves the newest revision again', true);
  });

  await step('diff', async () => {
    await page.goto(BASE + '/revisions');
    await page.locator('tr.revision[data-rev="2"] button.diff').click();
    await page.locator('#diff table').waitFor();
    const t = await page.textContent('#diff');
    ok('the diff of r1 → r2 lists the added route', t.includes('added') && t.includes('default/shop'));
    await page.locator('#diff a').first().click();
    await page.locator('#diff pre.diff').waitFor();
    await shot('12-revision-diff');
  });

  await step('settings forms', async () => {
    await page.goto(BASE + '/settings');
    await page.fill('#kubeconfig', 'apiVersion: v1\nkind: Config\n');
    await page.click('#kubeconfig-form button[type=submit]');
    await page.locator('#kubeconfig-form .msg.bad').waitFor();
    ok('a kubeconfig that fails validation is refused with its reason',
      (await page.textContent('#kubeconfig-form .msg')).includes('clusters'));
    await page.fill('#kubeconfig', 'apiVersion: v1\nkind: Config\nclusters: []\nusers:\n- name: a\n  user:\n    token: WG-KUBE-TOKEN-MARKER\n');
    await page.click('#kubeconfig-form button[type=submit]');
    await page.waitForFunction(() => /connected/.test(document.querySelector('#kubeconfig-form .msg.ok')?.textContent || ''),
      null, { timeout: 5000 }).catch(() => null);
    ok('a valid kubeconfig is accepted', (await page.textContent('#kubeconfig-form .msg')).includes('connected'));
    const leak = await page.evaluate(async () => {
      const bodies = await Promise.all(['/api/events', '/api/settings', '/api/overview'].map(
        async (p) => (await fetch(p)).text()));
      return bodies.some((b) => b.includes('WG-KUBE-TOKEN-MARKER'));
    });
    ok('an uploaded kubeconfig\'s credentials appear nowhere', !leak && !err.includes('WG-KUBE-TOKEN-MARKER'));
    await shot('13-settings-kubeconfig');
  });

  await step('phone', async () => {
    const phone = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2, isMobile: true, hasTouch: true, storageState: await ctx.storageState() });
    const p2 = await phone.newPage();
    await p2.goto(BASE + '/overview');
    await p2.locator('#card-box').waitFor();
    const overflow = await p2.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    ok('the overview fits a phone screen (overflow ' + overflow + ' px)', overflow <= 1);
    await shot('14-phone-overview', p2);
    await p2.goto(BASE + '/routes');
    await p2.locator('tr.route').first().waitFor();
    await shot('15-phone-routes', p2);
    await phone.close();
  });

  await step('logout', async () => {
    await page.goto(BASE + '/overview');
    await page.locator('#card-cluster').waitFor();
    await page.click('#logout');
    await page.waitForURL(/\/login/);
    await page.goto(BASE + '/routes');
    ok('after logout every page asks for login again', page.url().startsWith(BASE + '/login'));
    const st = await page.evaluate(async () => (await fetch('/api/session')).status);
    ok('after logout the API answers 401', st === 401, String(st));
    await shot('16-logged-out');
  });

  ok('no script error, dialog or CSP violation in any page', problems.length === 0, problems.join(' | '));
  if (WAYGATE) await step('real binary', () => realBinaryTests(browser));
  await step('idle timeout', () => idleTest(browser));
  await browser.close();
}


// ---------- the real binary, local mode ----------

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
  });
}

function plainGet(port, host, p) {
  return new Promise((resolve) => {
    const r = http.request({ host: '127.0.0.1', port, path: p, headers: { Host: host }, agent: false, timeout: 3000 },
      (res) => { let d = ''; res.on('data', (c) => { d += c; }); res.on('end', () => resolve({ status: res.statusCode, body: d })); });
    r.on('timeout', () => r.destroy());
    r.on('error', (e) => resolve({ status: 0, body: String(e) }));
    r.end();
  });
}

const LATE_ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: late
  namespace: foo
spec:
  parentRefs:
  - name: prod-web
    namespace: edge
  hostnames:
  - late.example.com
  rules:
  - backendRefs:
    - name: foo-home
      port: 80
`;

async function realBinaryTests(browser) {
  const dir = path.resolve(ART, 'real');
  const conf = path.join(dir, 'config');
  fs.mkdirSync(conf, { recursive: true });
  // every port the seed uses is remapped to a free one: other tests may
  // share this machine
  const map = {};
  for (const p of [8080, 8443, 9101, 9102, 9103, 9104, 9105]) map[p] = await freePort();
  for (const f of fs.readdirSync(SEED)) {
    const text = fs.readFileSync(path.join(SEED, f), 'utf8').replace(/\b(8080|8443|910[1-5])\b/g, (m) => String(map[m]));
    fs.writeFileSync(path.join(conf, f), text);
  }
  const kids = [];
  const names = { 9101: 'foo-auth', 9102: 'foo-home', 9103: 'foo-404', 9104: 'bar-v1', 9105: 'bar-v2' };
  for (const [p, n] of Object.entries(names))
    kids.push(spawn(WAYGATE, ['echo', '--listen', '127.0.0.1:' + map[p], '--name', n], { stdio: 'ignore' }));
  let rout = '', rerr = '';
  const wg = spawn(WAYGATE, ['run', '--config', conf, '--state-dir', path.join(dir, 'state'),
    '--ui-listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  kids.push(wg);
  wg.stdout.on('data', (d) => { rout += d; });
  wg.stderr.on('data', (d) => { rerr += d; fs.appendFileSync(path.join(dir, 'waygate.log'), d); });
  try {
    const m = await waitFor(() => /ui listening on https:\/\/([0-9.]+:\d+)/.exec(rerr), 20000, 'waygate\'s UI');
    const base = 'https://' + m[1];
    const pw = (await waitFor(() => /ui password \(first start\): user=admin password=(\S+)/.exec(rout), 5000, 'the password'))[1];
    ok('real binary: UI up, first-start password printed', !!pw);
    const httpPort = map[8080];
    const before = await waitFor(async () => { const r = await plainGet(httpPort, 'foo.example.com', '/home'); return r.status === 200 && r; },
      10000, 'the data plane');
    ok('real binary: the seed route answers (foo.example.com/home)', before.body.includes('foo-home'));

    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
    ctx.setDefaultTimeout(8000);
    const page = await ctx.newPage();
    const shot = (name) => page.screenshot({ path: path.join(ART, 'screens', name + '.png'), fullPage: true });
    await page.goto(base + '/overview');
    await page.fill('#password', pw);
    await page.click('#login-button');
    await page.waitForURL(base + '/overview');
    await page.locator('#card-serving').waitFor();
    await shot('real-01-overview');
    await page.goto(base + '/routes');
    await page.locator('tr.route').first().waitFor();
    const seedNames = await page.locator('.route-name').allTextContents();
    ok('real binary: the seed routes are listed (' + seedNames.join(', ') + ')',
      seedNames.includes('foo/foo') && seedNames.includes('bar/bar'));
    await shot('real-02-routes');
    await page.goto(base + '/gateways');
    await page.locator('section.gateway').first().waitFor();
    await page.waitForFunction(() => /expires in \d+ d/.test(document.getElementById('page').textContent), null, { timeout: 5000 })
      .catch(() => null);
    ok('real binary: the Gateway, its listeners and certificate expiry are shown',
      /edge\/prod-web/.test(await page.textContent('#page')) && /expires in \d+ d/.test(await page.textContent('#page')));
    await shot('real-02b-gateways');

    // a change: a new route file and SIGHUP, as an edit of the local config
    await page.goto(base + '/routes');
    await page.locator('tr.route').first().waitFor();
    fs.writeFileSync(path.join(conf, '40-late.yaml'), LATE_ROUTE);
    const t0 = Date.now();
    wg.kill('SIGHUP');
    await page.waitForFunction(() => [...document.querySelectorAll('.route-name')].some((e) => e.textContent === 'foo/late'),
      null, { timeout: 2000 });
    ok('real binary: a changed route appears within 2 s (' + (Date.now() - t0) + ' ms)', true);
    const late = await waitFor(async () => { const r = await plainGet(httpPort, 'late.example.com', '/'); return r.status === 200 && r; },
      3000, 'the new route');
    ok('real binary: the new route serves', late.body.includes('foo-home'));

    // traffic per route: 20 requests to foo/foo (one of them to a path
    // its rules send to foo-404), counted by the data plane and shown
    let sent = 0;
    for (let i = 0; i < 20; i++) sent += (await plainGet(httpPort, 'foo.example.com', i ? '/home' : '/login')).status ? 1 : 0;
    await page.goto(base + '/routes');
    const fooTotal = await waitFor(async () => {
      const txt = await page.locator('tr.route[data-route="foo/foo"] .traffic .total').textContent().catch(() => '');
      const n = Number.parseInt(txt);
      return n >= sent && n;
    }, 5000, 'the traffic of foo/foo').catch(() => 0);
    ok('real binary: the Routes page counts the requests of foo/foo (' + fooTotal + ' of at least ' + sent + ')',
      fooTotal >= sent && sent === 20);
    await shot('real-02c-routes-traffic');

    // pin revision 1: the new route stops being served
    await page.goto(base + '/revisions');
    await page.locator('tr.revision[data-rev="2"]').waitFor();
    await page.click('tr.revision[data-rev="1"] button.pin');
    await page.locator('#rev-msg.ok, #rev-msg.bad').waitFor();
    await shot('real-03-pinned');
    const gone = await waitFor(async () => { const r = await plainGet(httpPort, 'late.example.com', '/'); return r.status === 404 && r; },
      3000, 'traffic to follow the pin').catch(() => null);
    ok('real binary: pinning r1 makes traffic follow it (late.example.com → 404)', !!gone,
      await page.textContent('#rev-msg'));
    await page.click('#unpin');
    await page.locator('#rev-msg.ok').waitFor();
    const back = await waitFor(async () => { const r = await plainGet(httpPort, 'late.example.com', '/'); return r.status === 200 && r; },
      3000, 'the newest revision again').catch(() => null);
    ok('real binary: unpinning serves the newest revision again', !!back);

    const token = fs.readFileSync(path.join(dir, 'state', 'ui-metrics.token'), 'utf8').trim();
    const met = await page.evaluate(async (t) => (await fetch('/metrics', { headers: { Authorization: 'Bearer ' + t } })).text(), token);
    const py = spawnSync('/usr/bin/python3', ['-c',
      'import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n' +
      'f = {x.name: x for x in p(sys.stdin.read())}\nr = [s.value for s in f["waygate_requests"].samples][0]\n' +
      'print(int(r))\nsys.exit(0 if r >= 2 else 1)'], { input: met, encoding: 'utf8', timeout: 20000 });
    ok('real binary: /metrics parses and counts the requests (' + (py.stdout || '').trim() + ')', py.status === 0,
      (py.stderr || '').trim().split('\n').slice(-1)[0]);
    await page.click('#logout');
    await page.waitForURL(/\/login/);
    ok('real binary: log out', true);
    await ctx.close();
  } finally {
    for (const k of kids) k.kill('SIGTERM');
    await sleep(300);
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  }
}


// ---------- after the browser: changes that end sessions ----------

async function laterTests() {
  const s = await login(PASSWORD);
  const auth = { Cookie: s.cookie, 'X-CSRF-Token': s.csrf };
  await step('body limit', async () => {
    const big = await jsonPost('/api/settings/mode', { mode: 'x'.repeat(1100 * 1024) }, auth);
    ok('a body over 1 MiB is refused (413)', big.status === 413, String(big.status));
  });
  await step('certificate upload', async () => {
    const cert = fs.readFileSync(path.join(STATE, 'ui-cert.pem'), 'utf8');
    const key = fs.readFileSync(path.join(STATE, 'ui-key.pem'), 'utf8');
    const bad = await jsonPost('/api/settings/certificate', { cert_pem: cert, key_pem: 'not a key' }, auth);
    ok('an invalid certificate upload is refused with a reason (422)', bad.status === 422 && bad.json && bad.json.error.length > 5,
      bad.status + ' ' + bad.body);
    ok('the refusal does not echo the key', !bad.body.includes('not a key'));
    const good = await jsonPost('/api/settings/certificate', { cert_pem: cert, key_pem: key }, auth);
    const st = await req('GET', '/api/settings', { headers: { Cookie: s.cookie } });
    ok('a valid certificate upload is used for new connections',
      good.status === 200 && st.status === 200 && st.json.certificate.uploaded === true && !st.body.includes('PRIVATE'),
      good.status + ' ' + good.body);
  });
  await step('password change', async () => {
    const other = await login(PASSWORD);
    const wrong = await jsonPost('/api/settings/password', { current: 'nope-nope-nope', new: 'a-new-password-1' }, auth);
    ok('a password change with a wrong current password is refused (403)', wrong.status === 403, String(wrong.status));
    const short = await jsonPost('/api/settings/password', { current: PASSWORD, new: 'short' }, auth);
    ok('a too short new password is refused (400)', short.status === 400, String(short.status));
    const r = await jsonPost('/api/settings/password', { current: PASSWORD, new: 'a-new-password-1' }, auth);
    const m = /__Host-wg_session=([0-9a-f]+)/.exec((r.headers['set-cookie'] || []).join(';'));
    ok('the password changes and this browser gets a new session', r.status === 200 && !!m && r.json.csrf,
      r.status + ' ' + r.body);
    const oldS = await req('GET', '/api/session', { headers: { Cookie: other.cookie } });
    const newS = await req('GET', '/api/session', { headers: { Cookie: '__Host-wg_session=' + (m ? m[1] : 'x') } });
    ok('other sessions end with a password change', oldS.status === 401 && newS.status === 200,
      oldS.status + ' ' + newS.status);
    const oldPw = await login(PASSWORD);
    const newPw = await login('a-new-password-1');
    ok('the old password no longer works, the new one does', oldPw.r.status === 401 && newPw.r.status === 200,
      oldPw.r.status + ' ' + newPw.r.status);
  });
}

// A second UI with a one-second idle timeout: an idle session ends.
async function idleTest(browser) {
  const st = path.resolve(ART, 'state-idle');
  const p2 = spawn(HARNESS, ['--state-dir', st, '--listen', '127.0.0.1:0', '--session-idle-s', '1'],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  let o2 = '', e2 = '';
  p2.stdout.on('data', (d) => { o2 += d; });
  p2.stderr.on('data', (d) => { e2 += d; });
  const save = [BASE, HOSTPORT];
  try {
    const m = await waitFor(() => /ui listening on https:\/\/([0-9.]+:\d+)/.exec(e2), 20000, 'the second UI');
    HOSTPORT = m[1];
    BASE = 'https://' + HOSTPORT;
    const pw = (await waitFor(() => /password=(\S+)/.exec(o2), 5000, 'its password'))[1];
    const s = await login(pw);
    const fresh = await req('GET', '/api/session', { headers: { Cookie: s.cookie } });
    await sleep(2300);
    const idle = await req('GET', '/api/session', { headers: { Cookie: s.cookie } });
    ok('an idle session ends after the idle timeout', fresh.status === 200 && idle.status === 401,
      fresh.status + ' ' + idle.status);
    // an unattended tab stops polling (which would keep it alive) and logs out
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    await page.goto(BASE + '/login');
    await page.fill('#password', pw);
    await page.click('#login-button');
    await page.waitForURL(BASE + '/overview', { timeout: 8000 });
    await page.waitForURL(/\/login\?idle=1/, { timeout: 8000 });
    await page.locator('#login-error').waitFor({ timeout: 3000 });
    ok('an unattended page logs out by itself', /without activity/.test(await page.textContent('#login-error')));
    await page.screenshot({ path: path.join(ART, 'screens', '17-idle-logout.png') });
    await ctx.close();
  } finally {
    [BASE, HOSTPORT] = save;
    p2.stdin.end('quit\n');
    await Promise.race([new Promise((r) => p2.on('exit', r)), sleep(3000)]);
    if (p2.exitCode === null) p2.kill('SIGKILL');
  }
}

let finished = false;
async function finish(timedOut) {
  if (finished) return;
  finished = true;
  clearTimeout(killer);
  try { proc.stdin.write('quit\n'); } catch (e) { /* gone */ }
  await Promise.race([new Promise((r) => proc.on('exit', r)), sleep(3000)]);
  if (proc.exitCode === null) proc.kill('SIGKILL');
  if (timedOut) failed++;
  fs.writeFileSync(path.join(ART, 'results.txt'), results.join('\n') + '\n');
  console.log('ui: ' + passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
}

try {
  const m = await waitFor(() => /ui listening on https:\/\/([0-9.]+:\d+)/.exec(err), 20000, 'the UI to listen');
  HOSTPORT = m[1];
  BASE = 'https://' + HOSTPORT;
  PASSWORD = (await waitFor(() => /ui password \(first start\): user=admin password=(\S+)/.exec(out), 5000, 'the password'))[1];
  TOKEN = fs.readFileSync(path.join(STATE, 'ui-metrics.token'), 'utf8').trim();
  ok('the UI logs its URL and prints the first-start password once',
    (out.match(/ui password \(first start\)/g) || []).length === 1);
  const mode = (p) => (fs.statSync(path.join(STATE, p)).mode & 0o777).toString(8);
  ok('UI key and metrics token are 0600', mode('ui-key.pem') === '600' && mode('ui-metrics.token') === '600',
    mode('ui-key.pem') + ' ' + mode('ui-metrics.token'));
  await securityTests();
  await browserTests();
  await laterTests();
  ok('the first-start password never reached the log but once', (err.match(new RegExp(PASSWORD, 'g')) || []).length === 1);
} catch (e) {
  ok('run', false, e && e.stack ? e.stack : String(e));
}
await finish(false);

// The Ory Elements React test app (e2e/elements, built by run.sh) served beside a Latch that
// is configured as a Kratos user would for Elements: CORS with credentials for the app's
// origin, every `ui_url` on the app's pages, passkeys with the app's origin, password and
// code sign-up, verification and recovery by code. Both listen on `localhost` (different
// ports: cross-origin but same-site, so Latch's Lax cookies travel with the app's fetches).
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const { REPO } = require('./latch');

const DIST = path.resolve(__dirname, '..', 'elements', 'dist');
const SCHEMA = path.join(REPO, 'crates', 'latch', 'src', 'config', 'dev-identity.schema.json');
const BIN = process.env.LATCH_BIN || path.join(process.env.CARGO_TARGET_DIR || path.join(REPO, 'target'), 'debug', 'latch');

const TYPES = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html; charset=utf-8', '.svg': 'image/svg+xml' };

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

/** Serves dist/ as a single-page app; /config.js tells the app where Latch is. */
async function startApp(latchUrlRef) {
  if (!fs.existsSync(path.join(DIST, 'index.html'))) {
    throw new Error(`no Elements app build at ${DIST}: run e2e/run.sh (or npm ci && npm run build in e2e/elements)`);
  }
  const index = fs.readFileSync(path.join(DIST, 'index.html'));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/config.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' });
      res.end(`window.LATCH_URL = ${JSON.stringify(latchUrlRef.url)};\n`);
      return;
    }
    const file = path.normalize(path.join(DIST, url.pathname));
    if (file.startsWith(path.join(DIST, 'assets')) && fs.existsSync(file) && fs.statSync(file).isFile()) {
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(index);
  });
  const port = await listen(server);
  return { origin: `http://localhost:${port}`, server };
}

async function freePort() {
  const s = http.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

async function waitReady(url, child, logs, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`latch exited with ${child.exitCode}:\n${logs.join('')}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch (_) {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`latch did not become ready at ${url}:\n${logs.join('')}`);
}

/** The Latch configuration for an Elements app at `app` (origin) and Latch at `publicUrl`. */
function latchConfig(app, publicUrl, adminUrl, publicPort, adminPort) {
  const session = { hooks: [{ hook: 'session' }] };
  return {
    dsn: 'memory',
    dev: true,
    serve: {
      public: {
        host: '127.0.0.1',
        port: publicPort,
        base_url: `${publicUrl}/`,
        cors: { enabled: true, allowed_origins: [app], allow_credentials: true },
      },
      admin: { host: '127.0.0.1', port: adminPort, base_url: `${adminUrl}/` },
    },
    identity: { default_schema_id: 'default', schemas: [{ id: 'default', url: `file://${SCHEMA}` }] },
    selfservice: {
      default_browser_return_url: `${app}/`,
      allowed_return_urls: [`${app}/`],
      methods: {
        password: { enabled: true },
        code: { enabled: true, passwordless_enabled: true },
        passkey: {
          enabled: true,
          config: { rp: { id: 'localhost', display_name: 'Latch Elements test', origins: [app] } },
        },
      },
      flows: {
        error: { ui_url: `${app}/error` },
        login: { ui_url: `${app}/login` },
        registration: { ui_url: `${app}/registration`, after: { password: session, code: session, passkey: session } },
        settings: { ui_url: `${app}/settings`, privileged_session_max_age: '15m' },
        recovery: { enabled: true, use: 'code', ui_url: `${app}/recovery` },
        verification: { enabled: true, use: 'code', ui_url: `${app}/verification` },
      },
    },
    courier: { smtp: { connection_uri: 'smtp://127.0.0.1:9/?disable_starttls=true', from_address: 'no-reply@latch.test' } },
    secrets: {
      cookie: ['elements-e2e-cookie-secret-0123456789'],
      cipher: ['elements-e2e-cipher-secret-01234'],
      default: ['elements-e2e-default-secret-0123456789'],
    },
    latch: { rate_limits: { enabled: false } },
  };
}

/** Starts Latch and the app; resolves to { app, latch, admin, codeFor(email, seen), stop() }. */
async function startElements() {
  if (!fs.existsSync(BIN)) throw new Error(`no latch binary at ${BIN}: run \`cargo build -p latch\` or set LATCH_BIN`);
  const ref = { url: '' };
  const app = await startApp(ref);
  const publicPort = await freePort();
  const adminPort = await freePort();
  const publicUrl = `http://localhost:${publicPort}`;
  const adminUrl = `http://localhost:${adminPort}`;
  ref.url = publicUrl;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latch-e2e-elements-'));
  const configFile = path.join(dir, 'latch.json');
  fs.writeFileSync(configFile, JSON.stringify(latchConfig(app.origin, publicUrl, adminUrl, publicPort, adminPort), null, 2));
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'DSN' || k.startsWith('SERVE_') || k.startsWith('SELFSERVICE_') || k.startsWith('SECRETS_')) continue;
    env[k] = v;
  }
  const logs = [];
  const child = spawn(BIN, ['serve', '--dev', '-c', configFile], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => logs.push(d.toString()));
  child.stderr.on('data', (d) => logs.push(d.toString()));
  await waitReady(`http://127.0.0.1:${publicPort}/health/ready`, child, logs);

  /** Messages to `email` from the admin courier API (bodies shown in dev mode), newest first. */
  async function messagesFor(email) {
    const res = await fetch(`${adminUrl}/admin/courier/messages?recipient=${encodeURIComponent(email)}`);
    if (!res.ok) throw new Error(`admin courier API: ${res.status}`);
    const list = await res.json();
    return list.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  }

  return {
    app: app.origin,
    latch: publicUrl,
    admin: adminUrl,
    logs,
    messagesFor,
    /** Waits for more than `seen` messages to `email`; returns the newest one's 6-digit code. */
    async codeFor(email, seen = 0) {
      const deadline = Date.now() + 10000;
      for (;;) {
        const msgs = await messagesFor(email);
        if (msgs.length > seen) {
          const m = /\b(\d{6})\b/.exec(msgs[0].body || '');
          if (!m) throw new Error(`no 6-digit code in the message to ${email}: ${msgs[0].body}`);
          return m[1];
        }
        if (Date.now() > deadline) throw new Error(`no new message to ${email}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await new Promise((r) => app.server.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startElements };

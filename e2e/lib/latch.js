// Starts `latch serve --dev` (zero configuration) in a fresh temporary directory on free
// ports and stops it again. Every test file gets its own server and database.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');

function latchBinary() {
  if (process.env.LATCH_BIN) return process.env.LATCH_BIN;
  const target = process.env.CARGO_TARGET_DIR || path.join(REPO, 'target');
  return path.join(target, 'debug', 'latch');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(url, child, logs, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`latch exited with ${child.exitCode}:\n${logs.join('')}`);
    }
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch (_) {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`latch did not become ready at ${url}:\n${logs.join('')}`);
}

/**
 * Starts Latch; resolves to { publicUrl, adminUrl, dir, logs, stop() }. `options.env` adds
 * configuration by Kratos' environment variables (e.g. SELFSERVICE_METHODS_TOTP_ENABLED) for
 * methods that are off by default.
 */
async function startLatch(options = {}) {
  const bin = latchBinary();
  if (!fs.existsSync(bin)) {
    throw new Error(`no latch binary at ${bin}: run \`cargo build -p latch\` or set LATCH_BIN`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latch-e2e-'));
  const publicPort = await freePort();
  const adminPort = await freePort();
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Kratos variables from the developer's shell must not leak into the dev server.
    if (k === 'DSN' || k.startsWith('SERVE_') || k.startsWith('SELFSERVICE_') || k.startsWith('SECRETS_')) continue;
    env[k] = v;
  }
  Object.assign(env, options.env || {});
  env.SERVE_PUBLIC_PORT = String(publicPort);
  env.SERVE_ADMIN_PORT = String(adminPort);
  // Browser tests never ask the internet (the breach check is on by default, as in Kratos).
  env.SELFSERVICE_METHODS_PASSWORD_CONFIG_HAVEIBEENPWNED_ENABLED = 'false';
  const logs = [];
  const child = spawn(bin, ['serve', '--dev'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => logs.push(d.toString()));
  child.stderr.on('data', (d) => logs.push(d.toString()));
  const publicUrl = `http://localhost:${publicPort}`;
  const adminUrl = `http://localhost:${adminPort}`;
  await waitReady(`http://127.0.0.1:${publicPort}/health/ready`, child, logs);
  return {
    publicUrl,
    adminUrl,
    dir,
    logs,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startLatch, REPO };

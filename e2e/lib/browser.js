// Headless Debian Chromium through playwright-core, with a fresh profile per context.
// Never downloads a browser: CHROMIUM (default /usr/bin/chromium) must exist.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ARTIFACTS = path.resolve(__dirname, '..', 'artifacts');

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * A fresh browser context. Options: { javaScriptEnabled, viewport }.
 * Resolves to { context, page, cspViolations, close() }; `cspViolations` collects console
 * errors that report Content-Security-Policy blocks.
 */
async function openBrowser(options = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latch-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ARGS,
    viewport: options.viewport || { width: 900, height: 1000 },
    javaScriptEnabled: options.javaScriptEnabled !== false,
  });
  const page = context.pages()[0] || (await context.newPage());
  const cspViolations = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
  });
  return {
    context,
    page,
    cspViolations,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot to e2e/artifacts/<name>.png and returns its path. */
async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * A CDP virtual authenticator on `page` (for passkey tests): resident keys, user
 * verification, automatic presence. Resolves to { authenticatorId, cdp, credentials() };
 * the authenticator lives as long as the `cdp` session (WebAuthn.disable removes it).
 */
async function addVirtualAuthenticator(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return {
    authenticatorId,
    cdp,
    async credentials() {
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      return credentials;
    },
  };
}

/**
 * Records every navigator.credentials.get/create call of the context's pages, across
 * navigations. Resolves to an array that fills as pages call: { id, kind, mediation, path,
 * outcome } with outcome 'pending', 'resolved' or 'rejected: <name>'. Installed before any
 * page script runs (DevTools bindings and init scripts are not subject to the page's CSP).
 */
async function recordWebAuthnCalls(context) {
  const calls = [];
  await context.exposeBinding('__latchE2eWebAuthn', (_source, event) => {
    const known = calls.find((c) => c.id === event.id);
    if (known) Object.assign(known, event);
    else calls.push(event);
  });
  await context.addInitScript(() => {
    const creds = navigator.credentials;
    const report = window.__latchE2eWebAuthn;
    for (const kind of ['get', 'create']) {
      const original = creds[kind].bind(creds);
      creds[kind] = (options = {}) => {
        const id = `${Date.now()}-${Math.random()}`;
        report({ id, kind, mediation: options.mediation || null, path: location.pathname, outcome: 'pending' });
        return original(options).then(
          (v) => {
            report({ id, outcome: 'resolved' });
            return v;
          },
          (e) => {
            report({ id, outcome: `rejected: ${e && e.name}` });
            throw e;
          },
        );
      };
    }
  });
  return calls;
}

/** Turns the virtual authenticator's automatic user presence on or off. */
async function setAutomaticPresence(authenticator, enabled) {
  await authenticator.cdp.send('WebAuthn.setAutomaticPresenceSimulation', {
    authenticatorId: authenticator.authenticatorId,
    enabled,
  });
}

module.exports = {
  openBrowser,
  screenshot,
  addVirtualAuthenticator,
  recordWebAuthnCalls,
  setAutomaticPresence,
  ARTIFACTS,
};

// Passkeys through the built-in UI with a CDP virtual authenticator: sign up, sign out, sign
// in with the button and through the browser's autofill (conditional mediation), and axe on
// the passkey pages. Pages are opened at http://localhost:<port> so the origin matches the
// `--dev` relying party id (localhost).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startLatch } = require('../lib/latch');
const { openBrowser, screenshot, addVirtualAuthenticator, recordWebAuthnCalls, setAutomaticPresence } = require('../lib/browser');
const { seriousViolations } = require('../lib/a11y');
const { uniqueEmail, signOut, signUpWithPasskey, signInWithPasskeyButton } = require('../lib/flows');

let latch;
before(async () => {
  latch = await startLatch();
});
after(async () => {
  if (latch) await latch.stop();
});

/** A browser with a virtual authenticator, the WebAuthn call recorder and webauthn.js errors. */
async function passkeyBrowser() {
  const b = await openBrowser();
  b.scriptErrors = [];
  b.page.on('console', (msg) => {
    if (msg.type() === 'error' && /Latch:/.test(msg.text())) b.scriptErrors.push(msg.text());
  });
  b.page.on('pageerror', (e) => b.scriptErrors.push(String(e)));
  b.calls = await recordWebAuthnCalls(b.context);
  b.authenticator = await addVirtualAuthenticator(b.context, b.page);
  return b;
}

async function assertAccessible(page, name) {
  await page.waitForLoadState('load');
  const violations = await seriousViolations(page);
  await screenshot(page, name);
  assert.deepEqual(violations, [], `${name}: ${JSON.stringify(violations, null, 2)}`);
}

const summary = (calls) => calls.map((c) => `${c.kind}${c.mediation ? `(${c.mediation})` : ''} ${c.path} ${c.outcome}`);

test('passkey sign-up, sign out, then sign in with the passkey button', async () => {
  const b = await passkeyBrowser();
  try {
    const { page } = b;
    const base = latch.publicUrl;
    const email = uniqueEmail('passkey');

    await page.goto(`${base}/ui/registration`);
    await page.getByLabel('Email address').fill(email);
    await page.locator('button[name="method"][value="profile"]').click();
    await page.waitForURL(/\/ui\/registration\?flow=/);
    const register = page.getByRole('button', { name: 'Sign up with passkey' });
    await register.waitFor();
    await assertAccessible(page, 'passkey-registration');

    // The page also asks for a password (another method): it must not block the passkey.
    await register.click();
    await page.waitForURL(`${base}/ui/welcome`);
    assert.equal(await page.getByTestId('who').textContent(), email);
    const creds = await b.authenticator.credentials();
    assert.equal(creds.length, 1, 'the authenticator holds one passkey');
    assert.equal(creds[0].isResidentCredential, true, 'a discoverable credential');
    assert.equal(creds[0].rpId, 'localhost');
    await screenshot(page, 'passkey-welcome');

    await page.goto(`${base}/ui/settings`);
    assert.match(page.url(), /\/ui\/settings\?flow=/);
    await assertAccessible(page, 'passkey-settings');
    await page.goto(`${base}/ui/welcome`);

    await signOut(page, base);
    // Without automatic presence the autofill request the sign-in page starts stays pending,
    // as in a real browser until the person picks a passkey; the button must take over.
    await setAutomaticPresence(b.authenticator, false);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.waitForURL(/\/ui\/login\?flow=/);
    await page.getByRole('button', { name: 'Sign in with passkey' }).waitFor();
    await waitFor(() => b.calls.some((c) => c.kind === 'get' && c.mediation === 'conditional' && c.outcome === 'pending'));
    await assertAccessible(page, 'passkey-login');
    await setAutomaticPresence(b.authenticator, true);

    await signInWithPasskeyButton(page, base);
    assert.equal(await page.getByTestId('who').textContent(), email);
    const login = summary(b.calls.filter((c) => c.path === '/ui/login'));
    assert.deepEqual(login, ['get(conditional) /ui/login rejected: AbortError', 'get /ui/login resolved'], 'the autofill request was aborted for the button');
    assert.deepEqual(b.cspViolations, [], 'no Content-Security-Policy violations');
    assert.deepEqual(b.scriptErrors, [], 'webauthn.js reported no errors');
  } finally {
    await b.close();
  }
});

test('passkey sign-in through autofill (conditional mediation)', async () => {
  const b = await passkeyBrowser();
  try {
    const { page } = b;
    const base = latch.publicUrl;
    const email = uniqueEmail('autofill');
    await signUpWithPasskey(page, base, email);
    await signOut(page, base);

    // The sign-in page starts a conditional request on load (autocomplete="username
    // webauthn" on the identifier). Chromium's virtual authenticator environment answers it
    // without the autofill dropdown (automatic presence), so no selection is needed:
    // webauthn.js submits the credential and the welcome page follows.
    await Promise.all([page.waitForURL(`${base}/ui/welcome`), page.goto(`${base}/ui/login`)]);
    assert.equal(await page.getByTestId('who').textContent(), email);
    const login = b.calls.filter((c) => c.path === '/ui/login');
    assert.deepEqual(summary(login), ['get(conditional) /ui/login resolved'], 'one conditional request, no modal one');
    await screenshot(page, 'passkey-autofill-welcome');
    assert.deepEqual(b.scriptErrors, [], 'webauthn.js reported no errors');
  } finally {
    await b.close();
  }
});

test('the sign-in page offers passkeys to the autofill', async () => {
  const b = await passkeyBrowser();
  try {
    const { page } = b;
    await setAutomaticPresence(b.authenticator, false);
    await page.goto(`${latch.publicUrl}/ui/login`);
    const identifier = page.getByLabel('Email address');
    assert.equal(await identifier.getAttribute('autocomplete'), 'username webauthn');
    assert.equal(await page.evaluate(() => PublicKeyCredential.isConditionalMediationAvailable()), true);
    await waitFor(() => b.calls.some((c) => c.kind === 'get' && c.mediation === 'conditional'));
    await identifier.focus();
    assert.deepEqual(summary(b.calls), ['get(conditional) /ui/login pending']);
    await page.getByRole('button', { name: 'Sign in with passkey' }).waitFor();
    assert.deepEqual(b.scriptErrors, []);
  } finally {
    await b.close();
  }
});

async function waitFor(predicate, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${predicate}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

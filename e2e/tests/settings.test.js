// The settings page of the built-in UI: one section per method, a password change, and
// recovery codes (lookup secrets) that step a password session up to aal2, each page checked
// with axe.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startLatch } = require('../lib/latch');
const { openBrowser, screenshot } = require('../lib/browser');
const { seriousViolations } = require('../lib/a11y');
const { uniqueEmail, signUpWithPassword, signInWithPassword, signInFirstFactor, signOut, PASSWORD } = require('../lib/flows');

let latch;
before(async () => {
  latch = await startLatch({
    env: {
      SELFSERVICE_METHODS_TOTP_ENABLED: 'true',
      SELFSERVICE_METHODS_LOOKUP_SECRET_ENABLED: 'true',
    },
  });
});
after(async () => {
  if (latch) await latch.stop();
});

async function assertAccessible(b, name) {
  await b.page.waitForLoadState('load');
  const violations = await seriousViolations(b.page);
  await screenshot(b.page, name);
  assert.deepEqual(violations, [], `${name}: ${JSON.stringify(violations, null, 2)}`);
  assert.deepEqual(b.cspViolations, [], `${name}: CSP violations`);
}

async function whoami(b) {
  // The pages' CSP allows no fetch: ask with the browser context's cookies instead.
  const res = await b.context.request.get(`${latch.publicUrl}/sessions/whoami`, { headers: { Accept: 'application/json' } });
  assert.equal(res.status(), 200);
  return res.json();
}

test('settings show a section per method, each its own form', async () => {
  const base = latch.publicUrl;
  const b = await openBrowser();
  try {
    const { page } = b;
    await signUpWithPassword(page, base, uniqueEmail('sections'));
    await page.goto(`${base}/ui/settings`);
    await page.waitForURL(/\/ui\/settings\?flow=/);
    const headings = await page.locator('section.settings-section h2').allTextContents();
    for (const h of ['Profile', 'Password', 'Authenticator app', 'Recovery codes', 'Passkeys']) {
      assert.ok(headings.includes(h), `a "${h}" section in ${JSON.stringify(headings)}`);
    }
    // Every section posts its own form with the CSRF token.
    const forms = page.locator('section.settings-section form');
    assert.equal(await forms.count(), headings.length);
    for (let i = 0; i < headings.length; i += 1) {
      assert.equal(await forms.nth(i).locator('input[name="csrf_token"]').count(), 1, `CSRF token in ${headings[i]}`);
    }
    assert.equal(await page.locator('section[data-group="totp"] img#totp_qr').count(), 1, 'the QR code is an image');
    await assertAccessible(b, 'settings-sections');
  } finally {
    await b.close();
  }
});

test('change the password in settings, then sign in with the new one only', async () => {
  const base = latch.publicUrl;
  const email = uniqueEmail('pwchange');
  const next = 'another long and unusual passphrase 7';
  const b = await openBrowser();
  try {
    const { page } = b;
    await signUpWithPassword(page, base, email);
    await page.goto(`${base}/ui/settings`);
    await page.waitForURL(/\/ui\/settings\?flow=/);
    const section = page.locator('section[data-group="password"]');
    await section.getByLabel('Password').fill(next);
    await section.locator('button[name="method"][value="password"]').click();
    await page.waitForURL(/\/ui\/settings\?flow=/);
    await page.locator('[data-message-id="1050001"]').waitFor();
    await assertAccessible(b, 'settings-password-saved');
    await page.goto(`${base}/ui/welcome`);
    await signOut(page, base);

    // The old password is refused, the new one signs in.
    await page.goto(`${base}/ui/login`);
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.locator('button[name="method"][value="password"]').click();
    await page.waitForURL(/\/ui\/login\?flow=/);
    await page.locator('[data-message-id="4000006"]').waitFor();
    await signInWithPassword(page, base, email, next);
    assert.equal(await page.getByTestId('who').textContent(), email);
  } finally {
    await b.close();
  }
});

test('save recovery codes in settings, then step a password session up to aal2 with one', async () => {
  const base = latch.publicUrl;
  const email = uniqueEmail('lookup');
  let codes;
  const b = await openBrowser();
  try {
    const { page } = b;
    await signUpWithPassword(page, base, email);
    await page.goto(`${base}/ui/settings`);
    await page.waitForURL(/\/ui\/settings\?flow=/);
    await page.locator('button[name="lookup_secret_regenerate"]').click();
    await page.waitForURL(/\/ui\/settings\?flow=/);
    codes = await page.locator('section[data-group="lookup_secret"] ul.secrets code').allTextContents();
    assert.equal(codes.length, 12, `twelve codes shown: ${JSON.stringify(codes)}`);
    await assertAccessible(b, 'settings-recovery-codes');
    await page.locator('button[name="lookup_secret_confirm"]').click();
    await page.waitForURL(/\/ui\/settings\?flow=/);
    await page.locator('[data-message-id="1050001"]').waitFor();
    // Confirmed codes are no longer shown; the section offers to reveal or regenerate.
    assert.equal(await page.locator('section[data-group="lookup_secret"] ul.secrets').count(), 0);
    await page.locator('button[name="lookup_secret_reveal"]').waitFor();
  } finally {
    await b.close();
  }

  const c = await openBrowser();
  try {
    const { page } = c;
    await signInFirstFactor(page, base, email);
    // The aal1 session does not satisfy `highest_available` for an account with codes: the
    // browser was sent on to the second-factor page.
    assert.match(page.url(), /\/ui\/login\?flow=/);
    const res = await c.context.request.get(`${base}/sessions/whoami`, { headers: { Accept: 'application/json' } });
    assert.equal(res.status(), 403);
    assert.equal((await res.json()).error.id, 'session_aal2_required');
    await assertAccessible(c, 'login-aal2-recovery-code');
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), "Confirm it's you");
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Create an account' }).count(), 0, 'no sign-up link on the second-factor page');
    await page.locator('input[name="lookup_secret"]').fill(codes[0]);
    await page.locator('button[name="method"][value="lookup_secret"]').click();
    await page.waitForURL(`${base}/ui/welcome`);
    const who = await whoami(c);
    assert.equal(who.authenticator_assurance_level, 'aal2');
    assert.deepEqual(
      who.authentication_methods.map((m) => m.method),
      ['password', 'lookup_secret'],
    );
  } finally {
    await c.close();
  }
});

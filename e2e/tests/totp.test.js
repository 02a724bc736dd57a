// Authenticator apps (TOTP) through the built-in UI: enrol in settings by reading the secret
// the page shows, then step a password session up to aal2 with a code. Codes are computed
// here (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps), as an authenticator app would.
'use strict';

const crypto = require('node:crypto');
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startLatch } = require('../lib/latch');
const { openBrowser, screenshot } = require('../lib/browser');
const { uniqueEmail, signUpWithPassword, signInFirstFactor } = require('../lib/flows');

/** Decodes RFC 4648 base32 (no padding). */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    assert.ok(v >= 0, `base32 character ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The code of `secret` for the 30 s step `offset` steps from now. */
function totp(secret, offset = 0) {
  const step = Math.floor(Date.now() / 1000 / 30) + offset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32(secret)).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(at) & 0x7fffffff) % 1000000;
  return String(value).padStart(6, '0');
}

let latch;
before(async () => {
  latch = await startLatch({ env: { SELFSERVICE_METHODS_TOTP_ENABLED: 'true' } });
});
after(async () => {
  if (latch) await latch.stop();
});

test('enrol an authenticator app in settings, then step a password session up to aal2', async () => {
  const base = latch.publicUrl;
  const email = uniqueEmail('totp');
  let secret;
  const b = await openBrowser();
  try {
    const { page } = b;
    await signUpWithPassword(page, base, email);
    await page.goto(`${base}/ui/settings`);
    await page.waitForURL(/\/ui\/settings\?flow=/);
    const qr = page.locator('img#totp_qr');
    await qr.waitFor();
    assert.match(await qr.getAttribute('src'), /^data:image\/png;base64,/);
    assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth === 256), 'the QR image decodes');
    secret = (await page.locator('[data-message-id="1050006"]').textContent()).trim();
    assert.match(secret, /^[A-Z2-7]{32}$/);
    await screenshot(page, 'settings-totp');

    // A wrong code is announced; the right one links the app.
    const wrong = totp(secret) === '000000' ? '111111' : '000000';
    await page.getByLabel('Verify code').fill(wrong);
    await page.locator('button[name="method"][value="totp"]').click();
    await page.waitForURL(/\/ui\/settings\?flow=/);
    await page.getByText('The provided authentication code is invalid').first().waitFor();
    await page.getByLabel('Verify code').fill(totp(secret));
    await page.locator('button[name="method"][value="totp"]').click();
    await page.waitForURL(/\/ui\/settings\?flow=/);
    await page.locator('button[name="totp_unlink"]').waitFor();
    assert.deepEqual(b.cspViolations, [], 'no Content-Security-Policy violations');
  } finally {
    await b.close();
  }

  const c = await openBrowser();
  try {
    const { page } = c;
    await page.goto(`${base}/ui/login`);
    // The account has an app: after the password Latch sends the browser on to the aal2 page
    // (session.whoami.required_aal: highest_available), as Kratos does.
    await signInFirstFactor(page, base, email);
    assert.match(page.url(), /\/ui\/login\?flow=/);
    await screenshot(page, 'login-aal2-totp');
    // The next step's code: the enrolment used this step's, which is accepted only once.
    await page.getByLabel('Authentication code').fill(totp(secret, 1));
    await page.locator('button[name="method"][value="totp"]').click();
    await page.waitForURL(`${base}/ui/welcome`);
    // The page's CSP allows no fetch: ask with the browser context's cookies instead.
    const res = await c.context.request.get(`${base}/sessions/whoami`, { headers: { Accept: 'application/json' } });
    assert.equal(res.status(), 200);
    const who = await res.json();
    assert.equal(who.authenticator_assurance_level, 'aal2');
    assert.deepEqual(
      who.authentication_methods.map((m) => m.method),
      ['password', 'totp'],
    );
  } finally {
    await c.close();
  }
});

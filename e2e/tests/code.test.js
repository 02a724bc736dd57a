// One-time codes through the built-in UI: sign up and sign in with a code read from the
// development mailbox (`--dev` without SMTP keeps mail in the outbox).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startLatch } = require('../lib/latch');
const { openBrowser, screenshot } = require('../lib/browser');
const { uniqueEmail, signOut, codeFromMailbox, mailsFor, submitCode } = require('../lib/flows');

let latch;
before(async () => {
  latch = await startLatch();
});
after(async () => {
  if (latch) await latch.stop();
});

test('code sign-up, sign out, then code sign-in', async () => {
  const b = await openBrowser();
  try {
    const { page, context } = b;
    const base = latch.publicUrl;
    const email = uniqueEmail('code');

    // Sign up: profile step, then "send code".
    await page.goto(`${base}/ui/registration`);
    await page.getByLabel('Email address').fill(email);
    await page.locator('button[name="method"][value="profile"]').click();
    await page.waitForURL(/\/ui\/registration\?flow=/);
    await page.locator('button[type="submit"][name="method"][value="code"]').click();
    await page.waitForURL(/\/ui\/registration\?flow=/);
    await page.locator('input[name="code"]').waitFor();
    await screenshot(page, 'code-registration');
    const signUpCode = await codeFromMailbox(context, base, email, 0);
    await submitCode(page, base, signUpCode);
    assert.equal(await page.getByTestId('who').textContent(), email);

    await signOut(page, base);

    // Sign in: identifier, "send code", then the newest code.
    const before = (await mailsFor(context, base, email)).length;
    await page.goto(`${base}/ui/login`);
    await page.getByLabel('Email address').fill(email);
    await page.locator('button[type="submit"][name="method"][value="code"]').click();
    await page.waitForURL(/\/ui\/login\?flow=/);
    await page.locator('input[name="code"]').waitFor();
    await screenshot(page, 'code-login');
    const signInCode = await codeFromMailbox(context, base, email, before);
    await submitCode(page, base, signInCode);
    assert.equal(await page.getByTestId('who').textContent(), email);
    assert.deepEqual(b.cspViolations, [], 'no Content-Security-Policy violations');
  } finally {
    await b.close();
  }
});

test('a wrong code is refused on the page', async () => {
  const b = await openBrowser();
  try {
    const { page, context } = b;
    const base = latch.publicUrl;
    const email = uniqueEmail('code-wrong');
    await page.goto(`${base}/ui/registration`);
    await page.getByLabel('Email address').fill(email);
    await page.locator('button[name="method"][value="profile"]').click();
    await page.waitForURL(/\/ui\/registration\?flow=/);
    await page.locator('button[type="submit"][name="method"][value="code"]').click();
    await page.locator('input[name="code"]').waitFor();
    const code = await codeFromMailbox(context, base, email, 0);
    const wrong = code === '000000' ? '111111' : '000000';
    await page.locator('input[name="code"]').fill(wrong);
    await page.locator('button[type="submit"][name="method"][value="code"]').click();
    await page.waitForURL(/\/ui\/registration\?flow=/);
    await page.getByRole('alert').first().waitFor();
    await screenshot(page, 'code-registration-invalid');
    // The right code still works afterwards.
    await submitCode(page, base, code);
    assert.equal(await page.getByTestId('who').textContent(), email);
  } finally {
    await b.close();
  }
});

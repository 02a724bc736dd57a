// Password sign-up, welcome page, sign-out and sign-in through the built-in UI.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startLatch } = require('../lib/latch');
const { openBrowser, screenshot } = require('../lib/browser');
const { uniqueEmail, signUpWithPassword, signInWithPassword, signOut, startSignUp } = require('../lib/flows');

let latch;
before(async () => {
  latch = await startLatch();
});
after(async () => {
  if (latch) await latch.stop();
});

test('password sign-up shows the welcome page, then sign out and sign in again', async () => {
  const b = await openBrowser();
  try {
    const { page } = b;
    const base = latch.publicUrl;
    const email = uniqueEmail('password');
    await signUpWithPassword(page, base, email);
    assert.equal(await page.getByTestId('who').textContent(), email);
    assert.match(await page.getByTestId('traits').textContent(), new RegExp(email.replace(/[.]/g, '\\.')));
    await screenshot(page, 'welcome-signed-in');

    await signOut(page, base);
    await screenshot(page, 'welcome-signed-out');

    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.waitForURL(/\/ui\/login\?flow=/);
    await screenshot(page, 'login');
    await signInWithPassword(page, base, email);
    assert.equal(await page.getByTestId('who').textContent(), email);
    assert.deepEqual(b.cspViolations, [], 'no Content-Security-Policy violations');
  } finally {
    await b.close();
  }
});

test('a wrong password is announced next to the form', async () => {
  const b = await openBrowser();
  try {
    const { page } = b;
    const base = latch.publicUrl;
    await page.goto(`${base}/ui/login`);
    await page.getByLabel('Email address').fill(uniqueEmail('nobody'));
    await page.getByLabel('Password').fill('not the password');
    await page.locator('button[name="method"][value="password"]').click();
    await page.waitForURL(/\/ui\/login\?flow=/);
    const alert = page.getByRole('alert');
    await alert.first().waitFor();
    assert.match(await alert.first().textContent(), /credentials are invalid/);
    await screenshot(page, 'login-invalid');
  } finally {
    await b.close();
  }
});

test('sign-up works with JavaScript turned off', async () => {
  const b = await openBrowser({ javaScriptEnabled: false });
  try {
    const { page } = b;
    const base = latch.publicUrl;
    const email = uniqueEmail('nojs');
    await signUpWithPassword(page, base, email);
    assert.equal(await page.getByTestId('who').textContent(), email);
  } finally {
    await b.close();
  }
});

test('the sign-up page on a small screen', async () => {
  const b = await openBrowser({ viewport: { width: 390, height: 844 } });
  try {
    const { page } = b;
    await startSignUp(page, latch.publicUrl, uniqueEmail('mobile'));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert.equal(overflow, false, 'no horizontal scrolling');
    await screenshot(page, 'registration-mobile');
  } finally {
    await b.close();
  }
});

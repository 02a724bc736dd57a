// axe-core on every built-in page: no serious or critical violations, no CSP violations.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { startLatch, REPO } = require('../lib/latch');
const { openBrowser, screenshot } = require('../lib/browser');
const { seriousViolations } = require('../lib/a11y');
const { uniqueEmail, startSignUp, PASSWORD } = require('../lib/flows');

let latch;
let b;
before(async () => {
  latch = await startLatch();
  b = await openBrowser();
});
after(async () => {
  if (b) await b.close();
  if (latch) await latch.stop();
});

async function check(name) {
  const { page } = b;
  await page.waitForLoadState('load');
  const violations = await seriousViolations(page);
  const file = await screenshot(page, name);
  assert.deepEqual(violations, [], `${name}: ${JSON.stringify(violations, null, 2)}`);
  assert.deepEqual(b.cspViolations, [], `${name}: CSP violations`);
  return file;
}

test('sign-up page (profile step)', async () => {
  await b.page.goto(`${latch.publicUrl}/ui/registration`);
  const file = await check('registration');
  if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
    fs.copyFileSync(file, path.join(REPO, 'docs', 'sign-up.png'));
  }
});

test('sign-up page with a validation error', async () => {
  const { page } = b;
  await page.goto(`${latch.publicUrl}/ui/registration`);
  // Skip the browser's own checks so the server's message is shown.
  await page.getByLabel('Email address').fill('not-an-email');
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.evaluate(() => {
      const input = document.querySelector('input[name="traits.email"]');
      input.type = 'text';
      input.form.noValidate = true;
      input.form.requestSubmit(document.querySelector('button[value="profile"]'));
    }),
  ]);
  assert.match(page.url(), /\/ui\/registration\?flow=/);
  const field = page.getByLabel('Email address');
  assert.equal(await field.getAttribute('aria-invalid'), 'true');
  const described = await field.getAttribute('aria-describedby');
  assert.equal(await page.locator(`#${described}`).getAttribute('role'), 'alert');
  await check('registration-invalid');
});

test('sign-up page (credential step)', async () => {
  await startSignUp(b.page, latch.publicUrl, uniqueEmail('a11y'));
  await check('registration-credentials');
});

test('sign-in page', async () => {
  await b.page.goto(`${latch.publicUrl}/ui/login`);
  await check('login');
});

test('recovery page', async () => {
  await b.page.goto(`${latch.publicUrl}/ui/recovery`);
  await check('recovery');
});

test('verification page', async () => {
  await b.page.goto(`${latch.publicUrl}/ui/verification`);
  await check('verification');
});

test('welcome page (signed out)', async () => {
  await b.page.goto(`${latch.publicUrl}/ui/welcome`);
  await check('welcome-signed-out');
});

test('error page', async () => {
  await b.page.goto(`${latch.publicUrl}/ui/error?id=00000000-0000-4000-8000-000000000000`);
  await check('error-not-found');
});

test('welcome and settings pages (signed in)', async () => {
  const { page } = b;
  await startSignUp(page, latch.publicUrl, uniqueEmail('a11y-in'));
  await page.getByLabel('Password').fill(PASSWORD);
  await page.locator('button[name="method"][value="password"]').click();
  await page.waitForURL(`${latch.publicUrl}/ui/welcome`);
  await check('welcome-signed-in');
  await page.goto(`${latch.publicUrl}/ui/settings`);
  assert.match(page.url(), /\/ui\/settings\?flow=/);
  await check('settings');
});

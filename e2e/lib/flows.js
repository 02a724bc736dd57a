// Steps through the built-in pages the way a person would. New methods (code via the dev
// mailbox, passkeys) add their own helpers here.
'use strict';

const assert = require('node:assert/strict');

let counter = 0;
/** A unique email address for one test. */
function uniqueEmail(prefix = 'user') {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}@example.com`;
}

const PASSWORD = 'a long and unusual passphrase 42';

/** Opens the sign-up page and submits the profile step. */
async function startSignUp(page, base, email) {
  await page.goto(`${base}/ui/registration`);
  assert.match(page.url(), /\/ui\/registration\?flow=/);
  await page.getByLabel('Email address').fill(email);
  await page.locator('button[name="method"][value="profile"]').click();
  await page.waitForURL(/\/ui\/registration\?flow=/);
  await page.locator('input[name="password"]').waitFor();
}

/** Signs up with a password and lands on the welcome page. */
async function signUpWithPassword(page, base, email, password = PASSWORD) {
  await startSignUp(page, base, email);
  await page.getByLabel('Password').fill(password);
  await page.locator('button[name="method"][value="password"]').click();
  await page.waitForURL(`${base}/ui/welcome`);
}

/** Signs in with a password from the sign-in page and lands on the welcome page. */
async function signInWithPassword(page, base, email, password = PASSWORD) {
  if (!/\/ui\/login\?flow=/.test(page.url())) await page.goto(`${base}/ui/login`);
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.locator('button[name="method"][value="password"]').click();
  await page.waitForURL(`${base}/ui/welcome`);
}

/** Clicks "Sign out" on the welcome page. */
async function signOut(page, base) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${base}/ui/welcome`);
  await page.getByText('You are not signed in').waitFor();
}

module.exports = { uniqueEmail, PASSWORD, startSignUp, signUpWithPassword, signInWithPassword, signOut };

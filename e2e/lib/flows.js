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

/**
 * Signs in with a password where the account has a second factor: lands on the welcome page,
 * or on the second-factor sign-in page when the server asks for it right away
 * (`session.whoami.required_aal: highest_available`).
 */
async function signInFirstFactor(page, base, email, password = PASSWORD) {
  if (!/\/ui\/login\?flow=/.test(page.url())) await page.goto(`${base}/ui/login`);
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(password);
  const first = new URL(page.url()).searchParams.get('flow');
  await page.locator('button[name="method"][value="password"]').click();
  await page.waitForURL(
    (url) => url.pathname === '/ui/welcome' || (url.pathname === '/ui/login' && url.searchParams.get('flow') !== first),
  );
}

/** Clicks "Sign out" on the welcome page. */
async function signOut(page, base) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${base}/ui/welcome`);
  await page.getByText('You are not signed in').waitFor();
}

/**
 * Signs up with a passkey: profile step, then the passkey button. The page's context needs a
 * virtual authenticator (browser.addVirtualAuthenticator). Lands on the welcome page.
 */
async function signUpWithPasskey(page, base, email) {
  await page.goto(`${base}/ui/registration`);
  await page.getByLabel('Email address').fill(email);
  await page.locator('button[name="method"][value="profile"]').click();
  await page.waitForURL(/\/ui\/registration\?flow=/);
  const trigger = page.locator('button[name="passkey_register_trigger"]');
  await trigger.waitFor();
  await trigger.click();
  await page.waitForURL(`${base}/ui/welcome`);
}

/** Signs in with the "Sign in with passkey" button and lands on the welcome page. */
async function signInWithPasskeyButton(page, base) {
  if (!/\/ui\/login\?flow=/.test(page.url())) await page.goto(`${base}/ui/login`);
  await page.getByRole('button', { name: 'Sign in with passkey' }).click();
  await page.waitForURL(`${base}/ui/welcome`);
}

/** The messages for `email` in the dev mailbox (newest first), as { body } objects. */
async function mailsFor(context, base, email) {
  const page = await context.newPage();
  try {
    await page.goto(`${base}/ui/dev/mailbox`);
    return await page.getByTestId('mail').evaluateAll(
      (items, to) =>
        items
          .filter((li) => li.querySelector('[data-testid="mail-to"]').textContent.trim() === to)
          .map((li) => ({ body: li.querySelector('[data-testid="mail-body"]').textContent })),
      email,
    );
  } finally {
    await page.close();
  }
}

/**
 * Waits until the dev mailbox holds more than `seen` messages for `email`, then returns the
 * 6-digit code of the newest one. Opens the mailbox in a second tab so the flow stays open.
 */
async function codeFromMailbox(context, base, email, seen = 0) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const mails = await mailsFor(context, base, email);
    if (mails.length > seen) {
      const m = /\b(\d{6})\b/.exec(mails[0].body);
      assert.ok(m, `no 6-digit code in the mail to ${email}: ${mails[0].body}`);
      return m[1];
    }
    if (Date.now() > deadline) throw new Error(`no new mail to ${email} in the dev mailbox`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Submits the code form shown after "send code" and lands on the welcome page. */
async function submitCode(page, base, code) {
  await page.locator('input[name="code"]').fill(code);
  await page.locator('button[type="submit"][name="method"][value="code"]').click();
  await page.waitForURL(`${base}/ui/welcome`);
}

module.exports = {
  uniqueEmail,
  PASSWORD,
  startSignUp,
  signUpWithPassword,
  signInWithPassword,
  signInFirstFactor,
  signOut,
  signUpWithPasskey,
  signInWithPasskeyButton,
  mailsFor,
  codeFromMailbox,
  submitCode,
};

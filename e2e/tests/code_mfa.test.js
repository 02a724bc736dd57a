// One-time codes as a second factor (`selfservice.methods.code.mfa_enabled`) through the
// built-in UI: a password sign-in is sent on to the second-factor page, the code arrives in the
// development mailbox, and the session becomes aal2.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startLatch } = require('../lib/latch');
const { openBrowser, screenshot } = require('../lib/browser');
const { seriousViolations } = require('../lib/a11y');
const { uniqueEmail, signUpWithPassword, signInFirstFactor, signOut, codeFromMailbox, mailsFor, submitCode } = require('../lib/flows');

let latch;
before(async () => {
  latch = await startLatch({
    env: {
      SELFSERVICE_METHODS_CODE_MFA_ENABLED: 'true',
      SELFSERVICE_METHODS_CODE_PASSWORDLESS_ENABLED: 'false',
    },
  });
});
after(async () => {
  if (latch) await latch.stop();
});

test('a password sign-in steps up to aal2 with a code mailed to the account', async () => {
  const base = latch.publicUrl;
  const email = uniqueEmail('codemfa');
  const b = await openBrowser();
  try {
    const { page, context } = b;
    await signUpWithPassword(page, base, email);
    await signOut(page, base);
    const seen = (await mailsFor(context, base, email)).length;

    await signInFirstFactor(page, base, email);
    // The code is the account's only second factor: the page asks for it straight away.
    assert.match(page.url(), /\/ui\/login\?flow=/);
    await page.locator('input[name="code"]').waitFor();
    const violations = await seriousViolations(page);
    await screenshot(page, 'login-aal2-code');
    assert.deepEqual(violations, []);
    const code = await codeFromMailbox(context, base, email, seen);
    await submitCode(page, base, code);
    const res = await context.request.get(`${base}/sessions/whoami`, { headers: { Accept: 'application/json' } });
    assert.equal(res.status(), 200);
    const who = await res.json();
    assert.equal(who.authenticator_assurance_level, 'aal2');
    assert.deepEqual(
      who.authentication_methods.map((m) => m.method),
      ['password', 'code'],
    );
    assert.deepEqual(b.cspViolations, [], 'no Content-Security-Policy violations');
  } finally {
    await b.close();
  }
});

// Recovery by link through the built-in UI: ask for a link, open it from the development
// mailbox in another browser, land signed in on the settings page, set a new password and sign
// in with it; the link works once.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startLatch } = require('../lib/latch');
const { openBrowser, screenshot } = require('../lib/browser');
const { seriousViolations } = require('../lib/a11y');
const { uniqueEmail, signUpWithPassword, signOut, signInWithPassword, mailsFor } = require('../lib/flows');

let latch;
before(async () => {
  latch = await startLatch({
    env: {
      SELFSERVICE_METHODS_LINK_ENABLED: 'true',
      SELFSERVICE_FLOWS_RECOVERY_ENABLED: 'true',
      SELFSERVICE_FLOWS_RECOVERY_USE: 'link',
    },
  });
});
after(async () => {
  if (latch) await latch.stop();
});

/** Waits for a mail to `email` in the dev mailbox and returns the recovery link in it. */
async function linkFromMailbox(context, base, email) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const mails = await mailsFor(context, base, email);
    if (mails.length > 0) {
      const m = /(https?:\/\/\S+\/self-service\/recovery\?flow=[0-9a-f-]+&token=[A-Za-z0-9]+)/.exec(mails[0].body);
      assert.ok(m, `no recovery link in the mail to ${email}: ${mails[0].body}`);
      return m[1];
    }
    if (Date.now() > deadline) throw new Error(`no mail to ${email} in the dev mailbox`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('recovery by link: the link signs in on another browser and continues to settings', async () => {
  const a = await openBrowser();
  const other = await openBrowser();
  const late = await openBrowser();
  try {
    const base = latch.publicUrl;
    const email = uniqueEmail('link');
    await signUpWithPassword(a.page, base, email);
    await signOut(a.page, base);

    // Ask for a link.
    await a.page.goto(`${base}/ui/recovery`);
    await a.page.waitForURL(/\/ui\/recovery\?flow=/);
    await a.page.locator('input[name="email"]').fill(email);
    await a.page.locator('button[type="submit"][name="method"][value="link"]').click();
    await a.page.waitForURL(/\/ui\/recovery\?flow=/);
    await a.page.getByText(/An email containing a recovery link has been sent/).waitFor();
    await screenshot(a.page, 'link-recovery-sent');
    assert.deepEqual(await seriousViolations(a.page), [], 'the sent page is accessible');
    const link = await linkFromMailbox(a.context, base, email);

    // Open it in another browser: signed in, on the settings page.
    await other.page.goto(link);
    await other.page.waitForURL(/\/ui\/settings\?flow=/);
    await other.page.getByText(/You successfully recovered your account/).waitFor();
    await screenshot(other.page, 'link-recovery-settings');
    const fresh = 'another long and unusual passphrase 77';
    await other.page.locator('input[name="password"]').fill(fresh);
    await other.page.locator('button[name="method"][value="password"]').click();
    await other.page.waitForURL(/\/ui\/settings\?flow=/);

    // The new password signs in.
    await signInWithPassword(a.page, base, email, fresh);

    // The link works once.
    await late.page.goto(link);
    await late.page.waitForURL(/\/ui\/recovery\?flow=/);
    await late.page.getByText(/The recovery token is invalid or has already been used/).waitFor();
    assert.deepEqual(await seriousViolations(late.page), [], 'the used-link page is accessible');
    assert.deepEqual(other.cspViolations, [], 'no Content-Security-Policy violations');
  } finally {
    await a.close();
    await other.close();
    await late.close();
  }
});

// A form submitted without the anti-CSRF cookie ends on an error page that explains why.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startLatch } = require('../lib/latch');
const { openBrowser, screenshot } = require('../lib/browser');
const { seriousViolations } = require('../lib/a11y');
const { uniqueEmail } = require('../lib/flows');

let latch;
before(async () => {
  latch = await startLatch();
});
after(async () => {
  if (latch) await latch.stop();
});

test('deleting the CSRF cookie before submitting shows an explaining error page', async () => {
  const b = await openBrowser();
  try {
    const { page, context } = b;
    const base = latch.publicUrl;
    await page.goto(`${base}/ui/login`);
    await page.getByLabel('Email address').fill(uniqueEmail('csrf'));
    await page.getByLabel('Password').fill('whatever it is');
    const csrf = (await context.cookies()).filter((c) => c.name.startsWith('csrf_token_'));
    assert.equal(csrf.length, 1, 'the flow set one anti-CSRF cookie');
    await context.clearCookies({ name: csrf[0].name });
    await page.locator('button[name="method"][value="password"]').click();
    await page.waitForURL(/\/ui\/error\?id=/);
    const alert = page.getByRole('alert');
    assert.match(await alert.textContent(), /security cookie/);
    const reason = await page.getByTestId('reject-reason').textContent();
    assert.match(reason, /anti-CSRF cookie/);
    assert.match(reason, new RegExp(csrf[0].name));
    await screenshot(page, 'error-csrf');
    assert.deepEqual(await seriousViolations(page), []);
    await page.getByRole('link', { name: 'Start again' }).click();
    await page.waitForURL(/\/ui\/login\?flow=/);
  } finally {
    await b.close();
  }
});

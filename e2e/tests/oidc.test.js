// Social sign-in (the `oidc` method) through the built-in UI against a real OpenID provider
// (npm oidc-provider, crates/latch/tests/oidc-provider/server.mjs, which signs in the account
// set with POST /test/next-login without a login page): sign up with the provider, sign out,
// sign in with it again; link a provider to a password account by proving the password
// (Kratos' account linking); link and unlink it in settings; axe on every page involved.
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startLatch, REPO } = require('../lib/latch');
const { openBrowser, screenshot } = require('../lib/browser');
const { seriousViolations } = require('../lib/a11y');
const { signOut, signUpWithPassword, uniqueEmail, PASSWORD } = require('../lib/flows');

const MAPPER = `local claims = std.extVar('claims');
{ identity: { traits: { email: claims.email }, verified_addresses: [{ via: 'email', value: claims.email }] } }`;

let provider;
let issuer;
let latch;

/** Starts the test provider; resolves to its issuer URL. */
function startProvider() {
  const dir = path.join(REPO, 'crates', 'latch', 'tests', 'oidc-provider');
  provider = spawn(process.execPath, ['server.mjs'], { cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    provider.once('exit', (code) => reject(new Error(`the OpenID provider exited (${code}): run npm ci in ${dir}`)));
    readline.createInterface({ input: provider.stdout }).once('line', (line) => resolve(JSON.parse(line).issuer));
  });
}

before(async () => {
  issuer = await startProvider();
  latch = await startLatch({
    env: {
      SELFSERVICE_METHODS_OIDC_ENABLED: 'true',
      SELFSERVICE_METHODS_OIDC_CONFIG_PROVIDERS: JSON.stringify([
        {
          id: 'local',
          provider: 'generic',
          label: 'Local ID',
          client_id: 'latch-local',
          client_secret: 'secret-local',
          issuer_url: issuer,
          scope: ['openid', 'email', 'profile'],
          mapper_url: `base64://${Buffer.from(MAPPER).toString('base64')}`,
        },
      ]),
      // Sign people in right after they sign up with the provider (Kratos' method hook list).
      SELFSERVICE_FLOWS_REGISTRATION_AFTER_OIDC_HOOKS: JSON.stringify([{ hook: 'session' }]),
    },
  });
});
after(async () => {
  if (latch) await latch.stop();
  if (provider) provider.stdin.end();
});

async function nextLogin(sub) {
  const res = await fetch(`${issuer}/test/next-login`, { method: 'POST', body: JSON.stringify({ sub }) });
  assert.equal(res.status, 204);
}

async function assertAccessible(b, name) {
  await b.page.waitForLoadState('load');
  const violations = await seriousViolations(b.page);
  await screenshot(b.page, name);
  assert.deepEqual(violations, [], `${name}: ${JSON.stringify(violations, null, 2)}`);
  assert.deepEqual(b.cspViolations, [], `${name}: CSP violations`);
}

test('sign up with an OpenID provider, sign out, sign in with it again', async () => {
  const base = latch.publicUrl;
  const sub = `e2e-${Date.now().toString(36)}`;
  const b = await openBrowser();
  try {
    const { page } = b;
    await nextLogin(sub);
    await page.goto(`${base}/ui/registration`);
    await page.waitForURL(/\/ui\/registration\?flow=/);
    const signUp = page.locator('button[name="provider"][value="local"]');
    await signUp.waitFor();
    // The email field is required for the other methods, not for the provider's button.
    assert.equal(await signUp.getAttribute('formnovalidate'), '');
    await assertAccessible(b, 'oidc-registration');
    await signUp.click();
    await page.waitForURL(`${base}/ui/welcome`);
    assert.equal(await page.getByTestId('who').textContent(), `${sub}@example.com`);
    await signOut(page, base);

    await nextLogin(sub);
    await page.goto(`${base}/ui/login`);
    await page.waitForURL(/\/ui\/login\?flow=/);
    await assertAccessible(b, 'oidc-login');
    await page.locator('button[name="provider"][value="local"]').click();
    await page.waitForURL(`${base}/ui/welcome`);
    const res = await b.context.request.get(`${base}/sessions/whoami`, { headers: { Accept: 'application/json' } });
    assert.equal(res.status(), 200);
    const who = await res.json();
    assert.equal(who.identity.traits.email, `${sub}@example.com`);
    assert.deepEqual(
      who.authentication_methods.map((m) => [m.method, m.provider]),
      [['oidc', 'local']],
    );
  } finally {
    await b.close();
  }
});

async function whoami(b, base) {
  const res = await b.context.request.get(`${base}/sessions/whoami`, { headers: { Accept: 'application/json' } });
  assert.equal(res.status(), 200);
  return res.json();
}

test('a provider whose email has a password account links after the password', async () => {
  const base = latch.publicUrl;
  const sub = `e2e-link-${Date.now().toString(36)}`;
  const email = `${sub}@example.com`;
  const b = await openBrowser();
  try {
    const { page } = b;
    await signUpWithPassword(page, base, email);
    const owner = (await whoami(b, base)).identity.id;
    await signOut(page, base);

    await nextLogin(sub);
    await page.goto(`${base}/ui/login`);
    await page.locator('button[name="provider"][value="local"]').click();
    // Kratos' linking sign-in: the email is fixed, the password proves the account.
    await page.waitForURL(/\/ui\/login\?flow=.*no_org_ui=true/);
    await page.getByText('but that email is already used by another account').waitFor();
    assert.equal(await page.locator('input[name="identifier"]').getAttribute('type'), 'hidden');
    assert.equal(await page.locator('button[name="provider"][value="local"]').count(), 0);
    await assertAccessible(b, 'oidc-link-login');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in and link' }).click();
    await page.waitForURL(`${base}/ui/welcome`);
    const who = await whoami(b, base);
    assert.equal(who.identity.id, owner);
    assert.deepEqual(
      who.authentication_methods.map((m) => [m.method, m.provider || '']),
      [['password', ''], ['oidc', 'local']],
    );
    await signOut(page, base);

    // Linked: the provider signs straight in.
    await nextLogin(sub);
    await page.goto(`${base}/ui/login`);
    await page.locator('button[name="provider"][value="local"]').click();
    await page.waitForURL(`${base}/ui/welcome`);
    assert.equal((await whoami(b, base)).identity.id, owner);
  } finally {
    await b.close();
  }
});

test('link a provider in settings, sign in with it, unlink it', async () => {
  const base = latch.publicUrl;
  const sub = `e2e-settings-${Date.now().toString(36)}`;
  const email = uniqueEmail('oidc-settings');
  const b = await openBrowser();
  try {
    const { page } = b;
    await signUpWithPassword(page, base, email);
    const owner = (await whoami(b, base)).identity.id;
    await page.goto(`${base}/ui/settings`);
    await page.waitForURL(/\/ui\/settings\?flow=/);
    const link = page.getByRole('button', { name: 'Link Local ID' });
    await link.waitFor();
    await assertAccessible(b, 'oidc-settings-link');
    await nextLogin(sub);
    await link.click();
    await page.waitForURL(/\/ui\/settings\?flow=/);
    const unlink = page.getByRole('button', { name: 'Unlink Local ID' });
    await unlink.waitFor();
    await assertAccessible(b, 'oidc-settings-linked');
    await page.goto(`${base}/ui/welcome`);
    await signOut(page, base);

    await nextLogin(sub);
    await page.goto(`${base}/ui/login`);
    await page.locator('button[name="provider"][value="local"]').click();
    await page.waitForURL(`${base}/ui/welcome`);
    assert.equal((await whoami(b, base)).identity.id, owner);

    await page.goto(`${base}/ui/settings`);
    await page.waitForURL(/\/ui\/settings\?flow=/);
    await page.getByRole('button', { name: 'Unlink Local ID' }).click();
    await page.waitForURL(/\/ui\/settings\?flow=/);
    await page.getByRole('button', { name: 'Link Local ID' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Unlink Local ID' }).count(), 0);
  } finally {
    await b.close();
  }
});

// A real OpenID provider (panva/oidc-provider) on a free loopback port, for Latch's `oidc`
// API tests (crates/latch/tests/api/oidc.rs, oidc_presets.rs). It prints one JSON line
// `{"issuer": "...", "github": "..."}` on stdout once it listens, and signs in without a login
// page: the next interaction logs in the account set with
// `POST /test/next-login {"sub": "...", "claims": {...}}` and grants the requested scopes (a
// test-only auto-approve interaction). `POST /test/next-token {"claims": {...},
// "foreign_key": bool}` re-signs the next token answer's ID token with those claims changed,
// with the provider's key or with a key that is not in its JWKS (same `kid`).
//
// `github` is a second server in the shape of GitHub's OAuth 2.0 app flow (no ID token):
// `/login/oauth/authorize` sends the browser straight back with a code,
// `/login/oauth/access_token` exchanges it, and the REST API answers `/api/v3/user` and
// `/api/v3/user/emails` (GitHub Enterprise Server's paths). `POST /test/next-login` there sets
// the next user: `{"id", "login", "name", "email", "verified", "scope"}`. Test use only.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

// The provider's signing key (known here, so tokens can be re-signed) and a stranger's.
const signing = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const foreign = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const KID = 'test-key';
const JWK = { ...signing.export({ format: 'jwk' }), kid: KID, use: 'sig', alg: 'RS256' };

let nextToken = null;

function resign(idToken, claims, key) {
  const [h, p] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = { ...JSON.parse(Buffer.from(p, 'base64url')), ...claims };
  const enc = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

// The token answer passes through here when a test asked to tamper with it.
function tamperTokenAnswer(res, tamper) {
  const end = res.end.bind(res);
  res.end = (chunk, ...rest) => {
    try {
      const body = JSON.parse(Buffer.isBuffer(chunk) ? chunk.toString() : chunk);
      if (body.id_token) {
        body.id_token = resign(body.id_token, tamper.claims || {}, tamper.foreign_key ? foreign : signing);
      }
      const out = JSON.stringify(body);
      if (!res.headersSent) res.setHeader('content-length', Buffer.byteLength(out));
      return end(out, ...rest);
    } catch {
      return end(chunk, ...rest);
    }
  };
}

async function readBody(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

// Client ids and redirect paths the tests use. `application_type: native` makes the
// provider accept the loopback redirect URI on any port (RFC 8252 §7.3), which is what a
// test server on port 0 needs.
const CLIENTS = ['local', 'nopkce', 'other', 'update'].map((id) => ({
  client_id: `latch-${id}`,
  client_secret: `secret-${id}`,
  application_type: 'native',
  // `localhost` for the browser tests (e2e/tests/oidc.test.js), whose Latch runs there.
  redirect_uris: [
    `http://127.0.0.1/self-service/methods/oidc/callback/${id}`,
    `http://localhost/self-service/methods/oidc/callback/${id}`,
  ],
  grant_types: ['authorization_code'],
  response_types: ['code'],
}));
// `pkce: force` providers come back on Latch's shared callback (no provider in the path).
CLIENTS.push({
  ...CLIENTS[0],
  client_id: 'latch-forced',
  client_secret: 'secret-forced',
  redirect_uris: ['http://127.0.0.1/self-service/methods/oidc/callback'],
});

let next = { sub: 'alice', claims: {} };

const server = http.createServer();
const github = http.createServer();
let listening = 0;
const ready = () => {
  listening += 1;
  if (listening < 2) return;
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const gh = `http://127.0.0.1:${github.address().port}`;
  process.stdout.write(`${JSON.stringify({ issuer, github: gh })}\n`);
};
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: CLIENTS,
    // Standard claims in the ID token too (Kratos' default `claims_source: id_token`).
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'website'],
    },
    jwks: { keys: [JWK] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => false },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const extra = sub === next.sub ? next.claims : {};
      return {
        accountId: sub,
        async claims() {
          return { sub, email: `${sub}@example.com`, email_verified: true, name: `User ${sub}`, ...extra };
        },
      };
    },
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    try {
      if (req.method === 'POST' && req.url === '/test/next-login') {
        next = { claims: {}, ...JSON.parse(await readBody(req)) };
        res.writeHead(204).end();
        return;
      }
      if (req.method === 'POST' && req.url === '/test/next-token') {
        nextToken = JSON.parse(await readBody(req));
        res.writeHead(204).end();
        return;
      }
      if (req.method === 'POST' && req.url === '/token' && nextToken) {
        tamperTokenAnswer(res, nextToken);
        nextToken = null;
      }
      if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
        const details = await provider.interactionDetails(req, res);
        if (details.prompt.name === 'login') {
          await provider.interactionFinished(req, res, { login: { accountId: next.sub } }, { mergeWithLastSubmission: false });
          return;
        }
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
        if (details.prompt.details.missingOIDCScope) grant.addOIDCScope(details.prompt.details.missingOIDCScope.join(' '));
        if (details.prompt.details.missingOIDCClaims) grant.addOIDCClaims(details.prompt.details.missingOIDCClaims);
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        return;
      }
      callback(req, res);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
    }
  });
  ready();
});

// ---- GitHub-shaped OAuth 2.0 server ----
const GH_CLIENT = { id: 'latch-gh', secret: 'secret-gh' };
const ghDefault = { id: 4242, login: 'octo', name: 'Octo Cat', email: 'octo@example.com', verified: true, scope: null };
let ghNext = { ...ghDefault };
const ghCodes = new Map();
const ghTokens = new Map();
const json = (res, status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

github.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'POST' && url.pathname === '/test/next-login') {
      ghNext = { ...ghDefault, ...JSON.parse(await readBody(req)) };
      return res.writeHead(204).end();
    }
    // The same server also stands in for GitLab (`/oauth/…`), Discord (`/oauth2/…`,
    // `/users/@me`) and Slack (`/api/oauth.access`, `/api/users.identity`).
    if (req.method === 'GET' && ['/login/oauth/authorize', '/oauth/authorize', '/oauth2/authorize'].includes(url.pathname)) {
      const q = url.searchParams;
      const redirect = q.get('redirect_uri') || '';
      if (q.get('client_id') !== GH_CLIENT.id || !redirect.startsWith('http://127.0.0.1:')) {
        return json(res, 400, { error: 'redirect_uri_mismatch' });
      }
      const code = crypto.randomBytes(16).toString('hex');
      // GitHub answers with the granted scopes comma-separated.
      const scope = ghNext.scope ?? (q.get('scope') || '').split(' ').filter(Boolean).join(',');
      if (url.pathname === '/oauth2/authorize' && q.get('prompt') !== 'none') {
        return json(res, 400, { error: 'discord: prompt=none expected' });
      }
      ghCodes.set(code, { user: ghNext, redirect, scope });
      const back = new URL(redirect);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') || '');
      return res.writeHead(302, { location: back.toString() }).end();
    }
    const tokenPaths = ['/login/oauth/access_token', '/oauth/token', '/oauth2/token', '/api/oauth.access'];
    if (req.method === 'POST' && tokenPaths.includes(url.pathname)) {
      const form = new URLSearchParams(await readBody(req));
      const grant = ghCodes.get(form.get('code'));
      ghCodes.delete(form.get('code'));
      if (form.get('client_id') !== GH_CLIENT.id || form.get('client_secret') !== GH_CLIENT.secret) {
        return json(res, 200, { error: 'incorrect_client_credentials' });
      }
      if (!grant || grant.redirect !== form.get('redirect_uri')) {
        // GitHub reports a bad code with status 200.
        return json(res, 200, { error: 'bad_verification_code' });
      }
      const token = crypto.randomBytes(16).toString('hex');
      ghTokens.set(token, grant);
      // Discord lists granted scopes space-separated, the others comma-separated.
      const scope = url.pathname === '/oauth2/token' ? grant.scope.split(',').join(' ') : grant.scope;
      return json(res, 200, { ok: true, access_token: token, token_type: 'bearer', scope });
    }
    const bearer = () => ghTokens.get((req.headers.authorization || '').replace(/^Bearer /i, ''));
    if (req.method === 'GET' && url.pathname === '/oauth/userinfo') {
      const grant = bearer();
      if (!grant) return json(res, 401, { error: 'invalid_token' });
      const u = grant.user;
      return json(res, 200, { sub: String(u.id), name: u.name, nickname: u.login, email: u.email, email_verified: u.verified, groups: ['staff'] });
    }
    if (req.method === 'GET' && url.pathname === '/users/@me') {
      const grant = bearer();
      if (!grant) return json(res, 401, { message: '401: Unauthorized' });
      const u = grant.user;
      return json(res, 200, { id: String(u.id), username: u.login, discriminator: '0', avatar: null, email: u.email, verified: u.verified, locale: 'en-GB' });
    }
    if (url.pathname === '/api/users.identity') {
      const grant = bearer();
      // Slack answers 200 with `ok: false`.
      if (!grant) return json(res, 200, { ok: false, error: 'invalid_auth' });
      const u = grant.user;
      return json(res, 200, { ok: true, user: { id: `U${u.id}`, name: u.name, email: u.email, image_512: `https://slack.example/${u.id}.png` }, team: { id: 'T1' } });
    }
    if (req.method === 'GET' && url.pathname.startsWith('/api/v3/')) {
      // GitHub's API refuses requests without a User-Agent.
      if (!req.headers['user-agent']) return json(res, 403, { message: 'Request forbidden by administrative rules.' });
      const grant = ghTokens.get((req.headers.authorization || '').replace(/^Bearer /i, ''));
      if (!grant) return json(res, 401, { message: 'Bad credentials' });
      const u = grant.user;
      if (url.pathname === '/api/v3/user') {
        return json(res, 200, {
          id: u.id, login: u.login, name: u.name, blog: '', avatar_url: `https://avatars.example/${u.id}`,
          html_url: `https://github.example/${u.login}`, updated_at: '2026-01-02T03:04:05Z', email: null,
        });
      }
      if (url.pathname === '/api/v3/user/emails') {
        if (!grant.scope.split(',').includes('user:email')) return json(res, 404, { message: 'Not Found' });
        return json(res, 200, [
          { email: `secondary-${u.login}@example.com`, primary: false, verified: true, visibility: null },
          { email: u.email, primary: true, verified: u.verified, visibility: 'private' },
        ]);
      }
    }
    json(res, 404, { message: 'Not Found' });
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
  }
});
github.listen(0, '127.0.0.1', ready);

// Stop with the test that started it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

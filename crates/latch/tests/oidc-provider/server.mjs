// A real OpenID provider (panva/oidc-provider) on a free loopback port, for Latch's `oidc`
// API tests (crates/latch/tests/api/oidc.rs). It prints one JSON line `{"issuer": "..."}`
// on stdout once it listens, and signs in without a login page: the next interaction logs in
// the account set with `POST /test/next-login {"sub": "...", "claims": {...}}` and grants
// the requested scopes (a test-only auto-approve interaction). Test use only.
import http from 'node:http';
import Provider from 'oidc-provider';

// Client ids and redirect paths the tests use. `application_type: native` makes the
// provider accept the loopback redirect URI on any port (RFC 8252 §7.3), which is what a
// test server on port 0 needs.
const CLIENTS = ['local', 'nopkce', 'other'].map((id) => ({
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
        let body = '';
        for await (const chunk of req) body += chunk;
        next = { claims: {}, ...JSON.parse(body) };
        res.writeHead(204).end();
        return;
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
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

// Stop with the test that started it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

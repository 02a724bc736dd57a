// A small app as a Kratos user would write it with Ory Elements React: one page per
// self-service flow, each fetching its flow from Latch (cross-origin, with credentials) and
// rendering the Elements component unchanged. Routes: /login, /registration, /recovery,
// /verification, /settings, /error and / (the signed-in home page).
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { Configuration, FrontendApi } from '@ory/client-fetch';
import { Login, Registration, Recovery, Verification, Settings } from '@ory/elements-react/theme';
import '@ory/elements-react/theme/styles.css';

const LATCH = String(window.LATCH_URL || '').replace(/\/$/, '');
const APP = window.location.origin;

const frontend = new FrontendApi(
  new Configuration({ basePath: LATCH, credentials: 'include', headers: { Accept: 'application/json' } }),
);

const config = {
  sdk: { url: LATCH },
  project: {
    name: 'Latch Elements test',
    default_redirect_url: `${APP}/`,
    error_ui_url: `${APP}/error`,
    login_ui_url: `${APP}/login`,
    registration_ui_url: `${APP}/registration`,
    recovery_ui_url: `${APP}/recovery`,
    verification_ui_url: `${APP}/verification`,
    settings_ui_url: `${APP}/settings`,
    registration_enabled: true,
    verification_enabled: true,
    recovery_enabled: true,
  },
};

const FLOWS = {
  login: { get: (id) => frontend.getLoginFlow({ id }), Component: Login },
  registration: { get: (id) => frontend.getRegistrationFlow({ id }), Component: Registration },
  recovery: { get: (id) => frontend.getRecoveryFlow({ id }), Component: Recovery },
  verification: { get: (id) => frontend.getVerificationFlow({ id }), Component: Verification },
  settings: { get: (id) => frontend.getSettingsFlow({ id }), Component: Settings },
};

/** Starts a new browser flow at Latch, which redirects back here with ?flow=. */
function restart(kind) {
  const returnTo = new URLSearchParams(window.location.search).get('return_to');
  const q = returnTo ? `?return_to=${encodeURIComponent(returnTo)}` : '';
  window.location.assign(`${LATCH}/self-service/${kind}/browser${q}`);
}

function FlowPage({ kind }) {
  const [flow, setFlow] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const id = new URLSearchParams(window.location.search).get('flow');
    if (!id) {
      restart(kind);
      return;
    }
    FLOWS[kind]
      .get(id)
      .then(setFlow)
      .catch(async (e) => {
        const status = e && e.response ? e.response.status : 0;
        if ([403, 404, 410].includes(status)) {
          restart(kind);
          return;
        }
        if (status === 401 && kind === 'settings') {
          window.location.assign(`${APP}/login`);
          return;
        }
        setError(`${status} ${e && e.message}`);
      });
  }, [kind]);
  if (error) return <p data-testid="app-error">Could not load the {kind} flow: {error}</p>;
  if (!flow) return <p>Loading…</p>;
  const { Component } = FLOWS[kind];
  return (
    <main data-testid={`page-${kind}`}>
      <Component flow={flow} config={config} />
    </main>
  );
}

function Home() {
  const [session, setSession] = useState(undefined);
  useEffect(() => {
    frontend.toSession().then(setSession, () => setSession(null));
  }, []);
  const logout = async () => {
    const { logout_url: url } = await frontend.createBrowserLogoutFlow({ returnTo: `${APP}/` });
    window.location.assign(url);
  };
  if (session === undefined) return <p>Loading…</p>;
  return (
    <main>
      <h1>Latch × Ory Elements</h1>
      {session ? (
        <>
          <p>
            Signed in as <span data-testid="who">{session.identity.traits.email}</span> (
            <span data-testid="methods">{session.authentication_methods.map((m) => m.method).join(',')}</span>)
          </p>
          <button type="button" onClick={logout}>
            Sign out
          </button>
        </>
      ) : (
        <p data-testid="signed-out">You are not signed in.</p>
      )}
      <nav>
        <a href="/login">Sign in</a> · <a href="/registration">Sign up</a> · <a href="/settings">Settings</a> ·{' '}
        <a href="/recovery">Recovery</a> · <a href="/verification">Verification</a>
      </nav>
    </main>
  );
}

function ErrorPage() {
  const [body, setBody] = useState(null);
  useEffect(() => {
    const id = new URLSearchParams(window.location.search).get('id');
    if (!id) return;
    frontend.getFlowError({ id }).then(setBody, (e) => setBody({ error: String(e) }));
  }, []);
  return <pre data-testid="flow-error">{body ? JSON.stringify(body, null, 2) : ''}</pre>;
}

function App() {
  const kind = window.location.pathname.replace(/^\//, '').replace(/\/$/, '');
  if (FLOWS[kind]) return <FlowPage kind={kind} />;
  if (kind === 'error') return <ErrorPage />;
  return <Home />;
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

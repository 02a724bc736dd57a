//! Everything a request handler needs, built once by [`crate::app::App::build`].

use std::sync::Arc;

use url::Url;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::password::PasswordHasher;
use crate::identity::schema::{SchemaRegistry, encode_schema_id};
use crate::metrics::Metrics;
use crate::store::Store;

/// What methods (strategies), the rate limiter and the courier's enqueueing may use: the
/// database, time, configuration, schemas, hashing and public URLs. It holds nothing that
/// seals session cookies, sends mail directly or serves the admin API, so a strategy (which
/// receives `&Env` through `strategy::Cx`) cannot reach those.
#[derive(Debug)]
pub struct Env {
    /// Loaded configuration.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// Time source.
    pub clock: SharedClock,
    /// Identity schemas.
    pub schemas: SchemaRegistry,
    /// Password hashing.
    pub hasher: PasswordHasher,
    /// Public base URL, ending in `/`.
    pub public_base: Url,
    /// The key of keyed hashes (one-time codes): the first cookie secret, or in `--dev` without
    /// secrets a random one. Never empty: `App::build` refuses to start without secrets
    /// outside `--dev`.
    pub hash_key: crate::crypto::HashKey,
    /// Every credential type and which methods are enabled (first/second factors, imports).
    pub credentials: crate::model::credential::CredentialTypes,
}

impl Env {
    /// A URL under the public base URL (keeps a base path such as `/api/auth/`).
    pub fn public_url(&self, path: &str) -> String {
        join(&self.public_base, path)
    }

    /// `schema_url` of identities: `<public>/schemas/<base64url(id)>`.
    pub fn schema_url(&self, schema_id: &str) -> String {
        self.public_url(&format!("schemas/{}", encode_schema_id(schema_id)))
    }
}

/// The application's dependencies; no globals anywhere else. Derefs to [`Env`], the part
/// methods may use.
#[derive(Debug)]
pub struct Deps {
    /// What methods may use.
    pub env: Env,
    /// Request metrics for `/admin/metrics/prometheus`.
    pub metrics: Metrics,
    /// Admin base URL, ending in `/`.
    pub admin_base: Url,
    /// Seals the session cookie.
    pub sealer: crate::crypto::seal::Sealer,
    /// `csrf_token_<sha256(public base URL)>`.
    pub csrf_cookie_name: String,
    /// SMTP delivery for the courier worker; `None` without `courier.smtp.connection_uri`
    /// (allowed in `--dev`, where mail stays in the outbox). Enqueueing goes through
    /// `store` (`Store::enqueue_message`, `insert_courier_message!`, `Store::wake_courier`).
    pub mailer: Option<Arc<crate::courier::smtp::Mailer>>,
}

impl std::ops::Deref for Deps {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

impl Deps {
    /// A URL under the admin base URL.
    pub fn admin_url(&self, path: &str) -> String {
        join(&self.admin_base, path)
    }
}

fn join(base: &Url, path: &str) -> String {
    let mut s = base.as_str().to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    s.push_str(path.trim_start_matches('/'));
    s
}

//! Black-box API tests: each test starts the real server in-process with a fresh database
//! and talks to it over HTTP, on SQLite and (with LATCH_TEST_POSTGRES_URL) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod smtp_sink;

mod admin_identities;
mod basics;
mod cleanup;
mod cli;
mod client;
mod code;
mod code_mfa;
mod courier;
mod flow_states;
mod flows;
mod hardening;
mod hooks;
mod identifiers;
mod import;
mod limits;
mod link;
mod lookup_secret;
mod migrations;
mod oidc;
mod oidc_link;
mod oidc_native;
mod oidc_presets;
mod pages;
mod passkey;
mod password_settings;
mod plans;
mod proxy;
mod refusals;
mod sdk;
mod sessions;
mod settings;
mod settings_hooks;
mod snapshots;
mod totp;
mod web_hooks;
mod webauthn;
mod webhook_outbox;

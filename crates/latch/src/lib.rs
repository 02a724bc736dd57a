//! Latch: a passwordless-first identity server that speaks the Ory Kratos self-service API.
//!
//! The binary (`main.rs`) is a thin CLI over this library; tests build the same
//! [`app::App`] in-process.

pub mod app;
pub mod clock;
pub mod config;
pub mod courier;
pub mod crypto;
pub mod deps;
pub mod error;
pub mod flow;
pub mod http;
pub mod identity;
pub mod jsonnet;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod session;
pub mod store;
pub mod strategy;
pub mod text;
pub mod ui;
pub mod webhook;

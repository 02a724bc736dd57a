//! Self-service flows (login, registration, …): the object a client creates, fetches and
//! submits. Kratos: `selfservice/flow/*`.

mod address_change;
mod after_settings;
pub mod body;
pub mod common;
mod continuity;
pub mod csrf_explain;
pub mod engine;
mod fetch;
mod guard;
mod hooks;
mod init;
mod linking;
pub mod login;
pub mod recovery;
pub mod registration;
pub mod request;
pub mod respond;
pub mod return_to;
mod revoke;
pub mod service;
pub mod settings;
mod signin;
mod success;
pub mod token_exchange;
pub mod verification;
pub mod web_hook;

pub use crate::model::flow::{Flow, FlowKind, FlowType};
pub use service::{AppState, Service};

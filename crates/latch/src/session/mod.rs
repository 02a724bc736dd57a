//! Sessions: who is signed in, how (authentication methods, AAL), until when, from where.
//! Kratos: `session/session.go`.

pub mod manager;

/// The session credentials a request presents, read once at the HTTP edge: the plain token
/// (from `X-Session-Token`, the sealed session cookie or `Authorization: Bearer`) and whether
/// it came from the cookie (a browser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// The plain `ory_st_…` token.
    pub token: String,
    /// It came from the session cookie.
    pub from_cookie: bool,
}

pub use crate::model::session::*;

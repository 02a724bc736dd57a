//! Request decoding with Kratos-style errors: bad JSON, wrong content types and oversized
//! bodies answer 400/415/413 in the error envelope before anything is written.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Request bodies larger than this are refused (Kratos: 5 MB).
pub const MAX_BODY: usize = 5 * 1024 * 1024;

/// A JSON body decoded strictly into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Reads the whole body, enforcing [`MAX_BODY`].
pub async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(axum::http::StatusCode::PAYLOAD_TOO_LARGE)
            .reason(format!("The request body exceeds the limit of {MAX_BODY} bytes."))
    })
}

pub use crate::flow::request::is_json_content_type;

/// Decodes bytes as JSON into `T` with a reason that names the problem.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Unable to decode the JSON request body: {e}")))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !is_json_content_type(&ct) {
            let shown = if ct.is_empty() { "none" } else { ct.as_str() };
            return Err(ApiError::bad_request(format!(
                "This endpoint expects a JSON body with Content-Type: application/json, but the request's content type was {shown}."
            )));
        }
        let bytes = read_body(req.into_body()).await?;
        decode_json(&bytes).map(JsonBody)
    }
}

pub use crate::flow::request::{query_all, query_one};

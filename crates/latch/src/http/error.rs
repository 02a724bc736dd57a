//! Writes [`ApiError`] and [`crate::flow::respond::Answer`] out as HTTP responses (the error
//! itself lives in `crate::error`, so the engine builds errors without depending on `http`).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub use crate::error::{ApiError, ApiErrorData};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(id) = &self.id
            && let Ok(v) = HeaderValue::from_str(id)
        {
            h.insert("ory-error-id", v);
        }
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(*name, v);
            }
        }
        res
    }
}

impl IntoResponse for crate::flow::respond::Answer {
    fn into_response(self) -> Response {
        let mut res = match self.json {
            Some(body) => (self.status, axum::Json(body)).into_response(),
            None => self.status.into_response(),
        };
        let h = res.headers_mut();
        if let Some(to) = self.location.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
            h.insert(header::LOCATION, to);
        }
        for c in self.cookies {
            if let Ok(v) = HeaderValue::from_str(&c) {
                h.append(header::SET_COOKIE, v);
            }
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        res
    }
}

/// Handler result type.
pub type ApiResult<T> = Result<T, ApiError>;

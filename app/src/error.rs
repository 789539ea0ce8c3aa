//! The one application error type.
//!
//! `AppError` is what crosses the wire: server functions return it, components match on it to
//! show the right message, and axum routes turn it into an HTTP response. It carries only what a
//! user may see. Internal causes (database errors, I/O, bugs) are logged once, where they are
//! converted into [`AppError::Internal`], and never serialized.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// A problem with one named input field, shown next to that field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every field problem found in one submission, so a form can show them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Records the error of a fallible parse under `field` and returns the parsed value, if any.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.add(field, err.to_string());
                None
            }
        }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, otherwise a validation error carrying every problem.
    pub fn into_result(self) -> Result<(), AppError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in to continue.")]
    Unauthorized,
    /// Deliberately one message for an unknown email and a wrong password.
    #[error("The email or password is incorrect.")]
    BadCredentials,
    #[error("You don't have permission to do that.")]
    Forbidden,
    #[error("That could not be found.")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("Please correct the highlighted fields.")]
    Validation(FieldErrors),
    /// An uploaded file has problems; nothing was imported. Every problem is listed.
    #[error("The {file} file has {} problem(s); nothing was imported.", errors.len())]
    InvalidFile {
        file: String,
        errors: Vec<crate::receivables::model::RowError>,
    },
    #[error("Too many attempts. Please wait {retry_after_secs} seconds and try again.")]
    RateLimited { retry_after_secs: u64 },
    #[error("The request could not be understood.")]
    BadRequest,
    #[error("Duecall could not be reached. Check your connection and try again.")]
    Unreachable,
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
}

impl AppError {
    /// A single-field validation error.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        Self::Validation(errors)
    }

    /// The message for one form field, if this is a validation error that names it.
    pub fn field(&self, field: &str) -> Option<String> {
        match self {
            Self::Validation(errors) => errors.get(field).map(str::to_owned),
            _ => None,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized | Self::BadCredentials => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict(_) => 409,
            Self::Validation(_) | Self::InvalidFile { .. } => 422,
            Self::RateLimited { .. } => 429,
            Self::BadRequest => 400,
            Self::Unreachable => 502,
            Self::Internal => 500,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The browser sent something the server function cannot decode.
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::Deserialization(_) => Self::BadRequest,
            // The client could not talk to the server at all.
            ServerFnErrorErr::Request(_) => Self::Unreachable,
            ServerFnErrorErr::Registration(_) => Self::NotFound,
            other => {
                #[cfg(feature = "ssr")]
                tracing::error!(error = %other, "server function failed");
                #[cfg(not(feature = "ssr"))]
                let _ = other;
                Self::Internal
            }
        }
    }
}

#[cfg(feature = "ssr")]
mod server {
    use super::AppError;
    use axum::response::{IntoResponse, Response};

    impl AppError {
        /// Logs an unexpected failure once, with its context, and hides it behind `Internal`.
        pub fn internal(context: &'static str, err: impl std::fmt::Display) -> Self {
            tracing::error!(error = %err, "{context}");
            Self::Internal
        }

        /// Headers that go with this error: `Retry-After` when rate limited.
        pub fn add_headers(&self, headers: &mut http::HeaderMap) {
            if let Self::RateLimited { retry_after_secs } = self {
                headers.insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(*retry_after_secs),
                );
            }
        }

        pub fn http_status(&self) -> http::StatusCode {
            http::StatusCode::from_u16(self.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
        }
    }

    impl From<sqlx::Error> for AppError {
        fn from(err: sqlx::Error) -> Self {
            Self::internal("database error", err)
        }
    }

    impl From<tower_sessions::session::Error> for AppError {
        fn from(err: tower_sessions::session::Error) -> Self {
            Self::internal("session store error", err)
        }
    }

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let status = self.http_status();
            let mut body = serde_json::json!({ "error": self.to_string() });
            if let Self::Validation(fields) = &self {
                body["fields"] = serde_json::to_value(fields).unwrap_or_default();
            }
            let mut response = (status, axum::Json(body)).into_response();
            self.add_headers(response.headers_mut());
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framework_errors_map_to_safe_variants() {
        assert_eq!(
            AppError::from_server_fn_error(ServerFnErrorErr::Args("missing field `email`".into())),
            AppError::BadRequest
        );
        assert_eq!(
            AppError::from_server_fn_error(ServerFnErrorErr::ServerError("secret detail".into())),
            AppError::Internal
        );
        assert!(!AppError::Internal.to_string().contains("secret"));
    }

    #[test]
    fn field_errors_collect_every_problem() {
        let mut errors = FieldErrors::new();
        assert_eq!(errors.check("a", Ok::<_, &str>(1)), Some(1));
        assert_eq!(errors.check::<i32, _>("b", Err("bad b")), None);
        errors.add("c", "bad c");
        let err = errors.into_result().unwrap_err();
        assert_eq!(err.field("b").as_deref(), Some("bad b"));
        assert_eq!(err.field("c").as_deref(), Some("bad c"));
        assert_eq!(err.field("a"), None);
        assert_eq!(err.status(), 422);
    }
}

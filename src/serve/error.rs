//! A failed request as its answer: a status and `{"error": "<one line>"}`, with `Retry-After`
//! when the server is busy; and how each layer's error maps to a status.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::data::image::ImageError;
use crate::inference::InferenceError;
use crate::run::RunError;
use crate::sweep::SweepError;

/// A failed request: its status and one line saying what is wrong.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds after which the request may succeed, for a busy server.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: the server has `what` in hand already and will not queue more.
    pub fn busy(what: &str, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the server is busy with {what}; try again in {retry_after} s"),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let line = self.message.lines().next().unwrap_or_default().to_string();
        let mut response =
            (self.status, Json(serde_json::json!({ "error": line }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<RunError> for ApiError {
    fn from(error: RunError) -> Self {
        let status = match &error {
            RunError::BadRunName { .. } => StatusCode::BAD_REQUEST,
            RunError::NoSuchRun { .. } => StatusCode::NOT_FOUND,
            RunError::Unfinished { .. } | RunError::StillTraining { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.to_string())
    }
}

impl From<SweepError> for ApiError {
    fn from(error: SweepError) -> Self {
        let status = match &error {
            SweepError::BadSweepName { .. } => StatusCode::BAD_REQUEST,
            SweepError::NoSuchSweep { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.to_string())
    }
}

impl From<InferenceError> for ApiError {
    fn from(error: InferenceError) -> Self {
        match error {
            InferenceError::Run(error) => error.into(),
            error => Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }
}

impl From<ImageError> for ApiError {
    fn from(error: ImageError) -> Self {
        let status = match &error {
            ImageError::UnknownFormat { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ImageError::Blank { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ImageError::Decode { .. } => StatusCode::BAD_REQUEST,
            ImageError::TooLarge { .. } | ImageError::TooMuchMemory { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ImageError::Read { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.to_string())
    }
}

//! How requests get the server's cores: blocking work (loading models, inference, evaluation)
//! runs off the server's threads, at most one computation per core at once, with a bounded
//! number waiting; a request past the bound is answered 503 at once. A panic in the work (in a
//! dependency, say) answers its request with a 500 and leaves the server serving.

use std::any::Any;
use std::sync::Arc;

use axum::http::StatusCode;

use super::error::ApiError;
use super::state::AppState;

/// Runs light blocking work (reading run folders) off the server's threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| match error.try_into_panic() {
            Ok(payload) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "the request failed inside the server: {}",
                    panic_message(&*payload)
                ),
            ),
            Err(error) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the request failed: {error}"),
            ),
        })?
}

/// Runs a computation (a prediction, an explanation, a test image), waiting for a core if all
/// are taken, or answers 503 when too many requests are running or waiting already.
pub async fn compute<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _admitted = state
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::busy("as many requests as it takes at once", 1))?;
    let _core = state
        .compute
        .clone()
        .acquire_owned()
        .await
        .expect("the compute semaphore is never closed");
    blocking(work).await
}

/// What a panic said, for one line.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_answers_its_request_and_the_next_one_is_served() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let failed = blocking::<()>(|| panic!("a decoder gave up"))
                .await
                .unwrap_err();
            assert!(
                format!("{failed:?}").contains("a decoder gave up"),
                "{failed:?}"
            );
            let answer = axum::response::IntoResponse::into_response(failed);
            assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(blocking(|| Ok(7)).await.unwrap(), 7);
        });
    }

    #[test]
    fn past_the_bound_a_request_is_told_when_to_come_back() {
        let options = crate::serve::ServeOptions {
            artifacts: std::path::PathBuf::from("."),
            host: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            data_dir: None,
            device: None,
            max_image_pixels: None,
            token: None,
            allowed_hosts: Vec::new(),
        };
        let state = Arc::new(AppState::new(&options, "127.0.0.1:1".parse().unwrap()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert_eq!(compute(&state, || Ok(1)).await.unwrap(), 1);
            let taken = state
                .in_flight
                .clone()
                .try_acquire_many_owned(crate::serve::state::MAX_IN_FLIGHT as u32)
                .unwrap();
            let refused = compute(&state, || Ok(2)).await.unwrap_err();
            let answer = axum::response::IntoResponse::into_response(refused);
            assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(answer.headers()["retry-after"], "1");
            drop(taken);
            assert_eq!(compute(&state, || Ok(3)).await.unwrap(), 3);
        });
    }
}

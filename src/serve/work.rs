//! How requests get the server's cores: blocking work (loading models, inference, evaluation)
//! runs off the server's threads, on a pool of one thread per core, with a bounded number
//! running or waiting; a request past the bound is answered 503 at once. A panic in the work
//! (in a dependency, say) answers its request with a 500 and leaves the server serving.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
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
            Ok(payload) => panicked(&*payload),
            Err(error) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the request failed: {error}"),
            ),
        })?
}

/// Runs a computation (a prediction, an explanation, a test image) on the compute pool,
/// waiting for a core if all are taken, or answers 503 when too many requests are running or
/// waiting already. The request's place is held until its computation ends; one whose client
/// has gone before its turn is not computed.
pub async fn compute<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let admitted = state
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::busy("as many requests as it takes at once", 1))?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job = move || {
        if answer.is_closed() {
            return;
        }
        let result = catch_unwind(AssertUnwindSafe(work));
        drop(admitted);
        // A client that has gone no longer waits for its answer.
        let _ = answer.send(result);
    };
    state.compute.run(Box::new(job));
    match answered.await {
        Ok(Ok(result)) => result,
        Ok(Err(payload)) => Err(panicked(&*payload)),
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed: its computation ended without an answer",
        )),
    }
}

/// The answer to a request whose work panicked.
fn panicked(payload: &(dyn Any + Send)) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "the request failed inside the server: {}",
            panic_message(payload)
        ),
    )
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

    fn state() -> Arc<AppState> {
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
        Arc::new(AppState::new(&options, "127.0.0.1:1".parse().unwrap()))
    }

    #[test]
    fn a_panic_answers_its_request_and_the_next_one_is_served() {
        let state = state();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let failed = blocking::<()>(|| panic!("a decoder gave up"))
                .await
                .unwrap_err();
            let computed = compute::<()>(&state, || panic!("a kernel gave up"))
                .await
                .unwrap_err();
            for (failed, said) in [
                (failed, "a decoder gave up"),
                (computed, "a kernel gave up"),
            ] {
                assert!(format!("{failed:?}").contains(said), "{failed:?}");
                let answer = axum::response::IntoResponse::into_response(failed);
                assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
            }
            assert_eq!(blocking(|| Ok(7)).await.unwrap(), 7);
            assert_eq!(compute(&state, || Ok(8)).await.unwrap(), 8);
            // The panicked computation gave its place back.
            assert_eq!(
                state.in_flight.available_permits(),
                crate::serve::state::MAX_IN_FLIGHT
            );
        });
    }

    #[test]
    fn past_the_bound_a_request_is_told_when_to_come_back() {
        let state = state();
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

//! An uploaded image, read within bounds: at most [`MAX_UPLOAD_BYTES`] kept, in at most
//! [`BODY_TIMEOUT`]. A body over the limit, declared or found, is still read (up to
//! [`DRAIN_BYTES`]) and dropped before the 413 goes out: a client still sending would
//! otherwise see its connection reset instead of the answer. All uploads held at once share
//! the budget [`UPLOAD_BUDGET_BYTES`](super::state::UPLOAD_BUDGET_BYTES), taken as their bytes
//! arrive, so that many connections each sending an image just under the limit cannot add up
//! to gigabytes; a slow sender holds only what it has sent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::state::AppState;

/// The largest image upload accepted, in bytes: a phone photo fits, a mistake does not.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// How much of a body over the limit is read and dropped before the 413; past this the
/// connection is closed, whatever the client sees.
const DRAIN_BYTES: u64 = 4 * MAX_UPLOAD_BYTES as u64;

/// How long a client may take to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// An uploaded image and its share of the upload budget, given back when it is dropped.
pub struct Upload {
    pub bytes: Bytes,
    _budget: OwnedSemaphorePermit,
}

/// The image of an upload: the raw body (`Content-Type: image/...` or
/// `application/octet-stream`) or the multipart field `image`.
pub async fn uploaded_image(state: &Arc<AppState>, request: Request) -> Result<Upload, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let multipart = content_type.starts_with("multipart/form-data");
    if !multipart
        && !content_type.starts_with("image/")
        && !content_type.starts_with("application/octet-stream")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "send an image as the body with Content-Type image/... or \
                 application/octet-stream, or as the multipart field \"image\" ({})",
                if content_type.is_empty() {
                    "the request has no Content-Type".to_string()
                } else {
                    format!("got Content-Type {content_type:?}")
                }
            ),
        ));
    }
    let (parts, body) = request.into_parts();
    let declared = content_length(&parts.headers);
    let budget = &state.upload_budget;
    let (body, held) = tokio::time::timeout(BODY_TIMEOUT, read_bounded(body, declared, budget))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the upload took longer than {} s to arrive",
                    BODY_TIMEOUT.as_secs()
                ),
            )
        })??;
    let bytes = if multipart {
        let request = Request::from_parts(parts, Body::from(body));
        image_field(
            Multipart::from_request(request, state)
                .await
                .map_err(|e| ApiError::new(e.status(), e.body_text()))?,
        )
        .await?
    } else {
        body
    };
    if bytes.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the image is empty"));
    }
    Ok(Upload {
        bytes,
        _budget: held,
    })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The whole body if it is at most [`MAX_UPLOAD_BYTES`], and its share of `budget`; otherwise
/// 413, once the rest has been read and dropped (up to [`DRAIN_BYTES`]), or 503 when the
/// budget runs out.
async fn read_bounded(
    mut body: Body,
    declared: Option<u64>,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, OwnedSemaphorePermit), ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload is larger than {} MiB, the most an image may be",
                MAX_UPLOAD_BYTES >> 20
            ),
        )
    };
    let declared_over = declared.is_some_and(|length| length > MAX_UPLOAD_BYTES as u64);
    if declared.is_some_and(|length| length > DRAIN_BYTES) {
        return Err(too_large());
    }
    let mut held = take(budget, 0)?;
    let mut kept = Vec::new();
    let mut seen = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("cannot read the upload: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if seen > DRAIN_BYTES {
            return Err(too_large());
        }
        if !declared_over && seen <= MAX_UPLOAD_BYTES as u64 {
            held.merge(take(budget, data.len())?);
            kept.extend_from_slice(&data);
        }
    }
    if declared_over || seen > MAX_UPLOAD_BYTES as u64 {
        return Err(too_large());
    }
    Ok((Bytes::from(kept), held))
}

/// `bytes` of the upload budget, or 503 when other uploads hold it all.
fn take(budget: &Arc<Semaphore>, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
    // MAX_UPLOAD_BYTES bounds a frame kept, far below u32's range.
    let permits = u32::try_from(bytes).expect("a frame kept is under the upload limit");
    budget
        .clone()
        .try_acquire_many_owned(permits)
        .map_err(|_| ApiError::busy("as many uploads as it holds at once", 1))
}

/// The bytes of the multipart field `image`.
async fn image_field(mut multipart: Multipart) -> Result<Bytes, ApiError> {
    let field_error = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(e.status(), format!("the multipart body: {}", e.body_text()))
    };
    while let Some(field) = multipart.next_field().await.map_err(field_error)? {
        if field.name() == Some("image") {
            return field.bytes().await.map_err(field_error);
        }
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "the multipart body has no field named \"image\"",
    ))
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    fn read(body: &[u8], budget: &Arc<Semaphore>) -> Result<(Bytes, OwnedSemaphorePermit), u16> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body = Body::from(body.to_vec());
        runtime
            .block_on(read_bounded(body, None, budget))
            .map_err(|e| e.into_response().status().as_u16())
    }

    #[test]
    fn uploads_share_one_budget_and_give_it_back() {
        let budget = Arc::new(Semaphore::new(10));
        let (first, held) = read(b"123456", &budget).unwrap();
        assert_eq!(&first[..], b"123456");
        assert_eq!(budget.available_permits(), 4, "held while the upload is");
        assert_eq!(
            read(b"12345", &budget).err(),
            Some(503),
            "over what is left"
        );
        assert_eq!(
            budget.available_permits(),
            4,
            "a refused upload holds nothing"
        );
        drop(held);
        assert_eq!(budget.available_permits(), 10);
        assert!(read(b"1234567890", &budget).is_ok());
    }
}

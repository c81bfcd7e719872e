//! The HTTP routes: the embedded pages, and the JSON API they use (documented in docs/serve.md).
//! Every failure is a status and `{"error": "<one line>"}` ([`super::error`]); nothing a request
//! sends can make the server stop serving the next one. Requests pass [`super::guard`] first;
//! uploads are read by [`super::upload`]; computations wait for a core in [`super::work`].

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::assets;
use super::error::ApiError;
use super::guard::guard;
use super::state::AppState;
use super::upload::{MAX_UPLOAD_BYTES, uploaded_image};
use super::work::{blocking, compute};
use crate::config::TrainingConfig;
use burn::data::dataset::Dataset;

use crate::data::Class;
use crate::data::image::{Decoding, Prepared, decode_image};
use crate::inference::eval::{EvalOptions, PREDICTIONS_FILE, REPORT_FILE, eval_run};
use crate::inference::explain::{Explanation, Filters, explain_prepared, filters};
use crate::inference::predict::predict_prepared;
use crate::report::EvalReport;
use crate::run::{self, EVAL_DIR, FinishedRun, MODEL_FILE, RunDetails, RunInfo};
use crate::sweep::{SweepReport, folder};

/// How many of the most confident mistakes the run page shows.
const MISTAKES_SHOWN: usize = 24;
/// How many images a cell of the confusion matrix shows at most.
const CELL_IMAGES: usize = 120;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { assets::page() }))
        .route("/app.js", get(|| async { assets::script() }))
        .route("/layers.js", get(|| async { assets::layers_script() }))
        .route("/style.css", get(|| async { assets::style() }))
        .route("/api/runs", get(runs))
        .route("/api/runs/{name}", get(run_details))
        .route("/api/runs/{name}/eval", get(evaluation))
        .route("/api/runs/{name}/eval/cell", get(cell))
        .route("/api/runs/{name}/test-images/{index}", get(test_image))
        .route("/api/runs/{name}/predict", post(predict))
        .route("/api/runs/{name}/explain", post(explain))
        .route("/api/runs/{name}/filters", get(run_filters))
        .route("/api/sweeps", get(sweeps))
        .route("/api/sweeps/{name}", get(sweep))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} {}: not a method this route answers (docs/serve.md lists them)",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("{}: no such page or API route", request.uri().path()),
    )
}

async fn runs(State(state): State<Arc<AppState>>) -> Result<Json<Vec<RunInfo>>, ApiError> {
    blocking(move || Ok(Json(run::list_runs(&state.artifacts)?))).await
}

/// The sweeps in the artifacts folder, each ranked as `lenet sweep report` ranks it.
async fn sweeps(State(state): State<Arc<AppState>>) -> Result<Json<Vec<SweepReport>>, ApiError> {
    blocking(move || {
        // A sweep whose sweep.json cannot be read is left out here (its own page says why).
        let reports = folder::list_sweeps(&state.artifacts)
            .iter()
            .filter_map(|dir| SweepReport::read(dir, false).ok())
            .collect();
        Ok(Json(reports))
    })
    .await
}

/// One sweep ranked, with every trial's epochs for its curves.
async fn sweep(
    State(state): State<Arc<AppState>>,
    name: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<SweepReport>, ApiError> {
    let name = run_name(name)?;
    blocking(move || {
        let dir = folder::find_sweep(&state.artifacts, &name)?;
        Ok(Json(SweepReport::read(&dir, true)?))
    })
    .await
}

/// A run name from the address, or why it cannot be one.
fn run_name(path: Result<UrlPath<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|UrlPath(name)| name)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
}

async fn run_details(
    State(state): State<Arc<AppState>>,
    name: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<RunDetails>, ApiError> {
    let name = run_name(name)?;
    blocking(move || {
        let dir = run::find_run(&state.artifacts, &name)?;
        Ok(Json(run::listing::details(&dir)))
    })
    .await
}

/// One test image's answer, as `eval/predictions.csv` holds it.
#[derive(Debug, Clone, Copy, Serialize)]
struct Answer {
    index: usize,
    label: Class,
    predicted: Class,
    probability: f32,
}

#[derive(Serialize)]
struct EvalView {
    report: EvalReport,
    /// The mistakes the model was surest of, surest first.
    mistakes: Vec<Answer>,
}

/// The run's evaluation on its test set, made by `lenet eval`'s code when the run has none yet
/// (or its model is newer than it), then read from `eval/`.
async fn evaluation(
    State(state): State<Arc<AppState>>,
    name: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<EvalView>, ApiError> {
    let (report, answers) = evaluated(state, run_name(name)?).await?;
    let mut mistakes: Vec<Answer> = answers
        .into_iter()
        .filter(|a| a.label != a.predicted)
        .collect();
    mistakes.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    mistakes.truncate(MISTAKES_SHOWN);
    Ok(Json(EvalView { report, mistakes }))
}

#[derive(Deserialize)]
struct CellQuery {
    label: Class,
    predicted: Class,
}

/// The test images of one cell of the confusion matrix: labelled `label`, answered `predicted`.
async fn cell(
    State(state): State<Arc<AppState>>,
    name: Result<UrlPath<String>, PathRejection>,
    query: Result<Query<CellQuery>, QueryRejection>,
) -> Result<Json<Vec<Answer>>, ApiError> {
    let name = run_name(name)?;
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "a cell is ?label=N&predicted=N, class numbers: {}",
                e.body_text()
            ),
        )
    })?;
    let (_, answers) = evaluated(state, name).await?;
    let mut images: Vec<Answer> = answers
        .into_iter()
        .filter(|a| a.label == query.label && a.predicted == query.predicted)
        .collect();
    images.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    images.truncate(CELL_IMAGES);
    Ok(Json(images))
}

async fn evaluated(
    state: Arc<AppState>,
    name: String,
) -> Result<(EvalReport, Vec<Answer>), ApiError> {
    let dir = run::find_run(&state.artifacts, &name)?;
    let _admitted = state
        .evaluations
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::busy("evaluating other runs", 10))?;
    let _one_at_a_time = state.evaluating.lock().await;
    let state = state.clone();
    blocking(move || {
        let eval_dir = dir.join(EVAL_DIR);
        let (report_file, predictions_file) =
            (eval_dir.join(REPORT_FILE), eval_dir.join(PREDICTIONS_FILE));
        let read_report = || -> Option<EvalReport> {
            serde_json::from_slice(&std::fs::read(&report_file).ok()?).ok()
        };
        // An evaluation older than the model, or written by an older version (whose report
        // this one cannot read), is made again.
        let fresh = is_newer(&predictions_file, &dir.join(MODEL_FILE))
            && is_newer(&report_file, &dir.join(MODEL_FILE));
        let report = match fresh.then(read_report).flatten() {
            Some(report) => report,
            None => {
                // An unfinished run, or one without a config, is refused by `eval_run` itself.
                let data_dir = match TrainingConfig::load(&dir.join(run::CONFIG_FILE)) {
                    Ok(config) => state.data_dir_for(&config),
                    Err(_) => state.data_dir.clone(),
                };
                let options = EvalOptions {
                    data_dir,
                    device: state.device,
                    progress: false,
                    model: crate::run::ModelChoice::Last,
                };
                eval_run(&dir, &options)?.report
            }
        };
        let unreadable = |path: &Path, e: String| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{}: cannot read: {e}", path.display()),
            )
        };
        let answers = std::fs::read_to_string(&predictions_file)
            .map_err(|e| unreadable(&predictions_file, e.to_string()))
            .map(|csv| read_answers(&csv))?;
        Ok((report, answers))
    })
    .await
}

/// Whether `path` exists and was written after `than` (or `than` does not exist).
fn is_newer(path: &Path, than: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(path), modified(than)) {
        (Some(a), Some(b)) => a >= b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn read_answers(csv: &str) -> Vec<Answer> {
    csv.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cells = line.split(',');
            Some(Answer {
                index: cells.next()?.parse().ok()?,
                label: cells.next()?.parse().ok()?,
                predicted: cells.next()?.parse().ok()?,
                probability: cells.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// A test image of the run's test set, as a 28x28 greyscale PNG.
async fn test_image(
    State(state): State<Arc<AppState>>,
    path: Result<UrlPath<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let UrlPath((name, index)) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let index: usize = index.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{index:?}: a test image index is a whole number"),
        )
    })?;
    compute(&state.clone(), move || {
        let dir = run::find_run(&state.artifacts, &name)?;
        let run = state.model(&dir)?;
        let split = state.test_set(&run)?;
        let image = split.get(index).map_err(|_| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no test image {index}: the test set has {}", split.len()),
            )
        })?;
        let png = png_of(&image.pixels);
        Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
    })
    .await
}

fn png_of(pixels: &[u8]) -> Vec<u8> {
    let side = crate::input::IMAGE_SIDE as u32;
    let image = image::GrayImage::from_raw(side, side, pixels.to_vec()).expect("28x28 pixels");
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("a PNG encodes into memory");
    png
}

/// `lenet predict --json`'s answer for one uploaded image, with the 28x28 image the model saw.
#[derive(Serialize)]
struct PredictAnswer {
    #[serde(flatten)]
    prediction: crate::inference::predict::Prediction,
    /// The 28x28 input, light ink on black, row-major.
    input: Vec<u8>,
    /// Every class's name, in the order of `probabilities`.
    classes: Vec<String>,
}

/// Classifies an image sent as the raw body (`Content-Type: image/...`) or as the multipart
/// field `image`, prepared as `lenet predict` prepares files.
async fn predict(
    State(state): State<Arc<AppState>>,
    name: Result<UrlPath<String>, PathRejection>,
    request: Request,
) -> Result<Json<PredictAnswer>, ApiError> {
    answer_upload(state, name, request, |run, image, classes| {
        let prediction = predict_prepared(&run.model, &[image], &run.device, &classes)
            .pop()
            .expect("one answer for one image");
        PredictAnswer {
            input: prediction.input.clone(),
            prediction,
            classes,
        }
    })
    .await
}

/// `lenet explain --json`'s object for an image sent as `predict` takes it, with every class's
/// name.
#[derive(Serialize)]
struct ExplainAnswer {
    #[serde(flatten)]
    explanation: Explanation,
    /// Every class's name, in the order of `probabilities`.
    classes: Vec<String>,
}

/// Every layer's output for an uploaded image, as `lenet explain --json` gives it.
async fn explain(
    State(state): State<Arc<AppState>>,
    name: Result<UrlPath<String>, PathRejection>,
    request: Request,
) -> Result<Json<ExplainAnswer>, ApiError> {
    answer_upload(state, name, request, |run, image, classes| {
        let explanation = explain_prepared(&run.model, &[image], &run.device, &classes)
            .pop()
            .expect("one explanation for one image");
        ExplainAnswer {
            explanation,
            classes,
        }
    })
    .await
}

/// `answer` for an uploaded image (see [`uploaded_image`]), prepared as the named run's data
/// was, given the run and its class names.
async fn answer_upload<T: Send + 'static>(
    state: Arc<AppState>,
    name: Result<UrlPath<String>, PathRejection>,
    request: Request,
    answer: impl FnOnce(&FinishedRun, (&Path, &Prepared), Vec<String>) -> T + Send + 'static,
) -> Result<Json<T>, ApiError> {
    let dir = run::find_run(&state.artifacts, &run_name(name)?)?;
    let upload = uploaded_image(&state, request).await?;
    compute(&state.clone(), move || {
        let finished = state.model(&dir)?;
        let name = Path::new("upload");
        let data = &finished.config.data;
        let decoding = Decoding {
            max_pixels: state.max_image_pixels.unwrap_or(data.max_image_pixels),
            ..data.decoding()
        };
        let prepared = decode_image(&upload.bytes, name, decoding)?;
        let classes = data.class_names();
        Ok(Json(answer(&finished, (name, &prepared), classes)))
    })
    .await
}

/// The run's learned filters, as `lenet explain --filters --json` gives them.
async fn run_filters(
    State(state): State<Arc<AppState>>,
    name: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<Filters>, ApiError> {
    let dir = run::find_run(&state.artifacts, &run_name(name)?)?;
    compute(&state.clone(), move || {
        Ok(Json(filters(&state.model(&dir)?.model)))
    })
    .await
}

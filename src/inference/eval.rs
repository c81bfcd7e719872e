//! `lenet eval`: a finished run's final (or best) model on the test set, as a report and
//! figures.

use std::path::{Path, PathBuf};

use burn::data::dataset::Dataset;

use super::{Evaluation, InferenceError, evaluate};
use crate::config::TrainingConfig;
use crate::data::split::ImageSplit;
use crate::data::{dataset, idx, source};
use crate::device::BackendKind;
use crate::report::{EvalReport, plots};
use crate::run::{self, FinishedRun, ModelChoice};

/// Every test image's answer, for finding the images behind a cell of the confusion matrix.
pub const PREDICTIONS_FILE: &str = "predictions.csv";
/// The evaluation report, as JSON.
pub const REPORT_FILE: &str = "report.json";

/// How many of the most confident mistakes `mistakes.png` shows.
const MISTAKES_SHOWN: usize = 32;

#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Where the data set is, instead of the folder the run was trained from.
    pub data_dir: Option<PathBuf>,
    pub device: Option<BackendKind>,
    /// Show a progress bar (on stderr, when it is a terminal).
    pub progress: bool,
    /// The final model or the best epoch's.
    pub model: ModelChoice,
}

/// What `eval` produced: the report and the files it wrote.
pub struct EvalOutcome {
    pub report: EvalReport,
    pub backend: BackendKind,
    pub files: Vec<PathBuf>,
}

/// The test set a run was tested on (the part of it, if its config limits it), read from
/// `data_dir` or the run's own data folder.
pub fn run_test_set(
    config: &TrainingConfig,
    data_dir: Option<&Path>,
) -> Result<ImageSplit, InferenceError> {
    let data = &config.data;
    let dir = data_dir.or(data.dir.as_deref());
    let location = source::locate_dataset(data.dataset, dir, &idx::TEST_FILES)?;
    let read = dataset::read(
        data.dataset,
        &location.dir,
        &data.read_options(config.seed),
        true,
    )?;
    Ok(read.test.limit(data.test_limit))
}

/// Evaluates the run in `run_dir` on the test set (the part the run was tested on, if its config
/// limits it) and writes `report.json`, `confusion.csv`, `confusion.png`, `mistakes.png` and
/// `predictions.csv` to its `eval/` (`eval-best/` for the best model).
pub fn eval_run(run_dir: &Path, options: &EvalOptions) -> Result<EvalOutcome, InferenceError> {
    let run = FinishedRun::load_model(run_dir, options.device, options.model)?;
    let test = run_test_set(&run.config, options.data_dir.as_deref())?;
    let names = run.config.data.class_names();
    let evaluation = evaluate(
        &run.model,
        test.clone(),
        run.config.batch_size,
        &run.device,
        options.progress,
    )
    .map_err(|e| InferenceError::Evaluation(format!("test set: {e}")))?;
    let out = run_dir.join(options.model.eval_dir());
    let (report, files) = write_eval_files(&out, &evaluation, &test, &names)?;
    Ok(EvalOutcome {
        report,
        backend: run.backend,
        files: files.all(),
    })
}

/// The files `lenet eval` writes into a run's `eval/` (or `eval-best/`), by what they hold.
pub struct EvalFiles {
    pub report: PathBuf,
    pub confusion_csv: PathBuf,
    pub confusion_png: PathBuf,
    pub mistakes_png: PathBuf,
    pub predictions: PathBuf,
}

impl EvalFiles {
    pub fn in_dir(out: &Path) -> Self {
        Self {
            report: out.join(REPORT_FILE),
            confusion_csv: out.join("confusion.csv"),
            confusion_png: out.join("confusion.png"),
            mistakes_png: out.join("mistakes.png"),
            predictions: out.join(PREDICTIONS_FILE),
        }
    }

    /// Every file, in the order `lenet eval` lists them.
    pub fn all(&self) -> Vec<PathBuf> {
        [
            &self.report,
            &self.confusion_csv,
            &self.confusion_png,
            &self.mistakes_png,
            &self.predictions,
        ]
        .map(PathBuf::clone)
        .to_vec()
    }
}

/// Writes what `lenet eval` writes of `evaluation` on `test` into `out` (made if missing).
pub fn write_eval_files(
    out: &Path,
    evaluation: &Evaluation,
    test: &ImageSplit,
    names: &[String],
) -> Result<(EvalReport, EvalFiles), InferenceError> {
    let report = evaluation.report(names);
    run::create_dir(out)?;
    let files = EvalFiles::in_dir(out);
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    run::write_atomic(&files.report, &json)?;
    run::write_atomic(&files.confusion_csv, report.confusion_csv().as_bytes())?;
    let csv = evaluation.predictions_csv(names, |i| test.file(i));
    run::write_atomic(&files.predictions, csv.as_bytes())?;
    plots::confusion(&files.confusion_png, &report)?;
    let mistakes = evaluation.worst_mistakes(MISTAKES_SHOWN);
    let images: Vec<Vec<u8>> = mistakes
        .iter()
        .map(|m| test.get(m.index).map(|item| item.pixels))
        .collect::<Result<_, _>>()
        .map_err(|e| InferenceError::Evaluation(format!("test set: {e}")))?;
    let images: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    plots::mistakes(&files.mistakes_png, &mistakes, &images, names)?;
    Ok((report, files))
}

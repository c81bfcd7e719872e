//! `lenet eval`: a finished run's final model on the test set, as a report and figures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::Dataset;

use super::evaluate;
use crate::Error;
use crate::data::idx;
use crate::data::mnist::{Mnist, MnistDataset};
use crate::data::source;
use crate::device::BackendKind;
use crate::report::{EvalReport, plots};
use crate::run::{self, EVAL_DIR, FinishedRun};

/// Every test image's answer, for finding the images behind a cell of the confusion matrix.
pub const PREDICTIONS_FILE: &str = "predictions.csv";
/// The evaluation report, as JSON.
pub const REPORT_FILE: &str = "report.json";

/// How many of the most confident mistakes `mistakes.png` shows.
const MISTAKES_SHOWN: usize = 32;

#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Where MNIST is, instead of the folder the run was trained from.
    pub data_dir: Option<PathBuf>,
    pub device: Option<BackendKind>,
    /// Show a progress bar (on stderr, when it is a terminal).
    pub progress: bool,
}

/// What `eval` produced: the report and the files it wrote.
pub struct EvalOutcome {
    pub report: EvalReport,
    pub backend: BackendKind,
    pub files: Vec<PathBuf>,
}

/// Evaluates the run in `run_dir` on the test set (the part the run was tested on, if its config
/// limits it) and writes `eval/report.json`, `eval/confusion.csv`, `eval/confusion.png`,
/// `eval/mistakes.png` and `eval/predictions.csv` there.
pub fn eval_run(run_dir: &Path, options: &EvalOptions) -> Result<EvalOutcome, Error> {
    let run = FinishedRun::load(run_dir, options.device)?;
    let data_dir = options
        .data_dir
        .as_deref()
        .or(run.config.data.dir.as_deref());
    let location = source::locate_dataset(run.config.data.dataset, data_dir, &idx::TEST_FILES)?;
    let test = Mnist::read_test(&location.dir)?;
    let test = MnistDataset::new(Arc::new(test)).limit(run.config.data.test_limit);
    let evaluation = evaluate(
        &run.model,
        test.clone(),
        run.config.batch_size,
        &run.device,
        options.progress,
    )
    .map_err(|e| Error::Evaluation(format!("test set: {e}")))?;
    let report = evaluation.report();

    let out = run_dir.join(EVAL_DIR);
    run::create_dir(&out)?;
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    let files = [
        out.join(REPORT_FILE),
        out.join("confusion.csv"),
        out.join("confusion.png"),
        out.join("mistakes.png"),
        out.join(PREDICTIONS_FILE),
    ];
    run::write_atomic(&files[0], &json)?;
    run::write_atomic(&files[1], report.confusion_csv().as_bytes())?;
    run::write_atomic(&files[4], evaluation.predictions_csv().as_bytes())?;
    plots::confusion(&files[2], &report)?;
    let mistakes = evaluation.worst_mistakes(MISTAKES_SHOWN);
    let images: Vec<Vec<u8>> = mistakes
        .iter()
        .map(|m| test.get(m.index).map(|item| item.pixels))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Evaluation(format!("test set: {e}")))?;
    let images: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    plots::mistakes(&files[3], &mistakes, &images)?;
    Ok(EvalOutcome {
        report,
        backend: run.backend,
        files: files.to_vec(),
    })
}

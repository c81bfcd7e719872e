//! `--tensorboard` read back by TensorBoard's own reader (`event_accumulator`, through
//! `tests/tensorboard_check.py`): the epochs' scalars equal `metrics.csv`, the batch losses and
//! test figures are there, the HParams tab gets the run's config keys and its end, the
//! pictures are `lenet eval`'s, and a continued run logs each step once.
//!
//! The Python side needs the `tensorboard` package: `.ci/run` installs it in its virtual
//! environment and names the interpreter in `LENET_PYTHON`. Without it these checks say why and
//! are skipped, unless `LENET_REQUIRE_TENSORBOARD` is set, as CI sets it: then they fail.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{
    interrupt_after, lenet, project_file, real_mnist_dir, runs_json, smoke_args, summary_of,
    tensorboard_python, train_smoke,
};
use lenet::run::history::{self, EpochMetrics};
use lenet::tracking::tensorboard::{BATCH_LOSS_EVERY, TensorBoardLog};
use serde_json::Value;

/// What TensorBoard's reader finds in `dir`.
fn read_events(python: &str, dir: &Path) -> Value {
    let output = Command::new(python)
        .arg(project_file("tests/tensorboard_check.py"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tensorboard_check.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A scalar tag's points, as (step, value).
fn points(events: &Value, tag: &str) -> Vec<(i64, f64)> {
    events["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("no scalar {tag} in {events}"))
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// `tag`'s points against what `metrics.csv` holds for each epoch, at each epoch's last batch.
fn assert_epochs_match(
    events: &Value,
    tag: &str,
    csv: &[EpochMetrics],
    bpe: i64,
    field: fn(&EpochMetrics) -> Option<f64>,
) {
    let expected: Vec<(i64, f64)> = csv
        .iter()
        .map(|e| (e.epoch as i64 * bpe, field(e).unwrap()))
        .collect();
    let found = points(events, tag);
    assert_eq!(
        found.len(),
        expected.len(),
        "{tag}: {found:?} against {expected:?}"
    );
    for ((step, value), (want_step, want)) in found.iter().zip(&expected) {
        assert_eq!(step, want_step, "{tag}");
        // TensorBoard keeps scalars as 32-bit floats.
        assert_eq!(*value as f32, *want as f32, "{tag} at step {step}");
    }
}

fn metrics_csv(run: &Path) -> Vec<EpochMetrics> {
    history::from_csv(&fs::read_to_string(run.join("metrics.csv")).unwrap())
}

fn png_size(path: &Path) -> (u64, u64) {
    let (w, h) = image::image_dimensions(path).unwrap();
    (w.into(), h.into())
}

#[test]
fn tensorboard_reads_a_run_as_its_metrics_config_and_pictures() {
    let Some(python) = tensorboard_python("the TensorBoard reader checks") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    train_smoke(&run, &["--no-tui", "--tensorboard"]);
    let summary = summary_of(&run);
    let bpe = summary.train_images.div_ceil(64) as i64;
    let events = read_events(&python, &run.join("tensorboard"));
    let csv = metrics_csv(&run);
    assert_eq!(csv.len(), 2);

    assert_epochs_match(&events, "train/loss", &csv, bpe, |e| e.train_loss);
    assert_epochs_match(&events, "train/accuracy", &csv, bpe, |e| e.train_accuracy);
    assert_epochs_match(&events, "valid/loss", &csv, bpe, |e| e.valid_loss);
    assert_epochs_match(&events, "valid/accuracy", &csv, bpe, |e| e.valid_accuracy);
    assert_epochs_match(&events, "learning_rate", &csv, bpe, |e| e.learning_rate);

    let every = BATCH_LOSS_EVERY as i64;
    let batches = points(&events, "train/batch_loss");
    assert_eq!(batches.len() as i64, 2 * bpe / every);
    assert!(
        batches
            .iter()
            .all(|(step, loss)| step % every == 0 && loss.is_finite() && *loss > 0.0)
    );
    assert!(
        batches.first().unwrap().1 > batches.last().unwrap().1,
        "the loss falls: {batches:?}"
    );

    let test_step = 2 * bpe;
    assert_eq!(
        points(&events, "test/accuracy"),
        [(test_step, summary.test_accuracy as f32 as f64)]
    );
    assert_eq!(
        points(&events, "test/loss"),
        [(test_step, summary.test_loss as f32 as f64)]
    );

    let hparams = &events["hparams"];
    assert_eq!(hparams["optimizer.learning_rate"], 0.002);
    assert_eq!(hparams["epochs"], 2.0);
    assert_eq!(hparams["batch_size"], 64.0);
    assert_eq!(hparams["model.activation"], "relu");
    assert_eq!(hparams["data.train_limit"], 8000.0);
    assert!(
        hparams.get("data.dir").is_none(),
        "no machine paths: {hparams}"
    );
    assert_eq!(events["group"], "run", "the run folder's name");
    assert_eq!(events["end_status"], 1, "STATUS_SUCCESS");

    for (tag, file) in [
        ("test/confusion", "confusion.png"),
        ("test/mistakes", "mistakes.png"),
    ] {
        let image = &events["images"][tag][0];
        let (width, height) = png_size(&run.join("eval").join(file));
        assert_eq!(
            (image["width"].as_u64(), image["height"].as_u64()),
            (Some(width), Some(height)),
            "{tag}"
        );
        assert_eq!(image["step"], test_step);
    }

    let runs = runs_json(root.path());
    assert_eq!(runs[0]["logged_to"][0]["tracker"], "tensorboard", "{runs}");
    assert_eq!(
        runs[0]["logged_to"].as_array().map(Vec::len),
        Some(1),
        "{runs}"
    );

    // Continued to a third epoch: the new file adds that epoch, and nothing twice.
    lenet()
        .args(["resume", "--no-tui", "--epochs", "3", "--run"])
        .arg(&run)
        .arg("--data-dir")
        .arg(real_mnist_dir())
        .assert()
        .success();
    let events = read_events(&python, &run.join("tensorboard"));
    let csv = metrics_csv(&run);
    assert_eq!(csv.len(), 3);
    assert_epochs_match(&events, "valid/accuracy", &csv, bpe, |e| e.valid_accuracy);
    assert_epochs_match(&events, "train/loss", &csv, bpe, |e| e.train_loss);
    assert_eq!(
        points(&events, "train/batch_loss").len() as i64,
        3 * bpe / every
    );
    assert_eq!(
        points(&events, "test/accuracy").len(),
        2,
        "one per finished stretch"
    );
    assert_eq!(
        fs::read_dir(run.join("tensorboard")).unwrap().count(),
        2,
        "a file per process"
    );
    // TensorBoard reads a run's first HParams records: the config as the run started, and
    // its first end.
    assert_eq!(events["hparams"]["epochs"], 2.0);
    assert_eq!(events["end_status"], 1);
}

#[test]
fn tensorboard_drops_what_a_stopped_process_logged_past_its_checkpoint() {
    let Some(python) = tensorboard_python("the TensorBoard reader checks") else {
        return;
    };
    let run = tempfile::tempdir().unwrap();
    let params = [("seed".to_string(), serde_json::json!(1))];
    // The first process trained 130 batches of epoch 1 (of 100 a epoch), checkpointed at 60.
    let mut first = TensorBoardLog::start(run.path(), &params, "run", 100, (1, 0)).unwrap();
    for done in 1..=100 {
        first.batch(1, done, 1.0).unwrap();
    }
    first
        .epoch(&EpochMetrics {
            epoch: 1,
            valid_accuracy: Some(0.5),
            ..Default::default()
        })
        .unwrap();
    for done in 1..=30 {
        first.batch(2, done, 1.0).unwrap();
    }
    drop(first);
    // The second goes on from epoch 1, batch 60, and logs other losses from there.
    let mut second = TensorBoardLog::start(run.path(), &params, "run", 100, (1, 60)).unwrap();
    for done in 61..=100 {
        second.batch(1, done, 2.0).unwrap();
    }
    second
        .epoch(&EpochMetrics {
            epoch: 1,
            valid_accuracy: Some(0.75),
            ..Default::default()
        })
        .unwrap();
    drop(second);

    let events = read_events(&python, &run.path().join("tensorboard"));
    assert_eq!(points(&events, "train/batch_loss"), [(50, 1.0), (100, 2.0)]);
    assert_eq!(points(&events, "valid/accuracy"), [(100, 0.75)]);
}

#[test]
fn tensorboard_turned_on_for_a_resume_goes_on_logging_when_resumed_again() {
    let Some(python) = tensorboard_python("the TensorBoard reader checks") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("late");
    // Started without TensorBoard and stopped in its second epoch...
    interrupt_after(&smoke_args(&run, 3, &[]), "epoch 1/3");
    // ...resumed with it, and stopped again at once...
    let resumed = smoke_args(&run, 3, &["--resume", "--tensorboard"]);
    interrupt_after(&resumed, "Resuming at epoch");
    // ...then resumed plainly: the run's config now says to log, so it does.
    lenet()
        .args(["resume", "--no-tui", "--run"])
        .arg(&run)
        .arg("--data-dir")
        .arg(real_mnist_dir())
        .assert()
        .success();
    let events = read_events(&python, &run.join("tensorboard"));
    let bpe = summary_of(&run).train_images.div_ceil(64) as i64;
    let logged: Vec<i64> = points(&events, "valid/accuracy")
        .iter()
        .map(|p| p.0)
        .collect();
    assert!(
        logged.ends_with(&[3 * bpe]),
        "the last epoch is logged: {logged:?}"
    );
    assert!(
        !logged.contains(&bpe),
        "epoch 1 came before the log: {logged:?}"
    );
}

//! Real training runs through Burn's Learner on small synthetic datasets.

mod common;

use std::fs;

use common::write_synthetic_mnist;
use lenet::config::{
    AdamSection, DataSection, ModelSection, OptimizerConfig, SgdSection, TrainingConfig,
};
use lenet::model::Variant;
use lenet::run::history::EpochMetrics;
use lenet::run::{CONFIG_FILE, MODEL_FILE, RunSummary, SUMMARY_FILE};
use lenet::training::{StartMode, TrainOptions, TrainingError, train};

fn options() -> TrainOptions {
    TrainOptions {
        dashboard: false,
        ..TrainOptions::default()
    }
}

#[test]
fn training_lowers_the_loss_and_writes_the_run_directory() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    write_synthetic_mnist(&data, 400, 100, true);
    let run = root.path().join("run");
    let config = TrainingConfig {
        epochs: 3,
        batch_size: 32,
        data: DataSection {
            dir: Some(data),
            validation_size: lenet::data::SplitSize::Count(50),
            ..DataSection::default()
        },
        artifact_dir: Some(run.clone()),
        ..TrainingConfig::default()
    };

    let summary = train(&config, "test", StartMode::New, &options()).unwrap();

    assert_eq!(summary.epochs, 3);
    assert_eq!(summary.parameters, 61_706);
    assert_eq!((summary.train_images, summary.valid_images), (350, 50));
    assert_eq!(summary.test_images, 100);
    assert_eq!(summary.history.len(), 3, "{:?}", summary.history);
    let first = summary.history[0].train_loss.unwrap();
    let last = summary.history[2].train_loss.unwrap();
    assert!(last < first * 0.5, "train loss {first} -> {last}");
    assert!(summary.test_accuracy > 0.9, "{}", summary.test_accuracy);

    for file in [CONFIG_FILE, MODEL_FILE, SUMMARY_FILE] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    for epoch in 1..=3 {
        assert!(run.join(format!("train/epoch-{epoch}/Loss.log")).is_file());
        assert!(
            run.join(format!("valid/epoch-{epoch}/Accuracy.log"))
                .is_file()
        );
    }
    // 350 images in batches of 32: 11 steps an epoch. The two newest checkpoints are kept.
    let checkpoints: Vec<String> = fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".state.ckpt"))
        .collect();
    let mut checkpoints = checkpoints;
    checkpoints.sort();
    assert_eq!(
        checkpoints,
        ["step-00000022.state.ckpt", "step-00000033.state.ckpt"]
    );

    let written: RunSummary =
        serde_json::from_slice(&fs::read(run.join(SUMMARY_FILE)).unwrap()).unwrap();
    assert_eq!(written, summary);
    let resolved = TrainingConfig::load(&run.join(CONFIG_FILE)).unwrap();
    assert_eq!(resolved.device, Some(summary.device));
    assert_eq!(resolved.epochs, 3);
}

#[test]
fn validation_size_zero_validates_on_the_test_set() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    write_synthetic_mnist(&data, 100, 40, false);
    let config = TrainingConfig {
        epochs: 1,
        batch_size: 50,
        data: DataSection {
            dir: Some(data),
            validation_size: lenet::data::SplitSize::Count(0),
            train_limit: Some(60),
            test_limit: Some(30),
            ..DataSection::default()
        },
        artifact_dir: Some(root.path().join("run")),
        ..TrainingConfig::default()
    };
    let summary = train(&config, "test", StartMode::New, &options()).unwrap();
    assert!(summary.validated_on_test_set);
    assert_eq!(
        (
            summary.train_images,
            summary.valid_images,
            summary.test_images
        ),
        (60, 30, 30)
    );
}

fn small_run(root: &std::path::Path, name: &str, learning_rate: f64) -> TrainingConfig {
    let data = root.join("data");
    if !data.exists() {
        write_synthetic_mnist(&data, 300, 60, true);
    }
    TrainingConfig {
        epochs: 2,
        batch_size: 25,
        optimizer: OptimizerConfig::Adam(AdamSection {
            learning_rate,
            ..AdamSection::default()
        }),
        data: DataSection {
            dir: Some(data),
            validation_size: lenet::data::SplitSize::Count(50),
            ..DataSection::default()
        },
        artifact_dir: Some(root.join(name)),
        ..TrainingConfig::default()
    }
}

/// The metrics of a summary, without what differs between two identical runs: timings and
/// where the run was written.
fn metrics(summary: &RunSummary) -> RunSummary {
    RunSummary {
        run_dir: Default::default(),
        train_seconds: 0.0,
        test_seconds: 0.0,
        history: summary
            .history
            .iter()
            .map(|epoch| EpochMetrics {
                train_seconds: None,
                valid_seconds: None,
                ..epoch.clone()
            })
            .collect(),
        ..summary.clone()
    }
}

#[test]
fn two_runs_with_the_same_seed_have_identical_metrics() {
    let root = tempfile::tempdir().unwrap();
    let first = train(
        &small_run(root.path(), "first", 1e-3),
        "test",
        StartMode::New,
        &options(),
    )
    .unwrap();
    let second = train(
        &small_run(root.path(), "second", 1e-3),
        "test",
        StartMode::New,
        &options(),
    )
    .unwrap();
    assert_eq!(metrics(&first), metrics(&second));
    assert!(first.history.iter().all(|e| e.valid_loss.is_some()));

    let mut other_seed = small_run(root.path(), "third", 1e-3);
    other_seed.seed += 1;
    let third = train(&other_seed, "test", StartMode::New, &options()).unwrap();
    assert_ne!(
        metrics(&first).history,
        metrics(&third).history,
        "the seed matters"
    );
}

#[test]
fn a_loss_that_is_not_finite_stops_training_and_keeps_the_last_good_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let mut config = small_run(root.path(), "nan", 1e6);
    // Plain SGD: Adam's steps are bounded by the learning rate, which on some backends leaves
    // the loss huge but finite; SGD's grow with the gradient until they overflow.
    config.optimizer = OptimizerConfig::Sgd(SgdSection {
        learning_rate: 1e6,
        ..SgdSection::default()
    });
    let error = train(&config, "test", StartMode::New, &options()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("training stopped: the loss became"),
        "{message}"
    );
    assert!(
        message.contains("optimizer.learning_rate = 1000000"),
        "{message}"
    );
    assert!(!error.is_usage(), "a failure met while training: {error}");
    let run = root.path().join("nan");
    assert!(!run.join(SUMMARY_FILE).exists());
    assert!(!run.join(MODEL_FILE).exists());
    // Whatever checkpoints were written before the loss diverged hold finite weights.
    if let TrainingError::NonFiniteLoss {
        checkpoint: Some(path),
        ..
    } = &error
    {
        assert!(path.is_file(), "{}", path.display());
    }
}

#[test]
fn the_1998_variant_trains_too() {
    let root = tempfile::tempdir().unwrap();
    let mut config = small_run(root.path(), "lecun98", 1e-3);
    config.epochs = 5;
    config.model = ModelSection {
        variant: Variant::Lecun98,
        ..ModelSection::default()
    };
    let summary = train(&config, "test", StartMode::New, &options()).unwrap();
    assert_eq!(summary.parameters, 60_000);
    let first = summary.history[0].train_loss.unwrap();
    let last = summary.history[4].train_loss.unwrap();
    assert!(last < first * 0.5, "train loss {first} -> {last}");
    assert!(summary.test_accuracy > 0.9, "{}", summary.test_accuracy);
}

/// With `label_smoothing` 0.5 the training targets put 0.55 on the true class and 0.05 on each
/// other, so the training loss cannot fall below their entropy (1.68) however well the model
/// learns, while validation's plain cross-entropy falls as without it.
#[test]
fn label_smoothing_is_the_loss_training_minimises() {
    let root = tempfile::tempdir().unwrap();
    let run = |name, label_smoothing| TrainingConfig {
        epochs: 4,
        label_smoothing,
        ..small_run(root.path(), name, 3e-3)
    };
    let plain = train(&run("plain", None), "test", StartMode::New, &options()).unwrap();
    let smoothed = train(
        &run("smoothed", Some(0.5)),
        "test",
        StartMode::New,
        &options(),
    )
    .unwrap();
    let floor = -(0.55f64 * 0.55f64.ln() + 9.0 * 0.05 * 0.05f64.ln());
    let last = |summary: &RunSummary| summary.history.last().cloned().unwrap();
    let (plain, smoothed) = (last(&plain), last(&smoothed));
    assert!(plain.train_loss.unwrap() < floor - 0.5, "{plain:?}");
    assert!(smoothed.train_loss.unwrap() >= floor, "{smoothed:?}");
    assert!(smoothed.valid_loss.unwrap() < floor - 0.5, "{smoothed:?}");
}

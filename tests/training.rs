//! Real training runs through Burn's Learner on small synthetic datasets.

mod common;

use std::fs;

use common::write_synthetic_mnist;
use lenet::config::{DataSection, TrainingConfig};
use lenet::run_dir::{CONFIG_FILE, MODEL_FILE, SUMMARY_FILE};
use lenet::training::{RunOptions, RunSummary, train};

fn options() -> RunOptions {
    RunOptions {
        dashboard: false,
        ..RunOptions::new("test")
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
            validation_size: 50,
            ..DataSection::default()
        },
        artifact_dir: Some(run.clone()),
        ..TrainingConfig::default()
    };

    let summary = train(&config, &options()).unwrap();

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
    assert!(run.join("checkpoint/model-3.bpk").is_file());

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
            validation_size: 0,
            train_limit: Some(60),
            test_limit: Some(30),
        },
        artifact_dir: Some(root.path().join("run")),
        ..TrainingConfig::default()
    };
    let summary = train(&config, &options()).unwrap();
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

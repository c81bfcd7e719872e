//! A tiny training run on the backend this build prefers: flex by default, and whichever
//! `--features` names otherwise. CI runs it with `--features wgpu` on a software Vulkan driver.

mod common;

use common::write_synthetic_mnist;
use lenet::config::{DataSection, TrainingConfig};
use lenet::device::BackendKind;
use lenet::training::{TrainOptions, train};

#[test]
fn a_tiny_run_trains_on_the_preferred_backend() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    write_synthetic_mnist(&data, 200, 50, true);
    let config = TrainingConfig {
        epochs: 2,
        batch_size: 25,
        data: DataSection {
            dir: Some(data),
            validation_size: 25,
            ..DataSection::default()
        },
        artifact_dir: Some(root.path().join("run")),
        ..TrainingConfig::default()
    };
    let options = TrainOptions {
        dashboard: false,
        ..TrainOptions::new("backend")
    };

    let summary = train(&config, &options).unwrap();

    assert_eq!(summary.device, BackendKind::preferred());
    let first = summary.history[0].train_loss.unwrap();
    let last = summary.history[1].train_loss.unwrap();
    assert!(
        last < first,
        "train loss {first} -> {last} on {}",
        summary.device
    );
    assert_eq!(summary.test_images, 50);
}

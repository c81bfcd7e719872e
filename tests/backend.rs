//! A tiny training run on the backend this build prefers: flex by default, and whichever
//! `--features` names otherwise. CI runs it with `--features wgpu` on a software Vulkan driver.

mod common;

use common::write_synthetic_mnist;
use lenet::config::{DataSection, TrainingConfig};
use lenet::device::BackendKind;
use lenet::training::{StartMode, TrainOptions, train};

#[test]
fn a_tiny_run_trains_on_the_preferred_backend() {
    let root = tempfile::tempdir().unwrap();
    #[cfg(any(feature = "wgpu", feature = "vulkan"))]
    // SAFETY: the only test of this binary, and nothing else runs yet to read the environment.
    unsafe {
        std::env::set_var("XDG_CACHE_HOME", root.path().join("cache"));
    }
    let data = root.path().join("data");
    write_synthetic_mnist(&data, 200, 50, true);
    let config = TrainingConfig {
        epochs: 2,
        batch_size: 25,
        data: DataSection {
            dir: Some(data),
            validation_size: lenet::data::SplitSize::Count(25),
            ..DataSection::default()
        },
        artifact_dir: Some(root.path().join("run")),
        ..TrainingConfig::default()
    };
    let options = TrainOptions {
        dashboard: false,
        ..TrainOptions::default()
    };

    let summary = train(&config, "backend", StartMode::New, &options).unwrap();

    assert_eq!(summary.device, BackendKind::preferred());
    let first = summary.history[0].train_loss.unwrap();
    let last = summary.history[1].train_loss.unwrap();
    assert!(
        last < first,
        "train loss {first} -> {last} on {}",
        summary.device
    );
    assert_eq!(summary.test_images, 50);
    // CubeCL's autotune results and compiled kernels land where docs/backends.md says, so that the
    // next run starts warm.
    #[cfg(any(feature = "wgpu", feature = "vulkan"))]
    {
        let cache = lenet::device::gpu_cache_dir();
        assert!(cache.starts_with(root.path()), "{}", cache.display());
        let kept = walkdir(&cache);
        assert!(!kept.is_empty(), "nothing kept in {}", cache.display());
    }
}

#[cfg(any(feature = "wgpu", feature = "vulkan"))]
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walkdir(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

//! `lenet bench`: how fast each compiled backend trains, evaluates and predicts. It measures the
//! same things, the same way, as `benches/pytorch_reference.py`, so that the two can be set side
//! by side (`benches/compare.sh`): the whole 60,000-image training set per epoch after a few
//! untimed warm-up batches, the test set in batches of 1,000, and single images.
//!
//! Training here is the product's own step: Burn's `Learner` (forward, cross-entropy, backward,
//! optimizer step) fed by the training loader, with the loss read back every batch as the
//! training loop's NaN guard does. What it leaves out is Burn's event processing (metrics,
//! dashboard), which a real run adds on top.

use std::time::Instant;

use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::prelude::*;
use burn::train::Learner;
use serde::Serialize;
use thiserror::Error;

use crate::config::TrainingConfig;
use crate::data::error::DataError;
use crate::data::loader::EpochLoader;
use crate::data::split::ImageSplit;
use crate::data::{dataset, idx, source};
use crate::device::{BackendKind, NotCompiled};
use crate::inference::{classify, evaluate};
use crate::model::LeNet5;
use crate::training::step;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    pub backends: Vec<BackendKind>,
    pub batch_sizes: Vec<usize>,
    /// Timed training epochs per backend and batch size.
    pub epochs: usize,
    /// Untimed training batches first: allocation, kernel compilation and autotuning on GPUs.
    pub warmup_batches: usize,
    pub eval_batch_size: usize,
    /// Single-image predictions timed for the latency percentiles.
    pub predict_samples: usize,
}

/// The figures for one backend at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub framework: String,
    pub device: BackendKind,
    pub threads: usize,
    pub batch_size: usize,
    pub epoch_seconds: Vec<f64>,
    pub train_images_per_second: f64,
    pub eval_images_per_second: f64,
    /// Of the model after the timed epochs; a check that the run trained, not a result.
    pub test_accuracy: f64,
    pub predict_p50_ms: f64,
    pub predict_p99_ms: f64,
    /// The process's peak resident memory so far (Linux only): it covers everything measured
    /// before in the same process, so run one backend and batch size for a clean figure.
    pub peak_memory_mib: Option<f64>,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fastest = self
            .epoch_seconds
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        // On a GPU the first epoch also tunes and compiles kernels (unless a previous run left
        // them in the cache); the later ones show the warm speed.
        let first = match self.epoch_seconds.as_slice() {
            [first, _, ..] => format!(", first epoch {first:.2} s"),
            _ => String::new(),
        };
        write!(
            f,
            "{} ({} threads), batch {}: train {:.0} img/s ({fastest:.2} s/epoch{first}), eval {:.0} \
             img/s, predict p50 {:.3} ms p99 {:.3} ms, peak memory {}, test accuracy {:.4}",
            self.device,
            self.threads,
            self.batch_size,
            self.train_images_per_second,
            self.eval_images_per_second,
            self.predict_p50_ms,
            self.predict_p99_ms,
            self.peak_memory_mib
                .map_or("n/a".to_string(), |mib| format!("{mib:.0} MiB")),
            self.test_accuracy,
        )
    }
}

/// What can stop a measurement, in one line.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Device(#[from] NotCompiled),
    #[error("training failed: {0}")]
    Failed(String),
}

impl BenchError {
    /// Whether the error is in what the user asked for rather than met while measuring.
    pub fn is_usage(&self) -> bool {
        match self {
            BenchError::Device(_) => true,
            BenchError::Data(error) => error.is_usage(),
            BenchError::Failed(_) => false,
        }
    }
}

/// Measures every backend at every batch size in `settings`, with the model, optimizer, seed and
/// data of `config`, calling `report` as each result comes in.
pub fn measure(
    config: &TrainingConfig,
    settings: &BenchSettings,
    mut report: impl FnMut(&BenchResult),
) -> Result<Vec<BenchResult>, BenchError> {
    let location = source::locate_dataset(
        config.data.dataset,
        config.data.dir.as_deref(),
        &idx::FILE_NAMES,
    )?;
    let data = dataset::read(
        config.data.dataset,
        &location.dir,
        &config.data.read_options(config.seed),
        false,
    )?;
    let train_set = data.train.limit(config.data.train_limit);
    let test_set = data.test.limit(config.data.test_limit);
    let mut results = Vec::new();
    for &backend in &settings.backends {
        let device = backend.device()?;
        for &batch_size in &settings.batch_sizes {
            let result = measure_one(
                config, settings, backend, &device, batch_size, &train_set, &test_set,
            )?;
            report(&result);
            results.push(result);
        }
    }
    Ok(results)
}

fn measure_one(
    config: &TrainingConfig,
    settings: &BenchSettings,
    backend: BackendKind,
    device: &Device,
    batch_size: usize,
    train_set: &ImageSplit,
    test_set: &ImageSplit,
) -> Result<BenchResult, BenchError> {
    let (model, epoch_seconds) = crate::device::on_compute_threads(|| {
        train_epochs(config, settings, device, batch_size, train_set)
    })?;

    let started = Instant::now();
    let evaluation = evaluate(
        &model,
        test_set.clone(),
        settings.eval_batch_size,
        device,
        false,
    )
    .map_err(|e| BenchError::Failed(format!("cannot read the test set: {e}")))?;
    let eval_seconds = started.elapsed().as_secs_f64();
    let latencies = predict_latencies(&model, test_set, settings.predict_samples, device);

    let timed_images = (train_set.len() * settings.epochs) as f64;
    Ok(BenchResult {
        framework: "burn 0.22.1".to_string(),
        device: backend,
        threads: threads(backend),
        batch_size,
        train_images_per_second: timed_images / epoch_seconds.iter().sum::<f64>(),
        epoch_seconds,
        eval_images_per_second: test_set.len() as f64 / eval_seconds,
        test_accuracy: evaluation.accuracy(),
        predict_p50_ms: percentile(&latencies, 0.50),
        predict_p99_ms: percentile(&latencies, 0.99),
        peak_memory_mib: peak_memory_mib(),
    })
}

/// Trains a fresh model for the untimed warm-up batches, then for the timed epochs; returns
/// the model and each timed epoch's seconds.
fn train_epochs(
    config: &TrainingConfig,
    settings: &BenchSettings,
    device: &Device,
    batch_size: usize,
    train_set: &ImageSplit,
) -> Result<(LeNet5, Vec<f64>), BenchError> {
    let autodiff = device.clone().autodiff();
    autodiff.seed(config.seed);
    let model = config.model_config().init(&autodiff);
    let mut learner = Learner::new(
        model,
        config.optimizer.init(),
        ModuleLrScheduler::from(ConstantLr::new(config.optimizer.learning_rate())),
    );
    let loader = EpochLoader::new(
        train_set.clone(),
        batch_size,
        Some(config.seed),
        config.num_workers,
        autodiff.clone(),
    );

    let mut step = |batch: Result<_, _>| -> Result<(), BenchError> {
        let batch =
            batch.map_err(|e| BenchError::Failed(format!("cannot read the training set: {e}")))?;
        // Training's own step, so that a config's label smoothing is timed as a run does it.
        let output = step::train_step(&learner.model(), batch, config.label_smoothing);
        let loss = output.item.loss.clone().into_scalar::<f64>();
        if !loss.is_finite() {
            return Err(BenchError::Failed(format!(
                "the loss became {loss} while benchmarking"
            )));
        }
        learner.lr_step();
        learner.optimizer_step(output.grads);
        Ok(())
    };
    // The warm-up takes the first batches of an epoch of its own, so timed epochs are whole.
    for batch in loader.iter().take(settings.warmup_batches) {
        step(batch)?;
    }
    sync(device)?;
    let mut epoch_seconds = Vec::new();
    for _ in 0..settings.epochs {
        let started = Instant::now();
        for batch in loader.iter() {
            step(batch)?;
        }
        sync(device)?;
        epoch_seconds.push(started.elapsed().as_secs_f64());
    }
    Ok((learner.model(), epoch_seconds))
}

/// Milliseconds of `samples` single-image predictions through `lenet predict`'s path, sorted.
fn predict_latencies(
    model: &LeNet5,
    test_set: &ImageSplit,
    samples: usize,
    device: &Device,
) -> Vec<f64> {
    let model = model.valid();
    let mut latencies = Vec::with_capacity(samples);
    for index in 0..samples {
        let item = test_set
            .get(index % test_set.len())
            .expect("index within the test set");
        let started = Instant::now();
        classify(&model, &[&item.pixels], device);
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn sync(device: &Device) -> Result<(), BenchError> {
    device
        .sync()
        .map_err(|e| BenchError::Failed(format!("the device failed: {e:?}")))
}

/// The value below which a fraction `q` of the sorted `values` lie (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)]
}

/// CPU threads the backend computes with: rayon's global pool, which flex and ndarray use.
fn threads(backend: BackendKind) -> usize {
    match backend {
        BackendKind::Flex | BackendKind::Ndarray => rayon::current_num_threads(),
        BackendKind::Wgpu | BackendKind::Vulkan => 1,
    }
}

/// Peak resident memory of this process, from /proc/self/status (VmHWM).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 51.0);
        assert_eq!(percentile(&values, 0.99), 100.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}

//! Training LeNet-5 through Burn's `SupervisedTraining` + `Learner`, then one evaluation on the
//! test set.

use std::fs;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::step::StepLrSchedulerConfig;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::train::logger::TrainingProgressLogger;
use burn::train::metric::{
    AccuracyMetric, CpuMemory, CpuUse, IterationSpeedMetric, LearningRateMetric, LossMetric,
};
use burn::train::renderer::MetricsRenderer;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::{
    ClassificationOutput, InferenceStep, Interrupter, Learner, SupervisedTraining, TrainOutput,
    TrainStep,
};
use serde::{Deserialize, Serialize};

use crate::config::{LrSchedule, OptimizerConfig, TrainingConfig};
use crate::data::{Mnist, MnistBatch, MnistBatcher, MnistDataset};
use crate::device::Backend;
use crate::history::{self, EpochMetrics, SplitSeconds};
use crate::inference::evaluate;
use crate::model::LeNet5;
use crate::renderer::EpochLineRenderer;
use crate::report::{layer_table, thousands};
use crate::run_dir::{self, CONFIG_FILE, METRICS_FILE, MODEL_FILE, SUMMARY_FILE};
use crate::{Error, plots, source};

impl LeNet5 {
    /// Logits and cross-entropy loss of a batch, in the form Burn's metrics read.
    pub fn forward_classification(&self, batch: MnistBatch) -> ClassificationOutput {
        let logits = self.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl TrainStep for LeNet5 {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
        let output = self.forward_classification(batch);
        TrainOutput::new(self, output.loss.backward(), output)
    }
}

impl InferenceStep for LeNet5 {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: MnistBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}

/// How far a run got: the last epoch that ran to the end, why it stopped early if it did, and
/// how long each epoch's splits took.
#[derive(Debug, Clone, Default)]
struct Outcome {
    completed_epochs: usize,
    interruption: Option<String>,
    seconds: Vec<SplitSeconds>,
}

/// Follows the run from Burn's progress events. Needed because Burn's dashboard resets the
/// interrupter when training ends, so `LearningResult::interrupted` does not say that the user
/// stopped the run with `q`; the stop is captured here, at the end event, before that reset.
struct OutcomeTracker {
    interrupter: Interrupter,
    outcome: Arc<Mutex<Outcome>>,
    split_started: Instant,
    /// Durations of the current epoch's splits so far: train, then valid.
    splits: Vec<f64>,
}

impl OutcomeTracker {
    fn new(interrupter: Interrupter, outcome: Arc<Mutex<Outcome>>) -> Self {
        Self {
            interrupter,
            outcome,
            split_started: Instant::now(),
            splits: Vec::new(),
        }
    }
}

impl TrainingProgressLogger for OutcomeTracker {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}

    fn update_epoch(&mut self, epoch: usize) {
        let mut outcome = self.outcome.lock().unwrap();
        let seconds = |i: usize| self.splits.get(i).copied().unwrap_or_default();
        outcome.seconds.push(SplitSeconds {
            train: seconds(0),
            valid: seconds(1),
        });
        self.splits.clear();
        // An epoch stopped during validation still ends with this event: it does not count.
        if !self.interrupter.should_stop() {
            outcome.completed_epochs = epoch;
        }
    }

    fn start_split(&mut self, _: &str, _: usize) {
        self.split_started = Instant::now();
    }

    fn update_split(&mut self, _: usize) {}

    fn end_split(&mut self) {
        self.splits.push(self.split_started.elapsed().as_secs_f64());
    }

    fn end(&mut self) {
        self.outcome.lock().unwrap().interruption = self
            .interrupter
            .interruption()
            .map(|i| i.reason.unwrap_or_else(|| "stopped by request".to_string()));
    }

    fn log_event_training(&mut self, _: String) {}
}

/// How a run is carried out, beyond what the config says.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The config's name, which names the default run directory.
    pub config_name: String,
    /// Show Burn's terminal dashboard when stdout is a terminal.
    pub dashboard: bool,
    /// Replace a run already in the run directory.
    pub overwrite: bool,
}

/// What `summary.json` holds: the outcome of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub config: String,
    pub run_dir: PathBuf,
    pub device: Backend,
    pub parameters: usize,
    pub epochs: usize,
    pub train_images: usize,
    pub valid_images: usize,
    /// Whether validation used the test set (`data.validation_size` 0).
    pub validated_on_test_set: bool,
    pub test_images: usize,
    pub test_correct: usize,
    /// Fraction of test images classified correctly, 0..1.
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub train_seconds: f64,
    pub test_seconds: f64,
    pub history: Vec<EpochMetrics>,
}

/// Trains a model as `config` says, evaluates it on the test set and writes the run directory.
pub fn train(config: &TrainingConfig, options: &RunOptions) -> Result<RunSummary, Error> {
    let backend = config.device.unwrap_or_else(Backend::preferred);
    let device = backend.device()?;
    let run_dir = config.run_dir(&options.config_name);

    let location = source::locate(config.data.dir.as_deref())?;
    let mnist = Mnist::read(&location.dir)?;
    let (train_set, valid_set, test_set) = datasets(config, mnist)?;
    let validated_on_test_set = config.data.validation_size == 0;

    run_dir::prepare(&run_dir, options.overwrite)?;
    let mut resolved = config.clone();
    resolved.device = Some(backend);
    // Absolute, so that the run can be evaluated again from another working directory.
    resolved.data.dir = Some(fs::canonicalize(&location.dir).unwrap_or(location.dir.clone()));
    resolved.artifact_dir = Some(run_dir.clone());
    let resolved_json = serde_json::to_vec_pretty(&resolved).expect("config serialises");
    run_dir::write_atomic(&run_dir.join(CONFIG_FILE), &resolved_json)?;

    let model_config = config.model.to_model_config();
    // The table comes from a model of its own, made before seeding: Burn initialises parameters
    // lazily, on first use, so running the trained model for the table would change the order in
    // which its parameters draw random numbers, and with it the whole run.
    print!(
        "{}",
        layer_table(&model_config, &model_config.init(&device).layers(&device))
    );
    let autodiff = device.clone().autodiff();
    autodiff.seed(config.seed);
    let model = model_config.init(&autodiff);
    let parameters = model.num_params();
    let iterations_per_epoch = train_set.len().div_ceil(config.batch_size);
    println!("Backend: {backend}");
    println!(
        "MNIST from {}: {} training, {} validation{}, {} test images",
        location.dir.display(),
        thousands(train_set.len()),
        thousands(valid_set.len()),
        if validated_on_test_set {
            " (the test set)"
        } else {
            ""
        },
        thousands(test_set.len())
    );
    println!(
        "{} epochs of {iterations_per_epoch} batches of {}; outputs in {}",
        config.epochs,
        config.batch_size,
        run_dir.display()
    );

    let train_loader = DataLoaderBuilder::new(MnistBatcher)
        .batch_size(config.batch_size)
        .shuffle(config.seed)
        .num_workers(config.num_workers)
        .set_device(device.clone())
        .build(train_set.clone());
    let valid_loader = DataLoaderBuilder::new(MnistBatcher)
        .batch_size(config.batch_size)
        .num_workers(config.num_workers)
        .set_device(device.clone())
        .build(valid_set.clone());

    let training = SupervisedTraining::new(&run_dir, train_loader, valid_loader)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train_numeric(IterationSpeedMetric::new())
        .metric_train_numeric(CpuUse::new())
        .metric_train_numeric(CpuMemory::new())
        .with_default_checkpointers()
        .num_epochs(config.epochs);
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let interrupter = training.interrupter();
    let training =
        training.with_progress_logger(OutcomeTracker::new(interrupter.clone(), outcome.clone()));
    let renderer: Box<dyn MetricsRenderer> = if options.dashboard && std::io::stdout().is_terminal()
    {
        Box::new(TuiMetricsRendererWrapper::new(interrupter, None))
    } else {
        Box::new(EpochLineRenderer::new())
    };
    let learner = Learner::new(
        model,
        optimizer(&config.optimizer),
        scheduler(config, iterations_per_epoch)?,
    );

    let started = Instant::now();
    let result = training.renderer(renderer).launch(learner);
    let train_seconds = started.elapsed().as_secs_f64();
    // Dropping the renderer closes the dashboard and gives the terminal back.
    drop(result.renderer);
    if let Some(error) = result.error {
        return Err(Error::Training(error.to_string()));
    }
    let outcome = outcome.lock().unwrap().clone();
    if let Some(reason) = outcome.interruption {
        return Err(Error::Interrupted {
            reason,
            completed_epochs: outcome.completed_epochs,
            run_dir,
        });
    }

    let model = result.model;
    let model_bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| Error::Training(format!("cannot serialise the model: {e}")))?;
    run_dir::write_atomic(&run_dir.join(MODEL_FILE), &model_bytes)?;

    let history = history::read(&run_dir, &outcome.seconds);
    run_dir::write_atomic(
        &run_dir.join(METRICS_FILE),
        history::to_csv(&history).as_bytes(),
    )?;
    plots::history(&run_dir.join("plots"), &history)?;

    let started = Instant::now();
    let test = evaluate(&model, test_set, config.batch_size, &device, true)
        .map_err(|e| Error::Evaluation(format!("test set: {e}")))?;
    let test_seconds = started.elapsed().as_secs_f64();

    let summary = RunSummary {
        config: options.config_name.clone(),
        run_dir: run_dir.clone(),
        device: backend,
        parameters,
        epochs: config.epochs,
        train_images: train_set.len(),
        valid_images: valid_set.len(),
        validated_on_test_set,
        test_images: test.images(),
        test_correct: test.correct(),
        test_accuracy: test.accuracy(),
        test_loss: test.loss,
        train_seconds,
        test_seconds,
        history,
    };
    let summary_json = serde_json::to_vec_pretty(&summary).expect("summary serialises");
    run_dir::write_atomic(&run_dir.join(SUMMARY_FILE), &summary_json)?;
    Ok(summary)
}

/// The training, validation and test sets the config asks for.
fn datasets(
    config: &TrainingConfig,
    mnist: Mnist,
) -> Result<(MnistDataset, MnistDataset, MnistDataset), Error> {
    let test = MnistDataset::new(Arc::new(mnist.test)).limit(config.data.test_limit);
    let train_all = MnistDataset::new(Arc::new(mnist.train));
    let (train, valid) = if config.data.validation_size == 0 {
        (train_all, test.clone())
    } else {
        train_all.split_validation(config.data.validation_size, config.seed)?
    };
    Ok((train.limit(config.data.train_limit), valid, test))
}

fn optimizer(config: &OptimizerConfig) -> ModuleOptimizer {
    let weight_decay = |penalty: f32| (penalty > 0.0).then(|| WeightDecayConfig::new(penalty));
    match config {
        OptimizerConfig::Adam(adam) => AdamConfig::new()
            .with_beta_1(adam.beta_1)
            .with_beta_2(adam.beta_2)
            .with_epsilon(adam.epsilon)
            .with_weight_decay(weight_decay(adam.weight_decay))
            .init(),
        OptimizerConfig::Sgd(sgd) => SgdConfig::new()
            .with_momentum((sgd.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(sgd.momentum)
                    .with_dampening(sgd.dampening)
                    .with_nesterov(sgd.nesterov)
            }))
            .with_weight_decay(weight_decay(sgd.weight_decay))
            .init(),
    }
}

/// Burn's schedulers step once per batch; the config speaks in epochs.
fn scheduler(
    config: &TrainingConfig,
    iterations_per_epoch: usize,
) -> Result<ModuleLrScheduler, Error> {
    let lr = config.optimizer.learning_rate();
    let built = match &config.lr_schedule {
        LrSchedule::Constant => Ok(ConstantLr::new(lr).into()),
        LrSchedule::Step(step) => {
            StepLrSchedulerConfig::new(lr, step.step_epochs * iterations_per_epoch)
                .with_gamma(step.gamma)
                .init()
        }
        LrSchedule::Cosine(cosine) => {
            CosineAnnealingLrSchedulerConfig::new(lr, config.epochs * iterations_per_epoch)
                .with_min_lr(cosine.min_lr)
                .init()
        }
    };
    built.map_err(|message| {
        Error::Config(crate::config::ConfigError::Value {
            key: "lr_schedule",
            message,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_is_kept_even_if_the_interrupter_is_reset_afterwards() {
        let interrupter = Interrupter::new();
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let mut tracker = OutcomeTracker::new(interrupter.clone(), outcome.clone());
        tracker.update_epoch(1);
        interrupter.stop(Some("Stopping training from user input."));
        tracker.update_epoch(2); // stopped during epoch 2's validation
        tracker.end();
        interrupter.reset(); // what Burn's dashboard does when training ends

        let outcome = outcome.lock().unwrap();
        assert_eq!(outcome.completed_epochs, 1);
        assert_eq!(
            outcome.interruption.as_deref(),
            Some("Stopping training from user input.")
        );
    }

    #[test]
    fn a_run_that_finishes_has_no_interruption() {
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let mut tracker = OutcomeTracker::new(Interrupter::new(), outcome.clone());
        tracker.update_epoch(1);
        tracker.update_epoch(2);
        tracker.end();
        let outcome = outcome.lock().unwrap();
        assert_eq!(outcome.completed_epochs, 2);
        assert_eq!(outcome.interruption, None);
    }
}

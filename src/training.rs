//! Training LeNet-5 through Burn's `SupervisedTraining` + `Learner`, then one evaluation on the
//! test set.

use std::fs;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
use burn::train::metric::{
    AccuracyMetric, CpuMemory, CpuUse, IterationSpeedMetric, LearningRateMetric, LossMetric,
};
use burn::train::renderer::MetricsRenderer;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::{
    ClassificationOutput, InferenceStep, Interrupter, Learner, SupervisedTraining, TrainOutput,
    TrainStep, TrainingStrategy,
};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoints, Position};
use crate::config::{LrSchedule, OptimizerConfig, TrainingConfig};
use crate::data::{Mnist, MnistBatch, MnistDataset};
use crate::device::Backend;
use crate::history::{self, EpochMetrics};
use crate::inference::evaluate;
use crate::loader::EpochLoader;
use crate::model::LeNet5;
use crate::renderer::EpochLineRenderer;
use crate::report::{layer_table, thousands};
use crate::run_dir::{self, CONFIG_FILE, METRICS_FILE, MODEL_FILE, SUMMARY_FILE};
use crate::training_loop::{Outcome, ResumableLoop, Stop};
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

/// How a run is carried out, beyond what the config says.
#[derive(Clone)]
pub struct RunOptions {
    /// The config's name, which names the default run directory.
    pub config_name: String,
    /// Show Burn's terminal dashboard when stdout is a terminal.
    pub dashboard: bool,
    /// Replace a run already in the run directory.
    pub overwrite: bool,
    /// Continue the run in the run directory from its newest checkpoint.
    pub resume: bool,
    /// Stops training at the next batch boundary when asked to (Ctrl-C, `q` in the dashboard).
    pub interrupter: Interrupter,
}

impl RunOptions {
    pub fn new(config_name: impl Into<String>) -> Self {
        Self {
            config_name: config_name.into(),
            dashboard: true,
            overwrite: false,
            resume: false,
            interrupter: Interrupter::new(),
        }
    }
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
    /// Whether the run was interrupted and resumed on the way.
    #[serde(default)]
    pub resumed: bool,
    pub history: Vec<EpochMetrics>,
}

/// Trains a model as `config` says, evaluates it on the test set and writes the run directory.
/// With `options.resume`, continues the run already in the run directory instead.
pub fn train(config: &TrainingConfig, options: &RunOptions) -> Result<RunSummary, Error> {
    let backend = config.device.unwrap_or_else(Backend::preferred);
    let device = backend.device()?;
    let run_dir = config.run_dir(&options.config_name);

    let location = source::locate_dataset(config.data.dataset, config.data.dir.as_deref())?;
    let mut resolved = config.clone();
    resolved.device = Some(backend);
    // Absolute, so that the run can be evaluated again from another working directory.
    resolved.data.dir = Some(fs::canonicalize(&location.dir).unwrap_or(location.dir.clone()));
    resolved.artifact_dir = Some(run_dir.clone());
    if options.resume {
        let saved = run_dir::prepare_resume(&run_dir)?;
        same_run(&saved, &resolved, &run_dir)?;
    }

    let mnist = Mnist::read(&location.dir)?;
    let (train_set, valid_set, test_set) = datasets(config, mnist)?;
    let validated_on_test_set = config.data.validation_size == 0;

    let checkpoints = Checkpoints::new(&run_dir);
    if !options.resume {
        run_dir::prepare(&run_dir, options.overwrite)?;
        let resolved_json = serde_json::to_vec_pretty(&resolved).expect("config serialises");
        run_dir::write_atomic(&run_dir.join(CONFIG_FILE), &resolved_json)?;
    }
    checkpoints.prepare()?;

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
    let parameters = model.trainable_params();
    let mut learner = Learner::new(
        model,
        optimizer(&config.optimizer),
        scheduler(config, train_set.len().div_ceil(config.batch_size))?,
    );

    let mut outcome = Outcome::default();
    let mut start = Position::START;
    if options.resume {
        let (newest, problems) = checkpoints.newest();
        for problem in problems {
            eprintln!("warning: skipping a checkpoint that does not load: {problem}");
        }
        match newest {
            Some(loaded) => {
                learner.load_model(loaded.model);
                learner.load_optim(loaded.optim);
                learner.load_scheduler(loaded.scheduler);
                start = loaded.state.position;
                outcome.completed_epochs = start.epoch - 1;
                outcome.seconds = loaded.state.seconds;
                let path = checkpoints
                    .dir()
                    .join(format!("step-{:08}", loaded.state.steps));
                outcome.checkpoint = Some((path, start));
            }
            None => println!(
                "No complete checkpoint in {}: starting the run from the beginning.",
                checkpoints.dir().display()
            ),
        }
    }

    let train_loader = EpochLoader::new(
        train_set.clone(),
        config.batch_size,
        Some(config.seed),
        config.num_workers,
        device.clone(),
    )
    .with_augmentation(config.augmentation)
    .starting_at(start);
    let batches_per_epoch = train_loader.batches_per_epoch();
    let valid_loader = EpochLoader::new(
        valid_set.clone(),
        config.batch_size,
        None,
        config.num_workers,
        device.clone(),
    );

    println!("Backend: {backend}");
    println!(
        "{} from {}: {} training, {} validation{}, {} test images",
        config.data.dataset,
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
    if start != Position::START {
        println!(
            "Resuming at epoch {}, after batch {} of {batches_per_epoch}",
            start.epoch, start.batches_done
        );
    }
    println!(
        "{} epochs of {batches_per_epoch} batches of {}; outputs in {}",
        config.epochs,
        config.batch_size,
        run_dir.display()
    );

    let outcome = Arc::new(Mutex::new(outcome));
    let training_loop = ResumableLoop {
        device: autodiff.clone(),
        start,
        batches_per_epoch,
        checkpoints: checkpoints.clone(),
        config_name: options.config_name.clone(),
        outcome: outcome.clone(),
    };
    let (model_checkpointer, optim_checkpointer, scheduler_checkpointer, strategy) =
        checkpoints.burn_checkpointers();
    let training =
        SupervisedTraining::new(&run_dir, Arc::new(train_loader), Arc::new(valid_loader))
            .metrics((AccuracyMetric::new(), LossMetric::new()))
            .metric_train_numeric(LearningRateMetric::new())
            .metric_train_numeric(IterationSpeedMetric::new())
            .metric_train_numeric(CpuUse::new())
            .metric_train_numeric(CpuMemory::new())
            .with_custom_checkpointers(
                model_checkpointer,
                optim_checkpointer,
                scheduler_checkpointer,
            )
            .with_checkpointing_strategy(strategy)
            .with_training_strategy(TrainingStrategy::Custom(Arc::new(training_loop)))
            .with_interrupter(options.interrupter.clone())
            .num_epochs(config.epochs);
    let renderer: Box<dyn MetricsRenderer> = if options.dashboard && std::io::stdout().is_terminal()
    {
        crate::terminal::remember_settings();
        let dashboard = TuiMetricsRendererWrapper::new(options.interrupter.clone(), None);
        crate::terminal::keep_ctrl_c();
        Box::new(dashboard)
    } else {
        Box::new(EpochLineRenderer::new())
    };

    let result = training.renderer(renderer).launch(learner);
    // Dropping the renderer closes the dashboard and gives the terminal back.
    drop(result.renderer);
    let outcome = outcome.lock().unwrap().clone();
    let checkpoint = outcome.checkpoint.clone();
    match outcome.stop {
        Some(Stop::Requested(reason)) => {
            return Err(Error::Interrupted {
                reason,
                checkpoint,
                batches_per_epoch,
                run_dir,
            });
        }
        Some(Stop::NonFinite { epoch, batch, loss }) => {
            return Err(Error::NonFiniteLoss {
                epoch,
                batch,
                loss,
                learning_rate: config.optimizer.learning_rate(),
                checkpoint: checkpoint.map(|(path, _)| path),
            });
        }
        Some(Stop::Checkpoint(problem)) => return Err(Error::Training(problem)),
        None => {}
    }
    if let Some(error) = result.error {
        return Err(Error::Training(error.to_string()));
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
        // Summed over epochs rather than timed around the launch, so that a resumed run counts
        // the epochs done before it was interrupted.
        train_seconds: outcome.seconds.iter().map(|s| s.train + s.valid).sum(),
        test_seconds,
        resumed: options.resume,
        history,
    };
    let summary_json = serde_json::to_vec_pretty(&summary).expect("summary serialises");
    run_dir::write_atomic(&run_dir.join(SUMMARY_FILE), &summary_json)?;
    Ok(summary)
}

/// Refuses to resume with a config that differs from the one the run started with, in anything
/// but where the data and outputs are.
fn same_run(
    saved: &TrainingConfig,
    requested: &TrainingConfig,
    run_dir: &std::path::Path,
) -> Result<(), Error> {
    let comparable = |config: &TrainingConfig| {
        let mut config = config.clone();
        config.data.dir = None;
        config.artifact_dir = None;
        serde_json::to_value(config).expect("config serialises")
    };
    match first_difference(&comparable(saved), &comparable(requested), String::new()) {
        None => Ok(()),
        Some((key, was, now)) => Err(Error::Resume(format!(
            "{}: the run was started with {key} = {was}, not {now}; resume with the config it \
             started with, or pass --overwrite to start again",
            run_dir.join(CONFIG_FILE).display()
        ))),
    }
}

/// The first key path at which two JSON values differ, with both values.
fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: String,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|key| {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                first_difference(
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    child,
                )
            })
        }
        _ if a == b => None,
        _ => Some((path, a.to_string(), b.to_string())),
    }
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

pub(crate) fn optimizer(config: &OptimizerConfig) -> ModuleOptimizer {
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

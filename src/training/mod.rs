//! Training LeNet-5 through Burn's `SupervisedTraining` and `Learner`, then one evaluation on
//! the test set. It knows nothing of the command line and prints nothing: [`Training`]'s
//! `Display` says what is about to happen, and [`Training::launch`] returns the run's summary.
//!
//! A run goes through these phases, in this order, each a function below:
//!
//! 1. resolve the config: backend, data folder, run folder, and a resumed run's own config;
//! 2. read the data and split it, which settles the classes (and with them the output layer);
//! 3. open the run folder (a new run's, the one being resumed, or a finished one continued to
//!    more epochs);
//! 4. build the learner, from another run's weights with `init_from` ([`init`]), or restore it
//!    from the newest checkpoint;
//! 5. make the loaders;
//! 6. launch Burn's training with the resumable loop ([`resumable`]), the checkpoints
//!    ([`checkpoint`]) and the dashboard or the line renderer ([`renderer`], [`terminal`]);
//! 7. turn how the loop ended into a result, and write the outputs, testing the final model and
//!    the best epoch's.
//!
//! [`step`] holds the training and validation steps the learner runs.

pub mod checkpoint;
pub mod init;
pub mod renderer;
pub mod resumable;
pub mod step;
pub mod terminal;

use std::fmt;
use std::fs;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::train::metric::{
    AccuracyMetric, CpuMemory, CpuUse, IterationSpeedMetric, LearningRateMetric, LossMetric,
};
use burn::train::renderer::MetricsRenderer;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::{Interrupter, Learner, LearningResult, SupervisedTraining, TrainingStrategy};

use crate::config::{EarlyStopping, StopMetric, TrainingConfig};
use crate::data::dataset::{ImageDataset, SplitSize};
use crate::data::loader::{EpochLoader, Position};
use crate::data::source::{self, DatasetKind};
use crate::data::{idx, set};
use crate::device::BackendKind;
use crate::inference::evaluate;
use crate::model::LeNet5;
use crate::report::{layer_table, plots, thousands};
use crate::run::history::{self, EpochMetrics};
use crate::run::{
    self, BEST_MODEL_FILE, BestEpoch, CONFIG_FILE, FinishedRun, METRICS_FILE, MODEL_FILE,
    ModelChoice, PLOTS_DIR, RunLock, RunState, RunStatus, RunSummary, SUMMARY_FILE,
};
use crate::{Error, device};
use checkpoint::Checkpoints;
use renderer::EpochLineRenderer;
use resumable::{Outcome, ResumableLoop, Stop};

/// How a run is carried out, beyond what the config says.
#[derive(Clone)]
pub struct TrainOptions {
    /// The config's name, which names the default run folder.
    pub config_name: String,
    /// Show Burn's terminal dashboard when stdout is a terminal.
    pub dashboard: bool,
    /// Replace a run already in the run folder.
    pub overwrite: bool,
    /// Continue the run in the run folder from its newest checkpoint.
    pub resume: bool,
    /// With `resume`: the config's `epochs` may differ from the run's, which is continued to
    /// that many epochs, even if it had finished.
    pub extend: bool,
    /// Stops training at the next batch boundary when asked to (Ctrl-C, `q` in the dashboard).
    pub interrupter: Interrupter,
    /// Told where the run is after every batch, epoch and phase.
    pub on_progress: Option<ProgressHook>,
}

/// Where a run is, as training reports it to [`TrainOptions::on_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// About to train from this position.
    Starting(Position),
    /// A training batch is done; the position counts it.
    Trained(Position),
    /// A validation batch of `epoch` is done; `batches` of them so far.
    Validated { epoch: usize, batches: usize },
    /// The epoch was validated, recorded and checkpointed.
    EpochEnded(usize),
    /// Training is over and the final model is being evaluated on the test set.
    Testing,
}

/// A function told each [`Progress`] of a run.
pub type ProgressHook = Arc<dyn Fn(Progress) + Send + Sync>;

impl TrainOptions {
    pub fn new(config_name: impl Into<String>) -> Self {
        Self {
            config_name: config_name.into(),
            dashboard: true,
            overwrite: false,
            resume: false,
            extend: false,
            interrupter: Interrupter::new(),
            on_progress: None,
        }
    }

    fn report(&self, progress: Progress) {
        if let Some(hook) = &self.on_progress {
            hook(progress);
        }
    }
}

/// Trains a model as `config` says, evaluates it on the test set and writes the run folder.
/// With `options.resume`, continues the run already in the run folder instead.
pub fn train(config: &TrainingConfig, options: &TrainOptions) -> Result<RunSummary, Error> {
    Training::prepare(config, options)?.launch()
}

/// A run ready to launch: its config resolved, its data read, its folder open, its learner
/// built or restored and its loaders made.
pub struct Training {
    config: TrainingConfig,
    options: TrainOptions,
    backend: BackendKind,
    device: Device,
    run_dir: PathBuf,
    data: Splits,
    layer_table: String,
    parameters: usize,
    /// Taken by the launch, which hands it to Burn.
    learner: Option<Learner<LeNet5>>,
    checkpoints: Checkpoints,
    start: Position,
    restored: Outcome,
    train_loader: Arc<EpochLoader>,
    valid_loader: Arc<EpochLoader>,
    warnings: Vec<String>,
    /// Held from before the folder is looked at until the outputs are written.
    _lock: RunLock,
    /// This process's one training at a time, held from seeding to the end (see [`TRAINING`]).
    _alone: MutexGuard<'static, ()>,
}

/// One training at a time in a process. Burn's random generator belongs to the process, and
/// parameters draw their initial values lazily, at first use: two trainings at once (tests run
/// several in one process) could draw between each other's seeding and first step, and start
/// from weights no seed gives. The command line trains once per process, so it never waits.
static TRAINING: Mutex<()> = Mutex::new(());

/// The data a run trains, validates and tests on.
struct Splits {
    dataset: DatasetKind,
    dir: PathBuf,
    train: ImageDataset,
    valid: ImageDataset,
    test: ImageDataset,
    classes: Vec<String>,
}

impl Training {
    /// Phases 1 to 5: everything up to the launch, failing early on any problem.
    pub fn prepare(config: &TrainingConfig, options: &TrainOptions) -> Result<Self, Error> {
        let (mut config, backend) = resolve(config, options)?;
        let device = backend.device()?;
        let run_dir = config.run_dir(&options.config_name);
        let (data, mut warnings) = read_data(&config)?;
        config.data.classes = Some(data.classes.clone());
        config.check_classes()?;
        if config.early_stopping.is_some() && config.data.validation_size == SplitSize::Count(0) {
            warnings.push(
                "data.validation_size is 0, so early stopping and the best model are chosen on \
                 the test set: the best model's test accuracy flatters it"
                    .to_string(),
            );
        }
        let mut init_from = match config.init_from.as_ref().filter(|_| !options.resume) {
            Some(dir) => Some(init::Source::check(dir, &config, &run_dir)?),
            None => None,
        };
        let (lock, checkpoints) = open_run_folder(&config, &run_dir, options)?;
        let newest = if options.resume {
            let (newest, problems) = checkpoints.newest();
            warnings.extend(
                problems
                    .into_iter()
                    .map(|problem| format!("skipping a checkpoint that does not load: {problem}")),
            );
            newest
        } else {
            None
        };
        if options.extend {
            extend(&config, &run_dir, newest.as_ref())?;
        }
        // A resumed run without a checkpoint starts over, from init_from's weights as it first
        // did.
        if let Some(dir) = config.init_from.as_ref().filter(|_| newest.is_none())
            && init_from.is_none()
        {
            init_from = Some(init::Source::check(dir, &config, &run_dir)?);
        }
        let alone = TRAINING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());

        let model_config = config.model_config();
        // The table comes from a model of its own, made before seeding: Burn initialises
        // parameters lazily, on first use, so running the trained model for the table would
        // change the order in which its parameters draw random numbers, and with it the run.
        let layer_table = layer_table(&model_config, &model_config.init(&device).layers(&device));
        let autodiff = device.clone().autodiff();
        autodiff.seed(config.seed);
        let mut model = model_config.init(&autodiff);
        if let Some(source) = init_from {
            model = source.apply(model, &config, &autodiff)?;
        }
        let parameters = model.trainable_params();
        let batches_per_epoch = data.train.len().div_ceil(config.batch_size);
        let scheduler = config.lr_schedule.init(
            config.optimizer.learning_rate(),
            config.epochs,
            batches_per_epoch,
        )?;
        let mut learner = Learner::new(model, config.optimizer.init(), scheduler);

        let (restored, start) = match newest {
            Some(loaded) => restore(&checkpoints, &mut learner, loaded),
            None => (Outcome::default(), Position::START),
        };
        let (train_loader, valid_loader) = loaders(&config, &data, &device, start);
        Ok(Self {
            config,
            options: options.clone(),
            backend,
            device,
            run_dir,
            data,
            layer_table,
            parameters,
            learner: Some(learner),
            checkpoints,
            start,
            restored,
            train_loader: Arc::new(train_loader),
            valid_loader: Arc::new(valid_loader),
            warnings,
            _lock: lock,
            _alone: alone,
        })
    }

    /// Whether training will show Burn's dashboard (asked for, and stdout is a terminal).
    pub fn uses_dashboard(&self) -> bool {
        self.options.dashboard && std::io::stdout().is_terminal()
    }

    /// What went wrong on the way that did not stop the run: images left out, checkpoints that
    /// did not load.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Phases 6 and 7: trains, evaluates on the test set and writes the outputs, with the
    /// run's `status.json` saying "training" meanwhile and how it ended after.
    pub fn launch(self) -> Result<RunSummary, Error> {
        let run_dir = self.run_dir.clone();
        let status = RunStatus::starting(&run_dir, &self.options.config_name);
        status.write(&run_dir)?;
        let result = self.train_and_test();
        let (state, message) = match &result {
            Ok(_) => (RunState::Finished, None),
            Err(error @ (Error::Interrupted { .. } | Error::Killed { .. })) => {
                (RunState::Stopped, Some(error.to_string()))
            }
            Err(error) => (RunState::Failed, Some(error.to_string())),
        };
        let ended = status.ended(state, message).write(&run_dir);
        // The run's own error says more than a status file that could not be written.
        let summary = result?;
        ended?;
        Ok(summary)
    }

    fn train_and_test(mut self) -> Result<RunSummary, Error> {
        let batches_per_epoch = self.train_loader.batches_per_epoch();
        let outcome = Arc::new(Mutex::new(self.restored.clone()));
        let learner = self.learner.take().expect("a run is launched once");
        let launched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run_learner(learner, outcome.clone())
        }));
        let result = match launched {
            Ok(result) => result,
            // Reached only if the dashboard's kill got past `terminal::exit_on_kill`.
            Err(payload) if terminal::is_dashboard_kill(&*payload) => {
                terminal::restore();
                return Err(Error::Killed {
                    run_dir: self.run_dir.clone(),
                });
            }
            Err(payload) => std::panic::resume_unwind(payload),
        };
        // Dropping the renderer closes the dashboard and gives the terminal back.
        drop(result.renderer);
        let outcome = outcome.lock().unwrap().clone();
        self.check_outcome(&outcome, batches_per_epoch)?;
        if let Some(error) = result.error {
            return Err(Error::Training(error.to_string()));
        }
        self.write_outputs(result.model, outcome)
    }

    /// Phase 6: Burn's `SupervisedTraining` with this crate's loop, checkpoints and renderer.
    fn run_learner(
        &self,
        learner: Learner<LeNet5>,
        outcome: Arc<Mutex<Outcome>>,
    ) -> LearningResult<LeNet5> {
        let autodiff = self.device.clone().autodiff();
        let training_loop = ResumableLoop {
            device: autodiff,
            start: self.start,
            batches_per_epoch: self.train_loader.batches_per_epoch(),
            cursor: self.train_loader.cursor(),
            checkpoints: self.checkpoints.clone(),
            checkpoint_every: self.config.checkpoint_every(),
            config_name: self.options.config_name.clone(),
            outcome,
            on_progress: self.options.on_progress.clone(),
            run_dir: self.run_dir.clone(),
            early_stopping: self.config.early_stopping,
        };
        let (model_checkpointer, optim_checkpointer, scheduler_checkpointer, strategy) =
            self.checkpoints.burn_checkpointers();
        let interrupter = self.options.interrupter.clone();
        SupervisedTraining::new(
            &self.run_dir,
            self.train_loader.clone(),
            self.valid_loader.clone(),
        )
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
        .with_interrupter(interrupter.clone())
        // Burn's application log (experiment.log) stayed empty for this program, and its panic
        // hook printed a report over the dashboard's own way out.
        .with_application_logger(None)
        .num_epochs(self.config.epochs)
        .renderer(self.renderer(interrupter))
        .launch(learner)
    }

    /// Burn's dashboard in a terminal (unless turned off), one line per epoch otherwise.
    fn renderer(&self, interrupter: Interrupter) -> Box<dyn MetricsRenderer> {
        if self.uses_dashboard() {
            terminal::remember_settings();
            let dashboard = TuiMetricsRendererWrapper::new(interrupter, None);
            terminal::keep_ctrl_c();
            terminal::exit_on_kill(&self.run_dir);
            Box::new(dashboard)
        } else {
            Box::new(EpochLineRenderer::new())
        }
    }

    /// Phase 7a: a run that stopped before its last epoch is an error that says why and where
    /// it can continue from.
    fn check_outcome(&self, outcome: &Outcome, batches_per_epoch: usize) -> Result<(), Error> {
        let checkpoint = outcome.checkpoint.clone();
        let history = outcome.history.clone();
        match &outcome.stop {
            Some(Stop::Requested(reason)) => Err(Error::Interrupted {
                by: stopped_by(reason),
                checkpoint,
                batches_per_epoch,
                run_dir: self.run_dir.clone(),
                history,
            }),
            Some(Stop::NonFinite { epoch, batch, loss }) => Err(Error::NonFiniteLoss {
                epoch: *epoch,
                batch: *batch,
                loss: *loss,
                learning_rate: self.config.optimizer.learning_rate(),
                checkpoint: checkpoint.map(|(path, _)| path),
                history,
            }),
            Some(Stop::Write(problem)) => Err(Error::Training(problem.clone())),
            None => Ok(()),
        }
    }

    /// Phase 7b: the final model, the metrics and plots, the test-set evaluation and the
    /// summary, each written atomically.
    fn write_outputs(&self, model: LeNet5, outcome: Outcome) -> Result<RunSummary, Error> {
        run::save_model(&self.run_dir.join(MODEL_FILE), &model)?;
        let history = outcome.history;
        write_history(&self.run_dir, &history)?;

        self.options.report(Progress::Testing);
        let started = Instant::now();
        let test = self.test(&model)?;
        let test_seconds = started.elapsed().as_secs_f64();
        let best = self.best_epoch(&history)?;
        let summary = RunSummary {
            config: self.options.config_name.clone(),
            run_dir: self.run_dir.clone(),
            device: self.backend,
            parameters: self.parameters,
            epochs: history.len(),
            train_images: self.data.train.len(),
            valid_images: self.data.valid.len(),
            validated_on_test_set: self.validated_on_test_set(),
            test_images: test.images(),
            test_correct: test.correct(),
            test_accuracy: test.accuracy(),
            test_loss: test.loss,
            test_seconds,
            // Summed over epochs rather than timed around the launch, so that a resumed run
            // counts the epochs done before it was interrupted.
            train_seconds: history.iter().map(epoch_seconds).sum(),
            resumed: self.options.resume,
            classes: self.data.classes.clone(),
            best,
            stopped_early_at: outcome.stopped_early_at,
            history,
        };
        let summary_json = serde_json::to_vec_pretty(&summary).expect("summary serialises");
        run::write_atomic(&self.run_dir.join(SUMMARY_FILE), &summary_json)?;
        Ok(summary)
    }

    fn validated_on_test_set(&self) -> bool {
        self.config.data.validation_size == SplitSize::Count(0)
    }

    /// `model`'s answers on the test set.
    fn test(&self, model: &LeNet5) -> Result<crate::inference::Evaluation, Error> {
        evaluate(
            model,
            self.data.test.clone(),
            self.config.batch_size,
            &self.device,
            true,
        )
        .map_err(|e| Error::Evaluation(format!("test set: {e}")))
    }

    /// The best epoch of `history` (see [`best_metric`]), its model as the loop kept it in
    /// `model_best.bpk`, tested.
    fn best_epoch(&self, history: &[EpochMetrics]) -> Result<Option<BestEpoch>, Error> {
        let (metric, min_delta) = best_metric(self.config.early_stopping);
        let Some(epoch) = history::best_epoch(history, metric, min_delta) else {
            return Ok(None);
        };
        // A run begun before best models were kept, whose best epoch came before its resume.
        if !self.run_dir.join(BEST_MODEL_FILE).is_file() {
            return Ok(None);
        }
        let best = FinishedRun::load_model(&self.run_dir, Some(self.backend), ModelChoice::Best)?;
        let test = self.test(&best.model)?;
        Ok(Some(BestEpoch {
            epoch,
            metric: metric.to_string(),
            value: history[epoch - 1].value(metric).unwrap_or(f64::NAN),
            test_accuracy: test.accuracy(),
            test_loss: test.loss,
        }))
    }
}

/// The metric that picks a run's best epoch, and by how much an epoch must beat the best so far:
/// early stopping's, or else the validation loss.
pub fn best_metric(early_stopping: Option<EarlyStopping>) -> (StopMetric, f64) {
    early_stopping.map_or((StopMetric::ValidLoss, 0.0), |e| (e.metric, e.min_delta))
}

/// What the run is about to do: the model's layers, the backend, the data and the plan.
impl fmt::Display for Training {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.layer_table)?;
        writeln!(f, "Backend: {}", self.backend)?;
        writeln!(
            f,
            "{} from {}: {} classes ({}), {} training, {} validation{}, {} test images",
            self.data.dataset,
            self.data.dir.display(),
            self.data.classes.len(),
            set::brief(&self.data.classes, 10),
            thousands(self.data.train.len()),
            thousands(self.data.valid.len()),
            if self.validated_on_test_set() {
                " (the test set)"
            } else {
                ""
            },
            thousands(self.data.test.len())
        )?;
        let batches_per_epoch = self.train_loader.batches_per_epoch();
        if let Some(dir) = self
            .config
            .init_from
            .as_ref()
            .filter(|_| !self.options.resume)
        {
            let skip = &self.config.init_from_skip;
            let layers = if skip.is_empty() {
                "every layer".to_string()
            } else {
                format!("every layer but {}, which start afresh", skip.join(", "))
            };
            writeln!(
                f,
                "Starting from the weights of {} ({layers})",
                dir.display()
            )?;
        }
        if self.options.resume && self.restored.checkpoint.is_none() {
            writeln!(
                f,
                "No complete checkpoint in {}: starting the run from the beginning.",
                self.checkpoints.dir().display()
            )?;
        }
        if self.start != Position::START {
            writeln!(
                f,
                "Resuming at epoch {}, after batch {} of {batches_per_epoch}",
                self.start.epoch, self.start.batches_done
            )?;
        }
        let count =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        writeln!(
            f,
            "{} of {} of {}; outputs in {}",
            count(self.config.epochs, "epoch", "epochs"),
            count(batches_per_epoch, "batch", "batches"),
            self.config.batch_size,
            self.run_dir.display()
        )
    }
}

/// Phase 1: the config as the run will record it, with the backend, the data folder and the
/// run folder filled in.
fn resolve(
    config: &TrainingConfig,
    options: &TrainOptions,
) -> Result<(TrainingConfig, BackendKind), Error> {
    let backend = config.device.unwrap_or_else(device::BackendKind::preferred);
    backend.ensure_compiled()?;
    let run_dir = config.run_dir(&options.config_name);
    let location = source::locate_dataset(
        config.data.dataset,
        config.data.dir.as_deref(),
        &idx::FILE_NAMES,
    )?;
    let mut resolved = config.clone();
    resolved.device = Some(backend);
    // Absolute, so that the run can be evaluated again from another working directory.
    resolved.data.dir = Some(fs::canonicalize(&location.dir).unwrap_or(location.dir));
    resolved.artifact_dir = Some(run_dir.clone());
    resolved.init_from = config
        .init_from
        .as_ref()
        .map(|dir| fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()));
    Ok((resolved, backend))
}

/// Phase 2: the training, validation and test sets the config asks for, and a line for each
/// image left out.
fn read_data(config: &TrainingConfig) -> Result<(Splits, Vec<String>), Error> {
    let dir = config
        .data
        .dir
        .clone()
        .expect("the resolved config names its data folder");
    let data = set::read(
        config.data.dataset,
        &dir,
        &config.data.read_options(config.seed),
        false,
    )?;
    let test = data.test.limit(config.data.test_limit);
    let (train, valid) = if config.data.validation_size == SplitSize::Count(0) {
        (data.train, test.clone())
    } else {
        data.train.split_off(
            config.data.validation_size,
            config.seed,
            "data.validation_size",
        )?
    };
    let train = train.limit(config.data.train_limit);
    let mut warnings = data.warnings;
    let mut trained = vec![0usize; data.classes.len()];
    for label in train.labels() {
        trained[label as usize] += 1;
    }
    let untrained: Vec<&str> = (0..data.classes.len())
        .filter(|&c| trained[c] == 0)
        .map(|c| data.classes[c].as_str())
        .collect();
    if !untrained.is_empty() {
        warnings.push(format!(
            "no training image is of the class{} {} (after the test and validation splits \
             and data.train_limit): the model cannot learn {}",
            if untrained.len() == 1 { "" } else { "es" },
            untrained.join(", "),
            if untrained.len() == 1 { "it" } else { "them" }
        ));
    }
    let splits = Splits {
        dataset: config.data.dataset,
        dir,
        train,
        valid,
        test,
        classes: data.classes,
    };
    Ok((splits, warnings))
}

/// Phase 3: the run folder locked for this process, then a new run's folder emptied if asked
/// and holding its resolved config, or the resumed run's, which must have been started with
/// the same config; either way with a checkpoint folder cleared of half-written files.
fn open_run_folder(
    config: &TrainingConfig,
    run_dir: &std::path::Path,
    options: &TrainOptions,
) -> Result<(RunLock, Checkpoints), Error> {
    if options.resume && !run_dir.is_dir() {
        return Err(run::RunError::NothingToResume {
            dir: run_dir.to_path_buf(),
        }
        .into());
    }
    let lock = RunLock::acquire(run_dir)?;
    if options.resume {
        let saved = run::prepare_resume(run_dir, options.extend)?;
        let mut compared = saved.clone();
        if options.extend {
            compared.epochs = config.epochs;
        }
        // Runs made before classes were recorded have none in their config: the data's are
        // theirs.
        if compared.data.classes.is_none() {
            compared.data.classes = config.data.classes.clone();
        }
        if let Some(first) = compared.differences(config).into_iter().next() {
            return Err(Error::Resume(format!(
                "{}: the run was started with {} = {}, not {}; resume with the config it \
                 started with, or train it again with --overwrite",
                run_dir.join(CONFIG_FILE).display(),
                first.key,
                first.was,
                first.now
            )));
        }
    } else {
        // A run that left nothing to keep (it failed or was killed before its first
        // checkpoint) is replaced without --overwrite.
        let nothing_to_keep = !Checkpoints::new(run_dir).any()
            && !run_dir.join(MODEL_FILE).exists()
            && !run_dir.join(SUMMARY_FILE).exists();
        run::prepare(run_dir, options.overwrite || nothing_to_keep)?;
        let json = serde_json::to_vec_pretty(config).expect("config serialises");
        run::write_atomic(&run_dir.join(CONFIG_FILE), &json)?;
    }
    let checkpoints = Checkpoints::new(run_dir);
    checkpoints.prepare()?;
    Ok((lock, checkpoints))
}

/// Phase 3 for a run continued to more epochs (`lenet resume --epochs N`): checks that the run
/// can go on from its `newest` checkpoint to `config.epochs`, then makes the folder say so: the config with its new epochs,
/// and no summary, since the run is no longer finished. The final model stays until the longer
/// run replaces it.
fn extend(
    config: &TrainingConfig,
    run_dir: &std::path::Path,
    newest: Option<&checkpoint::Loaded>,
) -> Result<(), Error> {
    let Some(newest) = newest else {
        return Err(Error::Resume(format!(
            "{}: no checkpoint that loads, so nothing to continue from; train the run again \
             with --overwrite",
            run_dir.display()
        )));
    };
    let history = &newest.state.history;
    let met = config
        .early_stopping
        .and_then(|rule| history::stopped_early(history, &rule));
    if let Some(epoch) = met {
        return Err(Error::Resume(format!(
            "{}: early stopping ended the run at epoch {epoch}, and would end it again at once; \
             train a new run (with init_from: this run) to go on",
            run_dir.display()
        )));
    }
    let done = newest.state.position.epoch - 1;
    let summary_path = run_dir.join(SUMMARY_FILE);
    if config.epochs <= done {
        return Err(Error::Resume(format!(
            "{}: the run has done {done} epochs already; --epochs must be more than that",
            run_dir.display()
        )));
    }
    let json = serde_json::to_vec_pretty(config).expect("config serialises");
    run::write_atomic(&run_dir.join(CONFIG_FILE), &json)?;
    match fs::remove_file(&summary_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(run::RunError::io(&summary_path, "remove")(e).into())
        }
        _ => Ok(()),
    }
}

/// Phase 4 for a resumed run: the learner as the newest checkpoint that loads left it, and
/// where that checkpoint continues.
fn restore(
    checkpoints: &Checkpoints,
    learner: &mut Learner<LeNet5>,
    loaded: checkpoint::Loaded,
) -> (Outcome, Position) {
    learner.load_model(loaded.model);
    learner.load_optim(loaded.optim);
    learner.load_scheduler(loaded.scheduler);
    let start = loaded.state.position;
    let path = checkpoints.state_file(loaded.state.steps);
    let outcome = Outcome {
        completed_epochs: start.epoch - 1,
        history: loaded.state.history,
        checkpoint: Some((path, start)),
        stop: None,
        stopped_early_at: None,
    };
    (outcome, start)
}

/// Phase 5: the training loader, seeded and starting where the run continues, and the
/// validation loader, in data set order.
fn loaders(
    config: &TrainingConfig,
    data: &Splits,
    device: &Device,
    start: Position,
) -> (EpochLoader, EpochLoader) {
    let train = EpochLoader::new(
        data.train.clone(),
        config.batch_size,
        Some(config.seed),
        config.num_workers,
        device.clone(),
    )
    .with_augmentation(config.augmentation)
    .starting_at(start);
    let valid = EpochLoader::new(
        data.valid.clone(),
        config.batch_size,
        None,
        config.num_workers,
        device.clone(),
    );
    (train, valid)
}

/// `metrics.csv` and the plots of the epochs done so far.
fn write_history(run_dir: &std::path::Path, history: &[EpochMetrics]) -> Result<(), Error> {
    run::write_atomic(
        &run_dir.join(METRICS_FILE),
        history::to_csv(history).as_bytes(),
    )?;
    plots::history(&run_dir.join(PLOTS_DIR), history)?;
    Ok(())
}

/// The text Burn's dashboard gives its stop request.
const DASHBOARD_STOP: &str = "Stopping training from user input.";

/// What stopped a run, for people, from the reason its stop request gave.
fn stopped_by(reason: &str) -> String {
    if reason == DASHBOARD_STOP {
        "the dashboard (q, then s)".to_string()
    } else {
        reason.to_string()
    }
}

fn epoch_seconds(epoch: &EpochMetrics) -> f64 {
    epoch.train_seconds.unwrap_or(0.0) + epoch.valid_seconds.unwrap_or(0.0)
}

//! Phases 1 to 5 of a run (see the module's page): everything up to the launch, checked before
//! the run folder is written to, then the folder opened, the learner built and the loaders
//! made. [`Training`]'s `Display` is the plan people read before it starts.

use std::fmt;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use burn::prelude::*;
use burn::train::Learner;

use super::average::WeightAverage;
use super::checkpoint::{Checkpoints, Loaded};
use super::error::TrainingError;
use super::init;
use super::options::{StartMode, TrainOptions};
use super::resumable::Outcome;
use super::resume;
use crate::config::{Overrides, TrainingConfig};
use crate::data::classes::brief;
use crate::data::error::DataError;
use crate::data::loader::{EpochLoader, Position};
use crate::data::split::{DataSet, ImageSplit};
use crate::data::{SplitSize, dataset, idx, source};
use crate::device::BackendKind;
use crate::model::LeNet5;
use crate::report::{layer_table, thousands};
use crate::run::{self, CONFIG_FILE, MODEL_FILE, RunError, RunLock, SUMMARY_FILE};
use crate::tracking::mlflow::{MlflowLog, MlflowTarget};
use crate::tracking::source_commit;

/// A run ready to launch: its config resolved, its data read, its folder open, its learner
/// built or restored and its loaders made.
pub struct Training {
    pub(super) config: TrainingConfig,
    pub(super) config_name: String,
    pub(super) mode: StartMode,
    pub(super) options: TrainOptions,
    pub(super) backend: BackendKind,
    pub(super) device: Device,
    pub(super) run_dir: PathBuf,
    /// The training images (after the validation split and `data.train_limit`) and the test
    /// images (after `data.test_limit`), with the class names and the data's warnings.
    pub(super) data: DataSet,
    pub(super) valid: ImageSplit,
    layer_table: String,
    pub(super) parameters: usize,
    /// Taken by the launch, which hands it to Burn.
    pub(super) learner: Option<Learner<LeNet5>>,
    /// The weight average the run keeps (`ema`), as it starts or resumes.
    pub(super) average: Option<WeightAverage>,
    pub(super) checkpoints: Checkpoints,
    pub(super) start: Position,
    pub(super) restored: Outcome,
    pub(super) train_loader: Arc<EpochLoader>,
    pub(super) valid_loader: Arc<EpochLoader>,
    /// The run's MLflow log, when it logs there: started before the folder is written to.
    pub(super) mlflow: Option<Arc<MlflowLog>>,
    /// Held from before the folder is written to until the outputs are.
    _lock: RunLock,
    /// This process's one training at a time, held from seeding to the end (see [`TRAINING`]).
    _alone: MutexGuard<'static, ()>,
}

/// One training at a time in a process. Burn's random generator belongs to the process, and
/// parameters draw their initial values lazily, at first use: two trainings at once (tests run
/// several in one process) could draw between each other's seeding and first step, and start
/// from weights no seed gives. The command line trains once per process, so it never waits.
static TRAINING: Mutex<()> = Mutex::new(());

impl Training {
    /// A run of `config`, named after the config `config_name`, started in its folder as `mode`
    /// says.
    pub fn prepare(
        config: &TrainingConfig,
        config_name: &str,
        mode: StartMode,
        options: &TrainOptions,
    ) -> Result<Self, TrainingError> {
        Self::start(config.clone(), config_name, mode, None, options)
    }

    /// The run in `run_dir` going on with the config it was started with, `overrides` applied
    /// (where the data is, the backend): from its newest checkpoint, or to `epochs` epochs in
    /// all when given (`lenet resume`).
    pub fn resume(
        run_dir: &Path,
        epochs: Option<usize>,
        overrides: &Overrides,
        options: &TrainOptions,
    ) -> Result<Self, TrainingError> {
        let mode = epochs.map_or(StartMode::Resume, |epochs| StartMode::Extend { epochs });
        let (saved, name) = resume::saved_run(run_dir, mode)?;
        let mut config = saved.clone();
        config.apply(&Overrides {
            artifact_dir: Some(run_dir.to_path_buf()),
            ..overrides.clone()
        })?;
        Self::start(config, &name, mode, Some(saved), options)
    }

    /// Phases 1 to 5, `saved` being the config of the run in the folder when the caller has
    /// read it already.
    fn start(
        config: TrainingConfig,
        config_name: &str,
        mode: StartMode,
        saved: Option<TrainingConfig>,
        options: &TrainOptions,
    ) -> Result<Self, TrainingError> {
        let (mut config, backend, run_dir) = resolve(config, config_name, mode)?;
        let device = backend.device()?;
        let (mut data, valid) = read_data(&config)?;
        config.data.classes = Some(data.classes.clone());
        config.check_classes()?;
        let (newest, init_from) = check_folder(&config, &run_dir, mode, saved, &mut data.warnings)?;
        let mlflow = start_mlflow(&config, backend, &run_dir, mode)?;
        let (lock, checkpoints) = match open_run_folder(&config, &run_dir, mode) {
            Ok(opened) => opened,
            Err(error) => {
                // Another process training this run holds its folder: the MLflow run is its.
                let theirs = matches!(error, TrainingError::Run(RunError::Locked { .. }));
                if let Some(log) = mlflow.as_ref().filter(|_| theirs) {
                    log.leave();
                }
                return Err(error);
            }
        };
        if let Some(log) = &mlflow {
            log.keep(&run_dir)?;
        }
        let alone = TRAINING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (mut learner, parameters, layer_table) =
            build_learner(&config, &device, data.train.len(), init_from)?;
        let (restored, start, saved_average) = match newest {
            Some(loaded) => resume::restore(&checkpoints, &mut learner, loaded),
            None => (Outcome::default(), Position::START, None),
        };
        let average = config.ema.map(|ema| {
            let model = learner.model();
            let model = match saved_average {
                Some(record) => model.load_record(record),
                None => model,
            };
            WeightAverage::new(model, ema.decay)
        });
        // Phase 5.
        let (train_loader, valid_loader) = loaders(&config, &data.train, &valid, &device, start);
        Ok(Self {
            config,
            config_name: config_name.to_string(),
            mode,
            options: options.clone(),
            backend,
            device,
            run_dir,
            data,
            valid,
            layer_table,
            parameters,
            learner: Some(learner),
            average,
            checkpoints,
            start,
            restored,
            train_loader: Arc::new(train_loader),
            valid_loader: Arc::new(valid_loader),
            mlflow,
            _lock: lock,
            _alone: alone,
        })
    }

    /// Whether training will show Burn's dashboard (asked for, and stdout is a terminal).
    pub fn uses_dashboard(&self) -> bool {
        self.options.dashboard && std::io::stdout().is_terminal()
    }

    /// The epochs the run trains for, in all.
    pub fn epochs(&self) -> usize {
        self.config.epochs
    }

    /// What went wrong on the way that did not stop the run: images left out, checkpoints that
    /// did not load, settings that flatter the results.
    pub fn warnings(&self) -> &[String] {
        &self.data.warnings
    }

    /// Whether validation runs on the test set (`data.validation_size` 0).
    pub(super) fn validated_on_test_set(&self) -> bool {
        self.config.data.validation_size == SplitSize::Count(0)
    }
}

/// What the run is about to do: the model's layers, the backend, the data and the plan.
impl fmt::Display for Training {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.layer_table)?;
        writeln!(f, "Backend: {}", self.backend)?;
        let data = &self.config.data;
        let (drawn, drawn_line) = match &data.synthetic {
            Some(s) => (
                s.images,
                format!(
                    " (+ {} drawn from {} font{})",
                    thousands(s.images),
                    s.fonts.len(),
                    if s.fonts.len() == 1 { "" } else { "s" }
                ),
            ),
            None => (0, String::new()),
        };
        writeln!(
            f,
            "{} from {}: {} classes ({}), {} training{}, {} validation{}, {} test images",
            data.dataset,
            data.dir.as_deref().unwrap_or(Path::new("")).display(),
            self.data.classes.len(),
            brief(&self.data.classes, 10),
            thousands(self.data.train.len() - drawn),
            drawn_line,
            thousands(self.valid.len()),
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
            .filter(|_| !self.mode.continues())
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
        if self.mode.continues() && self.restored.checkpoint.is_none() {
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
        if self.config.tracking.tensorboard {
            writeln!(
                f,
                "TensorBoard: {}",
                self.run_dir.join(run::TENSORBOARD_DIR).display()
            )?;
        }
        if let Some(log) = &self.mlflow {
            writeln!(f, "MLflow: {}", log.record().page())?;
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

/// Phase 1: the config as the run will record it, with the backend, the data folder, the run
/// folder and (for an extended run) the epochs filled in; the backend; the run folder.
fn resolve(
    config: TrainingConfig,
    config_name: &str,
    mode: StartMode,
) -> Result<(TrainingConfig, BackendKind, PathBuf), TrainingError> {
    let backend = config.device.unwrap_or_else(BackendKind::preferred);
    backend.ensure_compiled()?;
    let run_dir = config.run_dir(config_name);
    let location = source::locate_dataset(
        config.data.dataset,
        config.data.dir.as_deref(),
        &idx::FILE_NAMES,
    )?;
    let mut resolved = config;
    resolved.device = Some(backend);
    // Absolute, so that the run can be evaluated again from another working directory.
    resolved.data.dir = Some(fs::canonicalize(&location.dir).unwrap_or(location.dir));
    resolved.artifact_dir = Some(run_dir.clone());
    resolved.init_from = resolved
        .init_from
        .map(|dir| fs::canonicalize(&dir).unwrap_or(dir));
    // Recorded whole, so that a resume from another folder draws from the same files.
    if let Some(synthetic) = &mut resolved.data.synthetic {
        for font in &mut synthetic.fonts {
            if let Ok(whole) = fs::canonicalize(&*font) {
                *font = whole;
            }
        }
    }
    if let StartMode::Extend { epochs } = mode {
        resolved.epochs = epochs;
    }
    Ok((resolved, backend, run_dir))
}

/// Phase 2: the data set the config asks for, its training images split into training and
/// validation (returned apart), each split limited as the config says, with a warning for
/// what the split leaves the model unable to learn.
fn read_data(config: &TrainingConfig) -> Result<(DataSet, ImageSplit), TrainingError> {
    let dir = config
        .data
        .dir
        .as_deref()
        .expect("the resolved config names its data folder");
    let data = dataset::read(
        config.data.dataset,
        dir,
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
    let train = match &config.data.synthetic {
        Some(synthetic) => {
            synthetic
                .check_classes(&data.classes)
                .map_err(DataError::from)?;
            let (pixels, labels) = synthetic.draw(config.seed).map_err(DataError::from)?;
            train.extended(&pixels, &labels)
        }
        None => train,
    };
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
    if config.early_stopping.is_some() && config.data.validation_size == SplitSize::Count(0) {
        warnings.push(
            "data.validation_size is 0, so early stopping and the best model are chosen on the \
             test set: the best model's test accuracy flatters it"
                .to_string(),
        );
    }
    let data = DataSet {
        train,
        test,
        classes: data.classes,
        warnings,
    };
    Ok((data, valid))
}

/// Phase 3, the checks: for a run that goes on, that it can ([`resume::check`]) and the
/// checkpoint it goes on from; for one that starts afresh, `init_from`'s source, read. Nothing
/// is written yet; what did not stop the run is added to `warnings`.
fn check_folder(
    config: &TrainingConfig,
    run_dir: &Path,
    mode: StartMode,
    saved: Option<TrainingConfig>,
    warnings: &mut Vec<String>,
) -> Result<(Option<Loaded>, Option<init::Source>), TrainingError> {
    let newest = if mode.continues() {
        let saved = match saved {
            Some(saved) => saved,
            None => resume::saved_run(run_dir, mode)?.0,
        };
        let continued = resume::check(config, &saved, run_dir, mode)?;
        warnings.extend(continued.warnings);
        continued.newest
    } else {
        None
    };
    // A resumed run without a checkpoint starts over, from init_from's weights as it first did.
    let init_from = match config.init_from.as_ref().filter(|_| newest.is_none()) {
        Some(dir) => Some(init::Source::check(dir, config, run_dir)?),
        None => None,
    };
    Ok((newest, init_from))
}

/// The run's MLflow log, when its config asks for one: the server reached and the run opened
/// there (continued, for a run that goes on), or the reason it cannot be, before anything is
/// written.
fn start_mlflow(
    config: &TrainingConfig,
    backend: BackendKind,
    run_dir: &Path,
    mode: StartMode,
) -> Result<Option<Arc<MlflowLog>>, TrainingError> {
    let Some(section) = &config.tracking.mlflow else {
        return Ok(None);
    };
    let (uri, experiment) = section.resolve(|key| std::env::var(key).ok())?;
    let mut tags = vec![
        ("mlflow.source.name".to_string(), "lenet".to_string()),
        (
            "lenet.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("lenet.backend".to_string(), backend.to_string()),
        (
            "lenet.variant".to_string(),
            config.model.variant.to_string(),
        ),
        ("lenet.dataset".to_string(), config.data.dataset.to_string()),
    ];
    if let Some(commit) = source_commit() {
        tags.push(("mlflow.source.git.commit".to_string(), commit.to_string()));
    }
    let log = MlflowLog::start(
        &MlflowTarget { uri, experiment },
        run_dir,
        &run::name(run_dir),
        &config.flattened_with_locations(),
        &tags,
        mode.continues(),
    )?;
    Ok(Some(Arc::new(log)))
}

/// Phase 3, the writing: the run folder locked for this process, then a new run's folder
/// emptied if allowed and holding its resolved config, or a resumed run's config and summary
/// brought up to date (its epochs when extended, where it is logged); either way with a
/// checkpoint folder cleared of half-written files.
fn open_run_folder(
    config: &TrainingConfig,
    run_dir: &Path,
    mode: StartMode,
) -> Result<(RunLock, Checkpoints), TrainingError> {
    let lock = RunLock::acquire(run_dir)?;
    let checkpoints = Checkpoints::new(run_dir);
    match mode {
        StartMode::New | StartMode::Overwrite => {
            // A run that left nothing to keep (it failed or was killed before its first
            // checkpoint) is replaced without --overwrite.
            let nothing_to_keep = !checkpoints.any()
                && !run_dir.join(MODEL_FILE).exists()
                && !run_dir.join(SUMMARY_FILE).exists();
            run::prepare(run_dir, mode == StartMode::Overwrite || nothing_to_keep)?;
            let json = serde_json::to_vec_pretty(config).expect("config serialises");
            run::write_atomic(&run_dir.join(CONFIG_FILE), &json)?;
        }
        StartMode::Resume => resume::write_tracking(config, run_dir)?,
        StartMode::Extend { .. } => resume::write_extended(config, run_dir)?,
    }
    checkpoints.prepare()?;
    Ok((lock, checkpoints))
}

/// Phase 4: the learner, its model seeded (or started from `init_from`'s weights), with the
/// optimizer and the schedule planned for `train_images` per epoch; the model's trainable
/// parameters; and its layer table.
fn build_learner(
    config: &TrainingConfig,
    device: &Device,
    train_images: usize,
    init_from: Option<init::Source>,
) -> Result<(Learner<LeNet5>, usize, String), TrainingError> {
    let model_config = config.model_config();
    // The table comes from a model of its own, made before seeding: Burn initialises parameters
    // lazily, on first use, so running the trained model for the table would change the order
    // in which its parameters draw random numbers, and with it the run.
    let table = layer_table(&model_config, &model_config.init(device).layers(device));
    let autodiff = device.clone().autodiff();
    autodiff.seed(config.seed);
    let mut model = model_config.init(&autodiff);
    if let Some(source) = init_from {
        model = source.apply(model, config, &autodiff)?;
    }
    let parameters = model.trainable_params();
    let scheduler = config.lr_schedule.init(
        config.optimizer.learning_rate(),
        config.epochs,
        train_images.div_ceil(config.batch_size),
    )?;
    let learner = Learner::new(model, config.optimizer.init(), scheduler);
    Ok((learner, parameters, table))
}

/// Phase 5: the training loader, seeded and starting where the run continues, and the
/// validation loader, in data set order.
fn loaders(
    config: &TrainingConfig,
    train: &ImageSplit,
    valid: &ImageSplit,
    device: &Device,
    start: Position,
) -> (EpochLoader, EpochLoader) {
    let train = EpochLoader::new(
        train.clone(),
        config.batch_size,
        Some(config.seed),
        config.num_workers,
        device.clone(),
    )
    .with_augmentation(config.augmentation)
    .starting_at(start);
    let valid = EpochLoader::new(
        valid.clone(),
        config.batch_size,
        None,
        config.num_workers,
        device.clone(),
    );
    (train, valid)
}

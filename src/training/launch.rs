//! Phases 6 and 7 of a run: Burn's `SupervisedTraining` launched with lenet's loop,
//! checkpoints and renderer, then how the loop ended turned into a result, and the outputs
//! written: the final model and the best epoch's, each tested on the test set.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::train::metric::{
    AccuracyMetric, CpuMemory, CpuUse, IterationSpeedMetric, LearningRateMetric, LossMetric,
};
use burn::train::renderer::MetricsRenderer;
use burn::train::{LearningResult, SupervisedTraining, TrainingStrategy};

use super::burn_glue;
use super::error::TrainingError;
use super::options::{KillHook, Progress};
use super::prepare::Training;
use super::renderer::EpochLineRenderer;
use super::resumable::{Outcome, ResumableLoop, Stop};
use crate::inference::eval::{EvalFiles, write_eval_files};
use crate::inference::export::to_onnx;
use crate::inference::{Evaluation, evaluate};
use crate::model::LeNet5;
use crate::report::plots;
use crate::run::history::{self, EpochMetrics};
use crate::run::{
    self, BEST_MODEL_FILE, BestEpoch, CONFIG_FILE, FinishedRun, METRICS_FILE, MODEL_FILE,
    ModelChoice, PLOTS_DIR, RunState, RunStatus, RunSummary, SUMMARY_FILE, TENSORBOARD_DIR,
};
use crate::tracking::mlflow::RunEnd;
use crate::tracking::tensorboard::TensorBoardLog;

/// A run's TensorBoard log, shared by the loop's threads and the end of the run.
type SharedLog = Arc<Mutex<TensorBoardLog>>;

impl Training {
    /// Trains, evaluates on the test set and writes the outputs, with the run's `status.json`
    /// saying "training" meanwhile and how it ended after.
    pub fn launch(self) -> Result<RunSummary, TrainingError> {
        let run_dir = self.run_dir.clone();
        let status = RunStatus::starting(&run_dir, &self.config_name);
        status.write(&run_dir)?;
        let mlflow = self.mlflow.clone();
        let tensorboard = match self.start_tensorboard() {
            Ok(tensorboard) => tensorboard,
            Err(error) => {
                status
                    .ended(RunState::Failed, Some(error.to_string()))
                    .write(&run_dir)?;
                if let Some(log) = &mlflow {
                    log.end(RunEnd::Failed);
                }
                return Err(error);
            }
        };
        let on_tracked = self.options.on_tracked.clone();
        let tell = |line: &str| {
            if let Some(hook) = &on_tracked {
                hook(line);
            }
        };
        let result = self.train_and_test(tensorboard.clone());
        let (state, message) = match &result {
            Ok(_) => (RunState::Finished, None),
            Err(error) if error.stopped_run().is_some() => {
                (RunState::Stopped, Some(error.to_string()))
            }
            Err(error) => (RunState::Failed, Some(error.to_string())),
        };
        let ended = status.ended(state, message).write(&run_dir);
        let logged = match (&tensorboard, state) {
            (Some(log), RunState::Finished) => lock(log).finished(),
            _ => Ok(()),
        };
        if tensorboard.is_some() {
            tell(&format!(
                "TensorBoard: {} (tensorboard --logdir {})",
                run_dir.join(TENSORBOARD_DIR).display(),
                run_dir
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .display()
            ));
        }
        if let Some(log) = &mlflow {
            let end = match state {
                RunState::Finished => RunEnd::Finished,
                RunState::Failed => RunEnd::Failed,
                RunState::Stopped | RunState::Training => RunEnd::Killed,
            };
            tell(&log.end(end));
        }
        // The run's own error says more than a status file that could not be written.
        let summary = result?;
        ended?;
        logged?;
        Ok(summary)
    }

    /// The run's TensorBoard log, when its config asks for one, started where the run starts.
    fn start_tensorboard(&self) -> Result<Option<SharedLog>, TrainingError> {
        if !self.config.tracking.tensorboard {
            return Ok(None);
        }
        let log = TensorBoardLog::start(
            &self.run_dir,
            &self.config.flattened(),
            &run::name(&self.run_dir),
            self.train_loader.batches_per_epoch(),
            (self.start.epoch, self.start.batches_done),
        )?;
        Ok(Some(Arc::new(Mutex::new(log))))
    }

    fn train_and_test(
        mut self,
        tensorboard: Option<SharedLog>,
    ) -> Result<RunSummary, TrainingError> {
        let learner = self.learner.take().expect("a run is launched once");
        let training_loop = Arc::new(self.training_loop(tensorboard.clone()));
        let result =
            burn_glue::launch(&self.run_dir, || self.run_learner(learner, &training_loop))?;
        // Dropping the renderer closes the dashboard and gives the terminal back.
        drop(result.renderer);
        let outcome = training_loop.outcome();
        self.check_outcome(&outcome)?;
        if let Some(error) = result.error {
            return Err(TrainingError::Failed(error.to_string()));
        }
        self.write_outputs(result.model, outcome, tensorboard)
    }

    /// The loop Burn runs, starting where the run continues.
    fn training_loop(&self, tensorboard: Option<SharedLog>) -> ResumableLoop {
        ResumableLoop {
            device: self.device.clone().autodiff(),
            start: self.start,
            batches_per_epoch: self.train_loader.batches_per_epoch(),
            cursor: self.train_loader.cursor(),
            checkpoints: self.checkpoints.clone(),
            checkpoint_every: self.config.checkpoint_every(),
            config_name: self.config_name.clone(),
            outcome: self.restored.clone().into(),
            on_progress: self.options.on_progress.clone(),
            run_dir: self.run_dir.clone(),
            early_stopping: self.config.early_stopping,
            label_smoothing: self.config.label_smoothing,
            average: self.average.clone(),
            epoch_gate: self.options.epoch_gate.clone(),
            tensorboard,
            mlflow: self.mlflow.clone(),
        }
    }

    /// Phase 6: Burn's `SupervisedTraining` with this crate's loop, checkpoints and renderer.
    fn run_learner(
        &self,
        learner: burn::train::Learner<LeNet5>,
        training_loop: &Arc<ResumableLoop>,
    ) -> LearningResult<LeNet5> {
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
        .with_training_strategy(TrainingStrategy::Custom(training_loop.clone()))
        .with_interrupter(interrupter.clone())
        // Burn's application log (experiment.log) stayed empty for this program, and its panic
        // hook printed a report over the dashboard's own way out (see burn_glue, item 3).
        .with_application_logger(None)
        .num_epochs(self.config.epochs)
        .renderer(self.renderer(interrupter))
        .launch(learner)
    }

    /// Burn's dashboard in a terminal (unless turned off), one line per epoch otherwise.
    fn renderer(&self, interrupter: burn::train::Interrupter) -> Box<dyn MetricsRenderer> {
        if self.uses_dashboard() {
            burn_glue::dashboard(interrupter, &self.run_dir, self.on_kill())
        } else {
            Box::new(EpochLineRenderer::new())
        }
    }

    /// What the dashboard's kill (q, then k) does before the process exits: the MLflow run
    /// marked KILLED there and then, and the caller's hook.
    fn on_kill(&self) -> Option<KillHook> {
        let caller = self.options.on_kill.clone();
        let Some(log) = self.mlflow.clone() else {
            return caller;
        };
        Some(Arc::new(move |error: &TrainingError| {
            log.killed_now();
            match &caller {
                Some(hook) => hook(error),
                // What burn_glue says without a hook of the caller's.
                None => eprintln!("error: {error}"),
            }
        }))
    }

    /// Phase 7a: a run that stopped before its last epoch is an error that says why and where
    /// it can continue from.
    fn check_outcome(&self, outcome: &Outcome) -> Result<(), TrainingError> {
        let checkpoint = outcome.checkpoint.clone();
        let history = outcome.history.clone();
        match &outcome.stop {
            Some(Stop::Requested(reason)) => Err(TrainingError::Interrupted {
                by: burn_glue::stopped_by(reason),
                checkpoint,
                batches_per_epoch: self.train_loader.batches_per_epoch(),
                run_dir: self.run_dir.clone(),
                history,
            }),
            Some(Stop::NonFinite { epoch, batch, loss }) => Err(TrainingError::NonFiniteLoss {
                epoch: *epoch,
                batch: *batch,
                loss: *loss,
                learning_rate: self.config.optimizer.learning_rate(),
                checkpoint: checkpoint.map(|(path, _)| path),
                history,
            }),
            Some(Stop::Write(problem)) => Err(TrainingError::Failed(problem.clone())),
            None => Ok(()),
        }
    }

    /// Phase 7b: the final model, the metrics and plots, the test-set evaluation and the
    /// summary, each written atomically; with TensorBoard, the test figures and `lenet eval`'s
    /// files and pictures of the final model too.
    fn write_outputs(
        &self,
        model: LeNet5,
        outcome: Outcome,
        tensorboard: Option<SharedLog>,
    ) -> Result<RunSummary, TrainingError> {
        run::save_model(&self.run_dir.join(MODEL_FILE), &model)?;
        let history = outcome.history;
        plots::write_history(&self.run_dir, &history)?;

        self.options.report(Progress::Testing);
        let started = Instant::now();
        let test = self.test(&model)?;
        let test_seconds = started.elapsed().as_secs_f64();
        let pictures = if tensorboard.is_some() || self.mlflow.is_some() {
            self.test_pictures(&test)?
        } else {
            Vec::new()
        };
        if let Some(log) = &tensorboard {
            lock(log).tested(history.len(), test.accuracy(), test.loss, &pictures)?;
        }
        if let Some(log) = &self.mlflow {
            log.tested(history.len(), test.accuracy(), test.loss);
        }
        let best = self.best_epoch(&history)?;
        let summary = RunSummary {
            config: self.config_name.clone(),
            run_dir: self.run_dir.clone(),
            device: self.backend,
            parameters: self.parameters,
            epochs: history.len(),
            train_images: self.data.train.len(),
            valid_images: self.valid.len(),
            validated_on_test_set: self.validated_on_test_set(),
            test_images: test.images(),
            test_correct: test.correct(),
            test_accuracy: test.accuracy(),
            test_loss: test.loss,
            test_seconds,
            // Summed over epochs rather than timed around the launch, so that a resumed run
            // counts the epochs done before it was interrupted.
            train_seconds: history.iter().map(epoch_seconds).sum(),
            resumed: self.mode.continues(),
            classes: self.data.classes.clone(),
            best,
            stopped_early_at: outcome.stopped_early_at,
            stopped_by: outcome.stopped_by,
            history,
        };
        let summary_json = serde_json::to_vec_pretty(&summary).expect("summary serialises");
        run::write_atomic(&self.run_dir.join(SUMMARY_FILE), &summary_json)?;
        if self.mlflow.is_some() {
            self.send_artifacts(&model);
        }
        Ok(summary)
    }

    /// The final model's confusion matrix and worst mistakes on the test set, as pictures
    /// tagged for the trackers, written to the run's `eval/` as `lenet eval` writes them.
    fn test_pictures(
        &self,
        test: &Evaluation,
    ) -> Result<Vec<(&'static str, Vec<u8>)>, TrainingError> {
        let out = self.run_dir.join(ModelChoice::Last.eval_dir());
        let names = self.config.data.class_names();
        let (_, files) = write_eval_files(&out, test, &self.data.test, &names)
            .map_err(|e| TrainingError::Evaluation(e.to_string()))?;
        let mut pictures = Vec::new();
        for (tag, file) in [
            ("test/confusion", &files.confusion_png),
            ("test/mistakes", &files.mistakes_png),
        ] {
            let png = fs::read(file).map_err(run::RunError::io(file, "read"))?;
            pictures.push((tag, png));
        }
        Ok(pictures)
    }

    /// The run's outputs as MLflow artifacts: the model as ONNX, the config, summary and
    /// metrics, the plots and the evaluation's pictures. Sent in the background; what does not
    /// arrive is reported when the run ends.
    fn send_artifacts(&self, model: &LeNet5) {
        let Some(log) = &self.mlflow else {
            return;
        };
        let names = self.config.data.class_names();
        log.artifact("model.onnx", to_onnx(model, &names, false));
        let eval = EvalFiles::in_dir(&self.run_dir.join(ModelChoice::Last.eval_dir()));
        let mut files = vec![
            self.run_dir.join(CONFIG_FILE),
            self.run_dir.join(SUMMARY_FILE),
            self.run_dir.join(METRICS_FILE),
            eval.confusion_png,
            eval.mistakes_png,
            eval.report,
        ];
        if let Ok(plots) = fs::read_dir(self.run_dir.join(PLOTS_DIR)) {
            let mut plots: Vec<PathBuf> = plots
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|e| e == "png"))
                .collect();
            plots.sort();
            files.extend(plots);
        }
        for file in files {
            // Each was written whole by this run; one that is not there is not sent.
            let (Ok(name), Ok(bytes)) = (file.strip_prefix(&self.run_dir), fs::read(&file)) else {
                continue;
            };
            // Artifact paths use forward slashes, whatever the system's separator.
            let name: Vec<String> = name
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            log.artifact(&name.join("/"), bytes);
        }
    }

    /// `model`'s answers on the test set.
    fn test(&self, model: &LeNet5) -> Result<Evaluation, TrainingError> {
        evaluate(
            model,
            self.data.test.clone(),
            self.config.batch_size,
            &self.device,
            true,
        )
        .map_err(|e| TrainingError::Evaluation(format!("test set: {e}")))
    }

    /// The best epoch of `history` (see [`history::best_rule`]), its model as the loop kept it
    /// in `model_best.bpk`, tested.
    fn best_epoch(&self, history: &[EpochMetrics]) -> Result<Option<BestEpoch>, TrainingError> {
        let (metric, min_delta) = history::best_rule(self.config.early_stopping);
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

fn epoch_seconds(epoch: &EpochMetrics) -> f64 {
    epoch.train_seconds.unwrap_or(0.0) + epoch.valid_seconds.unwrap_or(0.0)
}

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, TensorBoardLog> {
    // A panic while logging leaves the log as it was last written, which is still usable.
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

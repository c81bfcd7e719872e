//! Phases 6 and 7 of a run: Burn's `SupervisedTraining` launched with lenet's loop,
//! checkpoints and renderer, then how the loop ended turned into a result, and the outputs
//! written: the final model and the best epoch's, each tested on the test set.

use std::sync::Arc;
use std::time::Instant;

use burn::train::metric::{
    AccuracyMetric, CpuMemory, CpuUse, IterationSpeedMetric, LearningRateMetric, LossMetric,
};
use burn::train::renderer::MetricsRenderer;
use burn::train::{LearningResult, SupervisedTraining, TrainingStrategy};

use super::burn_glue;
use super::error::TrainingError;
use super::options::Progress;
use super::prepare::Training;
use super::renderer::EpochLineRenderer;
use super::resumable::{Outcome, ResumableLoop, Stop};
use crate::inference::{Evaluation, evaluate};
use crate::model::LeNet5;
use crate::report::plots;
use crate::run::history::{self, EpochMetrics};
use crate::run::{
    self, BEST_MODEL_FILE, BestEpoch, FinishedRun, MODEL_FILE, ModelChoice, RunState, RunStatus,
    RunSummary, SUMMARY_FILE,
};

impl Training {
    /// Trains, evaluates on the test set and writes the outputs, with the run's `status.json`
    /// saying "training" meanwhile and how it ended after.
    pub fn launch(self) -> Result<RunSummary, TrainingError> {
        let run_dir = self.run_dir.clone();
        let status = RunStatus::starting(&run_dir, &self.config_name);
        status.write(&run_dir)?;
        let result = self.train_and_test();
        let (state, message) = match &result {
            Ok(_) => (RunState::Finished, None),
            Err(error) if error.stopped_run().is_some() => {
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

    fn train_and_test(mut self) -> Result<RunSummary, TrainingError> {
        let learner = self.learner.take().expect("a run is launched once");
        let training_loop = Arc::new(self.training_loop());
        let result =
            burn_glue::launch(&self.run_dir, || self.run_learner(learner, &training_loop))?;
        // Dropping the renderer closes the dashboard and gives the terminal back.
        drop(result.renderer);
        let outcome = training_loop.outcome();
        self.check_outcome(&outcome)?;
        if let Some(error) = result.error {
            return Err(TrainingError::Failed(error.to_string()));
        }
        self.write_outputs(result.model, outcome)
    }

    /// The loop Burn runs, starting where the run continues.
    fn training_loop(&self) -> ResumableLoop {
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
            burn_glue::dashboard(interrupter, &self.run_dir, self.options.on_kill.clone())
        } else {
            Box::new(EpochLineRenderer::new())
        }
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
    /// summary, each written atomically.
    fn write_outputs(&self, model: LeNet5, outcome: Outcome) -> Result<RunSummary, TrainingError> {
        run::save_model(&self.run_dir.join(MODEL_FILE), &model)?;
        let history = outcome.history;
        plots::write_history(&self.run_dir, &history)?;

        self.options.report(Progress::Testing);
        let started = Instant::now();
        let test = self.test(&model)?;
        let test_seconds = started.elapsed().as_secs_f64();
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
            history,
        };
        let summary_json = serde_json::to_vec_pretty(&summary).expect("summary serialises");
        run::write_atomic(&self.run_dir.join(SUMMARY_FILE), &summary_json)?;
        Ok(summary)
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

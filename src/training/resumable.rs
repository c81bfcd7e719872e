//! The loop Burn's `SupervisedTraining` runs for LeNet-5: epochs of training and validation, as
//! Burn's single-device strategy runs them, plus what that strategy does not do:
//!
//! - it can start anywhere in a run (a checkpoint's epoch and batch, including "training done,
//!   validation not"), and tells the training loader which epoch and batch to serve;
//! - it checkpoints at the end of every epoch, every `checkpoint_every` of training time at a
//!   batch boundary, and wherever a stop request catches it, through Burn's
//!   `LearningCheckpointer` and the sealed files of [`Checkpoints`];
//! - it stops before an optimizer step whose loss is NaN or infinite, so the last checkpoint
//!   stays the last good state;
//! - it records each epoch's metrics and how the run ended itself, because Burn's dashboard
//!   resets the interrupter when training ends, which would make a run stopped with `q` look
//!   finished;
//! - it keeps the best epoch's weights (`model_best.bpk`) and stops early when validation no
//!   longer improves, both decided from the recorded history alone, so that a resumed run
//!   decides as an uninterrupted one would (see [`crate::run::history::best_epoch`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use burn::data::dataloader::DataLoaderIterator;
use burn::prelude::*;
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};
use burn::train::{
    EventProcessorTraining, InferenceStep, Interrupter, Learner, LearnerEvent,
    LearningCheckpointer, LearningResult, SupervisedLearningStrategy,
    SupervisedTrainingEventProcessor, TrainLoader, TrainingComponents, TrainingItem, ValidLoader,
};

use super::average::WeightAverage;
use super::checkpoint::{CheckpointState, Checkpoints};
use super::options::{EpochGate, Progress, ProgressHook};
use super::step;
use crate::config::EarlyStopping;
use crate::data::loader::{EpochCursor, Position};
use crate::model::LeNet5;
use crate::report::plots;
use crate::run::history::{self, EpochMetrics};
use crate::run::{self, BEST_MODEL_FILE};
use crate::tracking::mlflow::MlflowLog;
use crate::tracking::tensorboard::TensorBoardLog;

/// Why a run ended before its last epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Ctrl-C, `q` in the dashboard, or another stop request.
    Requested(String),
    /// The loss of a batch was NaN or infinite; no step was taken with it.
    NonFinite {
        epoch: usize,
        batch: usize,
        loss: f64,
    },
    /// A checkpoint or the metrics could not be written.
    Write(String),
}

/// How a run went, as far as it got.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The last epoch whose training and validation both ran to the end.
    pub completed_epochs: usize,
    pub stop: Option<Stop>,
    /// The metrics of every completed epoch, including those before a resume.
    pub history: Vec<EpochMetrics>,
    /// The newest checkpoint written or resumed from, and where it continues.
    pub checkpoint: Option<(PathBuf, Position)>,
    /// The last epoch, when early stopping (or the caller's gate) ended the run before its
    /// configured epochs.
    pub stopped_early_at: Option<usize>,
    /// The gate's reason, when it was the caller's gate that ended the run.
    pub stopped_by: Option<String>,
}

pub struct ResumableLoop {
    /// The autodiff device training runs on.
    pub device: Device,
    pub start: Position,
    pub batches_per_epoch: usize,
    /// Where the training loader's next epoch starts; set before each epoch.
    pub cursor: EpochCursor,
    pub checkpoints: Checkpoints,
    /// Training time between two checkpoints inside an epoch; `None` checkpoints at epoch ends
    /// and stops only.
    pub checkpoint_every: Option<Duration>,
    pub config_name: String,
    /// Starts as what the resumed checkpoint knew; filled in as the run goes, and read back
    /// with [`ResumableLoop::outcome`] once Burn's launch returns.
    pub outcome: Mutex<Outcome>,
    /// Told where the run is after every batch and epoch.
    pub on_progress: Option<ProgressHook>,
    /// The run's folder, where each epoch's metrics and plots are written as it ends.
    pub run_dir: PathBuf,
    pub early_stopping: Option<EarlyStopping>,
    /// The config's `label_smoothing`, applied to training's loss only.
    pub label_smoothing: Option<f32>,
    /// The weight average the run keeps, as it starts: when there is one, it is the model
    /// validated, kept as the best and returned.
    pub average: Option<WeightAverage>,
    /// The caller's say, between epochs, in whether the run goes on.
    pub epoch_gate: Option<EpochGate>,
    /// The run's TensorBoard log, when it has one: batch losses and epochs go there too.
    pub tensorboard: Option<Arc<Mutex<TensorBoardLog>>>,
    /// The run's MLflow log, when it has one: epochs go there too, in the background.
    pub mlflow: Option<Arc<MlflowLog>>,
}

/// What the loop works with while it runs: Burn's parts, taken from its `TrainingComponents`.
struct Session {
    learner: Learner<LeNet5>,
    train: TrainLoader<LeNet5>,
    valid: ValidLoader<LeNet5>,
    processor: SupervisedTrainingEventProcessor<LeNet5>,
    checkpointer: LearningCheckpointer<LeNet5>,
    interrupter: Interrupter,
    store: Arc<EventStoreClient>,
    average: Option<WeightAverage>,
    /// When the newest checkpoint was written or the run (re)started.
    last_checkpoint: Instant,
}

impl Session {
    /// The model the run validates, keeps and returns: the weight average when the run keeps
    /// one, else the trained weights (without autodiff).
    fn model(&self) -> LeNet5 {
        match &self.average {
            Some(average) => average.model().clone(),
            None => self.learner.model().valid(),
        }
    }
}

impl SupervisedLearningStrategy<LeNet5> for ResumableLoop {
    /// Burn's default, except that the run starts at this loop's epoch, which Burn would take
    /// from its own checkpointer.
    fn train(
        &self,
        learner: Learner<LeNet5>,
        dataloader_train: TrainLoader<LeNet5>,
        dataloader_valid: ValidLoader<LeNet5>,
        mut components: TrainingComponents<LeNet5>,
    ) -> LearningResult<LeNet5> {
        let interrupter = components.interrupter.clone();
        interrupter.fail_on_error(
            components
                .event_processor
                .process_train(LearnerEvent::Start {
                    total_epochs: components.num_epochs,
                    starting_epoch: self.start.epoch,
                    label: components.label.clone(),
                }),
        );
        let (model, mut processor) = crate::device::on_compute_threads(|| {
            self.fit(
                components,
                learner,
                dataloader_train,
                dataloader_valid,
                self.start.epoch,
            )
        });
        interrupter.fail_on_error(processor.process_train(LearnerEvent::End(None)));
        let model = model.valid();
        interrupter.fail_on_error(processor.flush());
        LearningResult {
            model,
            renderer: processor.renderer(),
            interrupted: interrupter.interruption(),
            error: interrupter.error(),
        }
    }

    fn fit(
        &self,
        components: TrainingComponents<LeNet5>,
        mut learner: Learner<LeNet5>,
        dataloader_train: TrainLoader<LeNet5>,
        dataloader_valid: ValidLoader<LeNet5>,
        starting_epoch: usize,
    ) -> (LeNet5, SupervisedTrainingEventProcessor<LeNet5>) {
        learner.fork(&self.device);
        let mut session = Session {
            learner,
            train: dataloader_train.to_device(&self.device),
            valid: dataloader_valid.to_device(&self.device.clone().inner()),
            processor: components.event_processor,
            checkpointer: components
                .checkpointer
                .expect("the loop is given checkpointers"),
            interrupter: components.interrupter,
            store: components.event_store,
            average: self.average.clone(),
            last_checkpoint: Instant::now(),
        };
        self.report(Progress::Starting(self.start));
        for epoch in starting_epoch..=components.num_epochs {
            // Checked before each epoch rather than after, so that a run resumed from the
            // checkpoint of the epoch that met the criterion stops there too. The caller's gate
            // is asked only where the model is the last epoch's: not when a resumed run has
            // trained part of the next one already.
            let at_epoch_end = epoch != self.start.epoch || self.start.batches_done == 0;
            if self.stops_early(at_epoch_end) {
                break;
            }
            if !self.run_epoch(&mut session, epoch) {
                break;
            }
        }
        let model = session.model();
        let Session {
            processor,
            checkpointer,
            ..
        } = session;
        // Dropping the checkpointer waits for its writer threads: every checkpoint is on disk
        // before the run reports how it ended.
        drop(checkpointer);
        (model, processor)
    }
}

impl ResumableLoop {
    /// How the run went, as far as it got.
    pub fn outcome(&self) -> Outcome {
        self.recorded().clone()
    }

    /// The outcome so far, for updating. A panic elsewhere leaves it as it was last written,
    /// which is still the truth about the run.
    fn recorded(&self) -> MutexGuard<'_, Outcome> {
        self.outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Trains and validates one epoch from wherever the run is in it, records it and
    /// checkpoints its end. Returns whether the run goes on.
    fn run_epoch(&self, s: &mut Session, epoch: usize) -> bool {
        let start = if epoch == self.start.epoch {
            self.start
        } else {
            Position {
                epoch,
                batches_done: 0,
            }
        };
        let started = Instant::now();
        let position = self.train_split(s, start);
        let train_seconds = started.elapsed().as_secs_f64();
        if s.interrupter.should_stop() {
            self.stopped(s, position);
            return false;
        }

        let started = Instant::now();
        if !self.valid_split(s, epoch) {
            // Stopped during validation: the checkpoint repeats only the validation.
            self.stopped(s, position);
            return false;
        }
        s.interrupter
            .fail_on_error(s.processor.process_train(LearnerEvent::EndEpoch(epoch)));
        // The metric logs of the epoch are on disk before its checkpoint is.
        s.interrupter.fail_on_error(s.processor.flush());
        let metrics = EpochMetrics {
            train_seconds: Some(train_seconds),
            valid_seconds: Some(started.elapsed().as_secs_f64()),
            learning_rate: Some(s.learner.lr_current().base()),
            ..epoch_metrics(&s.store, epoch)
        };
        // Logged before the checkpoint: a crash between the two repeats the epoch's point
        // when the run resumes, where after it the point would be lost.
        if let Err(stop) = self.track(|log| log.epoch(&metrics)) {
            self.stop(&s.interrupter, stop);
            return false;
        }
        if let Some(log) = &self.mlflow {
            log.epoch(&metrics);
        }
        {
            let mut outcome = self.recorded();
            outcome.history.push(metrics);
            outcome.completed_epochs = epoch;
        }
        let next = Position {
            epoch: epoch + 1,
            batches_done: 0,
        };
        let history = self.recorded().history.clone();
        // The best model is on disk before the checkpoint that counts its epoch as done.
        let saved = self
            .keep_if_best(s, &history)
            .and_then(|()| self.checkpoint(s, next))
            .and_then(|()| {
                plots::write_history(&self.run_dir, &history)
                    .map_err(|e| Stop::Write(e.to_string()))
            });
        if let Err(stop) = saved {
            self.stop(&s.interrupter, stop);
            return false;
        }
        self.report(Progress::EpochEnded(epoch));
        if s.interrupter.should_stop() {
            // Stopped after the epoch ended: its checkpoint is where the run continues.
            self.note_request(&s.interrupter);
            return false;
        }
        true
    }

    /// Trains on the rest of an epoch from `position`; returns where it got to.
    fn train_split(&self, s: &mut Session, mut position: Position) -> Position {
        if position.batches_done >= self.batches_per_epoch {
            return position;
        }
        let epoch = position.epoch;
        s.interrupter
            .fail_on_error(s.processor.process_train(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: s.train.num_items(),
            }));
        self.cursor.set(position);
        let train = s.train.clone();
        let mut iterator = train.iter();
        while !s.interrupter.should_stop()
            && let Some(item) = next_item(&mut *iterator, &s.interrupter)
        {
            let progress = iterator.progress();
            let output = step::train_step(&s.learner.model(), item, self.label_smoothing);
            let loss = output.item.loss.clone().into_scalar::<f64>();
            if !loss.is_finite() {
                let batch = position.batches_done + 1;
                self.stop(&s.interrupter, Stop::NonFinite { epoch, batch, loss });
                break;
            }
            s.learner.lr_step();
            s.learner.optimizer_step(output.grads);
            position.batches_done += 1;
            if let Some(average) = &mut s.average {
                average.update(&s.learner.model(), self.steps_at(position));
            }
            if let Err(stop) = self.track(|log| log.batch(epoch, position.batches_done, loss)) {
                self.stop(&s.interrupter, stop);
                break;
            }
            let item = TrainingItem::new(
                output.item,
                progress,
                Some(position.batches_done),
                Some(s.learner.lr_current()),
            );
            s.interrupter
                .fail_on_error(s.processor.process_train(LearnerEvent::ProcessedItem(item)));
            self.report(Progress::Trained(position));
            if s.interrupter.should_stop() {
                break;
            }
            if self.checkpoint_due(s)
                && position.batches_done < self.batches_per_epoch
                && let Err(stop) = self.checkpoint(s, position)
            {
                self.stop(&s.interrupter, stop);
                break;
            }
        }
        s.interrupter
            .fail_on_error(s.processor.process_train(LearnerEvent::EndSplit(epoch)));
        position
    }

    /// Validates the model after `epoch`'s training; returns whether validation ran to its end.
    fn valid_split(&self, s: &mut Session, epoch: usize) -> bool {
        s.interrupter
            .fail_on_error(s.processor.process_valid(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: s.valid.num_items(),
            }));
        let model = s.model();
        let valid = s.valid.clone();
        let mut iterator = valid.iter();
        let mut iteration = 0;
        let mut complete = true;
        while let Some(item) = next_item(&mut *iterator, &s.interrupter) {
            let progress = iterator.progress();
            iteration += 1;
            let output = InferenceStep::step(&model, item);
            let item = TrainingItem::new(output, progress, Some(iteration), None);
            s.interrupter
                .fail_on_error(s.processor.process_valid(LearnerEvent::ProcessedItem(item)));
            self.report(Progress::Validated {
                epoch,
                batches: iteration,
            });
            if s.interrupter.should_stop() {
                complete = iterator.progress().items_processed >= valid.num_items();
                break;
            }
        }
        s.interrupter
            .fail_on_error(s.processor.process_valid(LearnerEvent::EndSplit(epoch)));
        complete && s.interrupter.error().is_none()
    }

    fn report(&self, progress: Progress) {
        if let Some(hook) = &self.on_progress {
            hook(progress);
        }
    }

    /// Logs to the run's TensorBoard log, if it has one; a failure stops the run as a metrics
    /// file that cannot be written does.
    fn track(
        &self,
        write: impl FnOnce(&mut TensorBoardLog) -> Result<(), crate::tracking::TrackingError>,
    ) -> Result<(), Stop> {
        let Some(log) = &self.tensorboard else {
            return Ok(());
        };
        let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        write(&mut log).map_err(|e| Stop::Write(e.to_string()))
    }

    /// Writes the model as `model_best.bpk` when the epoch just recorded is the best so far.
    fn keep_if_best(&self, s: &Session, history: &[EpochMetrics]) -> Result<(), Stop> {
        let (metric, min_delta) = history::best_rule(self.early_stopping);
        let latest = history.last().map(|e| e.epoch);
        if latest.is_none() || history::best_epoch(history, metric, min_delta) != latest {
            return Ok(());
        }
        run::save_model(&self.run_dir.join(BEST_MODEL_FILE), &s.model())
            .map_err(|e| Stop::Write(e.to_string()))
    }

    /// Whether the history meets the early stopping criterion, or (`at_epoch_end`) the caller's
    /// gate ends the run here, recording the stop when one does.
    fn stops_early(&self, at_epoch_end: bool) -> bool {
        let mut outcome = self.recorded();
        if let Some(rule) = self.early_stopping {
            outcome.stopped_early_at = history::stopped_early(&outcome.history, &rule);
            if outcome.stopped_early_at.is_some() {
                return true;
            }
        }
        let Some(gate) = self.epoch_gate.as_ref().filter(|_| at_epoch_end) else {
            return false;
        };
        let Some(last) = outcome.history.last().map(|e| e.epoch) else {
            return false;
        };
        let Some(reason) = gate(&outcome.history) else {
            return false;
        };
        outcome.stopped_early_at = Some(last);
        outcome.stopped_by = Some(reason);
        true
    }

    /// Optimizer steps taken by the time the run reaches `position`.
    fn steps_at(&self, position: Position) -> usize {
        (position.epoch - 1) * self.batches_per_epoch + position.batches_done
    }

    /// Whether the time since the last checkpoint calls for one now.
    fn checkpoint_due(&self, s: &Session) -> bool {
        self.checkpoint_every
            .is_some_and(|every| s.last_checkpoint.elapsed() >= every)
    }

    /// Saves a checkpoint that continues at `position`, unless the newest one already does.
    fn checkpoint(&self, s: &mut Session, position: Position) -> Result<(), Stop> {
        let mut outcome = self.recorded();
        if outcome.checkpoint.as_ref().map(|(_, p)| *p) == Some(position) {
            return Ok(());
        }
        let steps = self.steps_at(position);
        // The average first: if it cannot be written, Burn has not been asked for its records.
        if let Some(average) = &s.average {
            self.checkpoints
                .save_average(steps, average.model())
                .map_err(|e| Stop::Write(e.to_string()))?;
        }
        s.checkpointer.checkpoint(&s.learner, steps, &s.store);
        let state = CheckpointState {
            position,
            steps,
            config_name: self.config_name.clone(),
            history: outcome.history.clone(),
            averaged: s.average.is_some(),
        };
        let path = self
            .checkpoints
            .seal(&state)
            .map_err(|e| Stop::Write(e.to_string()))?;
        outcome.checkpoint = Some((path, position));
        s.last_checkpoint = Instant::now();
        Ok(())
    }

    fn stop(&self, interrupter: &Interrupter, stop: Stop) {
        let mut outcome = self.recorded();
        outcome.stop.get_or_insert(stop);
        interrupter.stop(Some("training stopped"));
    }

    /// Records a stop request that arrived while `interrupter` was set.
    fn note_request(&self, interrupter: &Interrupter) {
        let reason = interrupter
            .interruption()
            .and_then(|i| i.reason)
            .unwrap_or_else(|| "a stop request".to_string());
        self.recorded().stop.get_or_insert(Stop::Requested(reason));
    }

    /// Ends a run that was asked to stop: records why, and checkpoints where it stopped unless
    /// the stop came from a fault (whose state is not worth resuming from).
    fn stopped(&self, s: &mut Session, position: Position) {
        self.note_request(&s.interrupter);
        let faulted = matches!(self.recorded().stop, Some(Stop::NonFinite { .. }));
        if !faulted
            && s.interrupter.error().is_none()
            && let Err(stop) = self.checkpoint(s, position)
        {
            self.stop(&s.interrupter, stop);
        }
    }
}

/// An epoch's loss and accuracy on both splits, as Burn's event store has them: the epoch's
/// final value of each metric. Accuracies come as percentages and are kept as fractions.
fn epoch_metrics(store: &EventStoreClient, epoch: usize) -> EpochMetrics {
    let value = |name: &str, split: Split| store.find_metric(name, epoch, Aggregate::Mean, &split);
    let fraction = |percent: Option<f64>| percent.map(|p| p / 100.0);
    EpochMetrics {
        epoch,
        train_loss: value("Loss", Split::Train),
        train_accuracy: fraction(value("Accuracy", Split::Train)),
        valid_loss: value("Loss", Split::Valid),
        valid_accuracy: fraction(value("Accuracy", Split::Valid)),
        ..EpochMetrics::default()
    }
}

/// The next item of an epoch; `None` at its end, or after handing a loading error to the
/// interrupter, which ends training with it.
fn next_item<T>(iterator: &mut dyn DataLoaderIterator<T>, interrupter: &Interrupter) -> Option<T> {
    match iterator.next()? {
        Ok(item) => Some(item),
        Err(err) => {
            interrupter.fail(err);
            None
        }
    }
}

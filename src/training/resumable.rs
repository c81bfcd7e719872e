//! The loop Burn's `SupervisedTraining` runs for LeNet-5: epochs of training and validation, as
//! Burn's single-device strategy runs them, plus what that strategy does not do:
//!
//! - it can start in the middle of a run (a checkpoint's epoch and batch);
//! - it checkpoints at the end of every epoch and wherever a stop request catches it, at a batch
//!   boundary, through Burn's `LearningCheckpointer` and the sealed files of [`Checkpoints`];
//! - it stops before an optimizer step whose loss is NaN or infinite, so the last checkpoint
//!   stays the last good state;
//! - it records how the run ended itself, because Burn's dashboard resets the interrupter when
//!   training ends, which would make a run stopped with `q` look finished.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::data::dataloader::DataLoaderIterator;
use burn::prelude::*;
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};
use burn::train::{
    EventProcessorTraining, InferenceStep, Interrupter, Learner, LearnerEvent,
    LearningCheckpointer, LearningResult, SupervisedLearningStrategy,
    SupervisedTrainingEventProcessor, TrainLoader, TrainingComponents, TrainingItem, ValidLoader,
};

use super::checkpoint::{CheckpointState, Checkpoints};
use crate::data::loader::Position;
use crate::model::LeNet5;
use crate::run::history::EpochMetrics;

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
    /// A checkpoint could not be written.
    Checkpoint(String),
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
}

pub struct ResumableLoop {
    /// The autodiff device training runs on.
    pub device: Device,
    pub start: Position,
    pub batches_per_epoch: usize,
    pub checkpoints: Checkpoints,
    pub config_name: String,
    /// Starts as what the resumed checkpoint knew; filled in as the run goes.
    pub outcome: Arc<Mutex<Outcome>>,
}

impl ResumableLoop {
    /// Optimizer steps taken by the time the run reaches `position`.
    fn steps_at(&self, position: Position) -> usize {
        (position.epoch - 1) * self.batches_per_epoch + position.batches_done
    }

    /// Saves a checkpoint that continues at `position`, unless the newest one already does.
    fn checkpoint(
        &self,
        learner: &Learner<LeNet5>,
        checkpointer: &mut LearningCheckpointer<LeNet5>,
        store: &EventStoreClient,
        position: Position,
    ) -> Result<(), Stop> {
        let mut outcome = self.outcome.lock().unwrap();
        if outcome.checkpoint.as_ref().map(|(_, p)| *p) == Some(position) {
            return Ok(());
        }
        let steps = self.steps_at(position);
        checkpointer.checkpoint(learner, steps, store);
        let state = CheckpointState {
            position,
            steps,
            config_name: self.config_name.clone(),
            history: outcome.history.clone(),
        };
        let path = self
            .checkpoints
            .seal(&state)
            .map_err(|e| Stop::Checkpoint(e.to_string()))?;
        outcome.checkpoint = Some((path, position));
        Ok(())
    }

    fn stop(&self, interrupter: &Interrupter, stop: Stop) {
        let mut outcome = self.outcome.lock().unwrap();
        outcome.stop.get_or_insert(stop);
        interrupter.stop(Some("training stopped"));
    }

    /// Records a stop request that arrived while `interrupter` was set.
    fn note_request(&self, interrupter: &Interrupter) {
        let reason = interrupter
            .interruption()
            .and_then(|i| i.reason)
            .unwrap_or_else(|| "stopped by request".to_string());
        self.outcome
            .lock()
            .unwrap()
            .stop
            .get_or_insert(Stop::Requested(reason));
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
        let (model, mut processor) = self.fit(
            components,
            learner,
            dataloader_train,
            dataloader_valid,
            self.start.epoch,
        );
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
        let train = dataloader_train.to_device(&self.device);
        let valid = dataloader_valid.to_device(&self.device.clone().inner());
        learner.fork(&self.device);
        let TrainingComponents {
            num_epochs,
            checkpointer,
            interrupter,
            mut event_processor,
            event_store,
            ..
        } = components;
        let mut checkpointer = checkpointer.expect("the loop is given checkpointers");
        let processor = &mut event_processor;

        for epoch in starting_epoch..=num_epochs {
            let start = if epoch == self.start.epoch {
                self.start
            } else {
                Position {
                    epoch,
                    batches_done: 0,
                }
            };
            let started = Instant::now();
            let position = self.train_split(&mut learner, &train, processor, &interrupter, start);
            let train_seconds = started.elapsed().as_secs_f64();
            if interrupter.should_stop() {
                self.stopped(
                    &learner,
                    &mut checkpointer,
                    &event_store,
                    &interrupter,
                    position,
                );
                break;
            }

            let started = Instant::now();
            self.valid_split(&learner, &valid, processor, &interrupter, epoch);
            interrupter.fail_on_error(processor.process_train(LearnerEvent::EndEpoch(epoch)));
            // The metric logs of the epoch are on disk before its checkpoint is.
            interrupter.fail_on_error(processor.flush());
            if interrupter.should_stop() {
                // Stopped during validation: the checkpoint repeats only the validation.
                self.stopped(
                    &learner,
                    &mut checkpointer,
                    &event_store,
                    &interrupter,
                    position,
                );
                break;
            }

            {
                let metrics = EpochMetrics {
                    train_seconds: Some(train_seconds),
                    valid_seconds: Some(started.elapsed().as_secs_f64()),
                    learning_rate: Some(learner.lr_current().base()),
                    ..epoch_metrics(&event_store, epoch)
                };
                let mut outcome = self.outcome.lock().unwrap();
                outcome.history.push(metrics);
                outcome.completed_epochs = epoch;
            }
            let next = Position {
                epoch: epoch + 1,
                batches_done: 0,
            };
            if let Err(stop) = self.checkpoint(&learner, &mut checkpointer, &event_store, next) {
                self.stop(&interrupter, stop);
                break;
            }
        }
        // Dropping the checkpointer waits for its writer threads: every checkpoint is on disk
        // before the run reports how it ended.
        drop(checkpointer);
        (learner.model(), event_processor)
    }
}

impl ResumableLoop {
    /// Trains on the rest of an epoch from `position`; returns where it got to.
    fn train_split(
        &self,
        learner: &mut Learner<LeNet5>,
        train: &TrainLoader<LeNet5>,
        processor: &mut SupervisedTrainingEventProcessor<LeNet5>,
        interrupter: &Interrupter,
        mut position: Position,
    ) -> Position {
        if position.batches_done >= self.batches_per_epoch {
            return position;
        }
        let epoch = position.epoch;
        interrupter.fail_on_error(processor.process_train(LearnerEvent::StartSplit {
            epoch_number: epoch,
            total_items: train.num_items(),
        }));
        let mut iterator = train.iter();
        while let Some(item) = next_item(&mut *iterator, interrupter) {
            let progress = iterator.progress();
            let output = learner.train_step(item);
            let loss = output.item.loss.clone().into_scalar::<f64>();
            if !loss.is_finite() {
                let batch = position.batches_done + 1;
                self.stop(interrupter, Stop::NonFinite { epoch, batch, loss });
                break;
            }
            learner.lr_step();
            learner.optimizer_step(output.grads);
            position.batches_done += 1;
            let item = TrainingItem::new(
                output.item,
                progress,
                Some(position.batches_done),
                Some(learner.lr_current()),
            );
            interrupter.fail_on_error(processor.process_train(LearnerEvent::ProcessedItem(item)));
            if interrupter.should_stop() {
                break;
            }
        }
        interrupter.fail_on_error(processor.process_train(LearnerEvent::EndSplit(epoch)));
        position
    }

    fn valid_split(
        &self,
        learner: &Learner<LeNet5>,
        valid: &ValidLoader<LeNet5>,
        processor: &mut SupervisedTrainingEventProcessor<LeNet5>,
        interrupter: &Interrupter,
        epoch: usize,
    ) {
        interrupter.fail_on_error(processor.process_valid(LearnerEvent::StartSplit {
            epoch_number: epoch,
            total_items: valid.num_items(),
        }));
        let model = learner.model().valid();
        let mut iterator = valid.iter();
        let mut iteration = 0;
        while let Some(item) = next_item(&mut *iterator, interrupter) {
            let progress = iterator.progress();
            iteration += 1;
            let output = InferenceStep::step(&model, item);
            let item = TrainingItem::new(output, progress, Some(iteration), None);
            interrupter.fail_on_error(processor.process_valid(LearnerEvent::ProcessedItem(item)));
            if interrupter.should_stop() {
                break;
            }
        }
        interrupter.fail_on_error(processor.process_valid(LearnerEvent::EndSplit(epoch)));
    }

    /// Ends a run that was asked to stop: records why, and checkpoints where it stopped unless
    /// the stop came from a fault (whose state is not worth resuming from).
    fn stopped(
        &self,
        learner: &Learner<LeNet5>,
        checkpointer: &mut LearningCheckpointer<LeNet5>,
        store: &EventStoreClient,
        interrupter: &Interrupter,
        position: Position,
    ) {
        self.note_request(interrupter);
        let faulted = matches!(
            self.outcome.lock().unwrap().stop,
            Some(Stop::NonFinite { .. })
        );
        if !faulted
            && interrupter.error().is_none()
            && let Err(stop) = self.checkpoint(learner, checkpointer, store, position)
        {
            self.stop(interrupter, stop);
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

//! A run's history as TensorBoard event files in `<run>/tensorboard/`, so that
//! `tensorboard --logdir artifacts` shows every run: scalars, the run's hyperparameters for the
//! HParams tab, and pictures.
//!
//! Every value is logged at a *global step*, the number of training batches done (the first
//! batch is step 1), epoch figures at their epoch's last batch. One x-axis for all, and it
//! makes a resume exact: a continued run opens a new file that starts with a session marker
//! at the step it continues from, and TensorBoard drops what earlier files logged from that
//! step on, which the resumed run logs again.
//!
//! Fed by lenet's training loop rather than registered with Burn's event store as a
//! `MetricLogger`: the loop has each batch's loss, each epoch's figures as `metrics.csv` records
//! them, and where a resumed run continues, of which a Burn logger is told only the first.
//!
//! Files are appended to and flushed at each epoch's end; a process killed mid-record leaves a
//! short last record, which TensorBoard's reader stops at without losing the ones before.

mod events;
mod proto;
mod record;

use std::path::Path;

use serde_json::Value as Json;

use super::TrackingError;
use crate::run::history::EpochMetrics;
use crate::run::{TENSORBOARD_DIR, has_tensorboard_events};
use events::EventWriter;

/// How many training batches each point of the `train/batch_loss` chart averages.
pub const BATCH_LOSS_EVERY: usize = 50;

/// What one process of a run logs to TensorBoard: the batch loss as it trains, each epoch's
/// figures as it ends, the test figures and pictures at the end.
pub struct TensorBoardLog {
    events: EventWriter,
    batches_per_epoch: usize,
    /// Sum and count of the batch losses since the last `train/batch_loss` point.
    window: (f64, usize),
}

impl TensorBoardLog {
    /// Starts logging a run in `run_dir`, from `batches_done` batches into `epoch` (epoch 1 and
    /// none done for a new run): `params` are the run's config keys (dotted) and their values,
    /// `group` the name the HParams tab lists it under.
    pub fn start(
        run_dir: &Path,
        params: &[(String, Json)],
        group: &str,
        batches_per_epoch: usize,
        (epoch, batches_done): (usize, usize),
    ) -> Result<Self, TrackingError> {
        let continues = epoch > 1 || batches_done > 0;
        // A continued run starts with a session marker at its next batch's step: TensorBoard
        // drops what the stopped process logged past its checkpoint, which this one logs again.
        let next = global_step(batches_per_epoch, epoch, batches_done) + 1;
        let first = !has_tensorboard_events(run_dir);
        let dir = run_dir.join(TENSORBOARD_DIR);
        let mut log = Self {
            events: EventWriter::create(&dir, continues.then_some(next))?,
            batches_per_epoch,
            window: (0.0, 0),
        };
        // TensorBoard keeps the first HParams records of a run's files and ignores later
        // ones, so only the process that starts the run's log writes them.
        if first {
            log.events.hparams(params, group)?;
        }
        log.events.flush()?;
        Ok(log)
    }

    fn step(&self, epoch: usize, batches_done: usize) -> i64 {
        global_step(self.batches_per_epoch, epoch, batches_done)
    }

    /// A training batch's loss; every [`BATCH_LOSS_EVERY`] batches their mean is a point.
    pub fn batch(
        &mut self,
        epoch: usize,
        batches_done: usize,
        loss: f64,
    ) -> Result<(), TrackingError> {
        self.window = (self.window.0 + loss, self.window.1 + 1);
        let step = self.step(epoch, batches_done);
        if (step as usize).is_multiple_of(BATCH_LOSS_EVERY) {
            let (sum, count) = std::mem::take(&mut self.window);
            self.events
                .scalar("train/batch_loss", step, sum / count as f64)?;
        }
        Ok(())
    }

    /// An epoch's figures, as `metrics.csv` holds them, at the epoch's last batch.
    pub fn epoch(&mut self, metrics: &EpochMetrics) -> Result<(), TrackingError> {
        let step = self.step(metrics.epoch + 1, 0);
        let figures = [
            ("train/loss", metrics.train_loss),
            ("train/accuracy", metrics.train_accuracy),
            ("valid/loss", metrics.valid_loss),
            ("valid/accuracy", metrics.valid_accuracy),
            ("learning_rate", metrics.learning_rate),
        ];
        for (tag, value) in figures {
            if let Some(value) = value {
                self.events.scalar(tag, step, value)?;
            }
        }
        self.events.flush()
    }

    /// The final model's test figures and pictures (tag, PNG bytes), after `epochs` epochs.
    pub fn tested(
        &mut self,
        epochs: usize,
        accuracy: f64,
        loss: f64,
        pictures: &[(&str, Vec<u8>)],
    ) -> Result<(), TrackingError> {
        let step = self.step(epochs + 1, 0);
        self.events.scalar("test/accuracy", step, accuracy)?;
        self.events.scalar("test/loss", step, loss)?;
        for (tag, png) in pictures {
            self.events.image(tag, step, png)?;
        }
        self.events.flush()
    }

    /// That the run finished, for the HParams tab. TensorBoard reads a run's first such
    /// record, so an extended run keeps the first. A run that stops or fails says nothing: it
    /// can still be resumed and finish.
    pub fn finished(&mut self) -> Result<(), TrackingError> {
        self.events.finished()
    }
}

/// The global step of a position in a run: training batches done since it began.
fn global_step(batches_per_epoch: usize, epoch: usize, batches_done: usize) -> i64 {
    ((epoch.max(1) - 1) * batches_per_epoch + batches_done) as i64
}

//! The data loader training reads from: each epoch's order is a function of the seed and the
//! epoch number alone, batches come in that order whatever the number of workers, and a loader
//! can start in the middle of an epoch. That is what lets a resumed run see exactly the batches
//! an uninterrupted one would have. (Burn's own loader draws each epoch's order from one random
//! generator that lives in the process, so a resumed run would see different data.)

use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::{Dataset, DatasetError};
use burn::prelude::*;

use serde::{Deserialize, Serialize};

use super::augment::Augmentation;
use super::batcher::{ImageBatch, ImageBatcher};
use super::rng::Rng;
use super::split::ImageSplit;

/// A point in a run's sequence of epochs: the epoch under way and how many of its training
/// batches are done. `batches_done` equal to the epoch's batch count means training is done and
/// validation is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub epoch: usize,
    pub batches_done: usize,
}

impl Position {
    pub const START: Position = Position {
        epoch: 1,
        batches_done: 0,
    };
}

/// Where a loader's next epoch starts. Each `iter` serves the epoch and batch it points at,
/// then moves it to the start of the following epoch; the training loop sets it before each
/// epoch, so that a run resumed at any point gets exactly the batches it would have had.
/// Shared by the loader's copies on other devices.
#[derive(Debug, Clone)]
pub struct EpochCursor(Arc<Mutex<Position>>);

impl EpochCursor {
    fn new(position: Position) -> Self {
        Self(Arc::new(Mutex::new(position)))
    }

    pub fn set(&self, position: Position) {
        *self.0.lock().unwrap() = position;
    }

    /// The position to serve now; the cursor moves on to the start of the next epoch.
    fn take(&self) -> Position {
        let mut next = self.0.lock().unwrap();
        let position = *next;
        *next = Position {
            epoch: position.epoch + 1,
            batches_done: 0,
        };
        position
    }

    fn get(&self) -> Position {
        *self.0.lock().unwrap()
    }
}

/// Batches of a dataset, one epoch per call to `iter`.
pub struct EpochLoader {
    dataset: ImageSplit,
    batch_size: usize,
    /// Shuffle each epoch with this seed; `None` keeps the dataset's order (validation).
    seed: Option<u64>,
    workers: usize,
    device: Device,
    /// Distortions of the training images, if any.
    augmentation: Option<Augmentation>,
    /// The epoch the next `iter` serves and how many of its batches to skip.
    next: EpochCursor,
}

impl EpochLoader {
    /// `workers` threads build batches ahead of training; 0 builds them when they are asked for.
    pub fn new(
        dataset: ImageSplit,
        batch_size: usize,
        seed: Option<u64>,
        workers: usize,
        device: Device,
    ) -> Self {
        Self {
            dataset,
            batch_size,
            seed,
            workers,
            device,
            augmentation: None,
            next: EpochCursor::new(Position::START),
        }
    }

    /// Distorts every image as it is batched, differently each epoch (needs a seed).
    pub fn with_augmentation(mut self, augmentation: Option<Augmentation>) -> Self {
        self.augmentation = augmentation;
        self
    }

    /// Makes the first `iter` serve `position`: that epoch's order, its first batches skipped.
    pub fn starting_at(self, position: Position) -> Self {
        self.next.set(position);
        self
    }

    /// The cursor that says which epoch and batch the next `iter` serves.
    pub fn cursor(&self) -> EpochCursor {
        self.next.clone()
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.dataset.len().div_ceil(self.batch_size)
    }
}

/// The order of an epoch's digits: a function of the seed and the epoch only.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..len as u32).collect();
    Rng::new(seed ^ (epoch as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)).shuffle(&mut order);
    order
}

impl DataLoader<ImageBatch> for EpochLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch> + 'a> {
        let position = self.next.take();
        let order = match self.seed {
            Some(seed) => epoch_order(self.dataset.len(), seed, position.epoch),
            None => (0..self.dataset.len() as u32).collect(),
        };
        let batches: Vec<Vec<u32>> = order
            .chunks(self.batch_size)
            .skip(position.batches_done)
            .map(<[u32]>::to_vec)
            .collect();
        let skipped = (position.batches_done * self.batch_size).min(self.dataset.len());
        let distortion = self
            .augmentation
            .zip(self.seed)
            .map(|(augmentation, seed)| Distortion {
                augmentation,
                seed,
                epoch: position.epoch,
            });
        Box::new(EpochIter::new(
            self.dataset.clone(),
            batches,
            self.workers,
            self.device.clone(),
            skipped,
            distortion,
        ))
    }

    fn num_items(&self) -> usize {
        self.dataset.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(Self {
            dataset: self.dataset.clone(),
            batch_size: self.batch_size,
            seed: self.seed,
            workers: self.workers,
            device: device.clone(),
            augmentation: self.augmentation,
            next: self.next.clone(),
        })
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(Self {
            dataset: self.dataset.clone().range(start..end),
            batch_size: self.batch_size,
            seed: self.seed,
            workers: self.workers,
            device: self.device.clone(),
            augmentation: self.augmentation,
            next: EpochCursor::new(self.next.get()),
        })
    }
}

/// The distortion of one epoch: each image's is drawn from the seed, the epoch and the image.
#[derive(Clone, Copy)]
struct Distortion {
    augmentation: Augmentation,
    seed: u64,
    epoch: usize,
}

fn make_batch(
    dataset: &ImageSplit,
    indices: &[u32],
    device: &Device,
    distortion: Option<Distortion>,
) -> ImageBatch {
    let items = indices
        .iter()
        .map(|&i| {
            let mut item = dataset.get(i as usize).expect("index within the dataset");
            if let Some(d) = &distortion {
                item.pixels = d
                    .augmentation
                    .apply(&item.pixels, d.seed, d.epoch, i as usize);
            }
            item
        })
        .collect();
    ImageBatcher.batch(items, device)
}

/// One epoch's batches, in order. With workers, worker `w` builds batches `w`, `w + workers`,
/// ... and the iterator takes from the workers in turn, so the order never depends on which
/// worker is faster.
struct EpochIter {
    dataset: ImageSplit,
    batches: Vec<Vec<u32>>,
    device: Device,
    workers: Vec<(Receiver<ImageBatch>, JoinHandle<()>)>,
    distortion: Option<Distortion>,
    next_batch: usize,
    items_processed: usize,
}

impl EpochIter {
    fn new(
        dataset: ImageSplit,
        batches: Vec<Vec<u32>>,
        workers: usize,
        device: Device,
        skipped: usize,
        distortion: Option<Distortion>,
    ) -> Self {
        let workers = (0..workers.min(batches.len()))
            .map(|w| {
                let (sender, receiver) = sync_channel(1);
                let dataset = dataset.clone();
                let device = device.clone();
                let mine: Vec<Vec<u32>> =
                    batches.iter().skip(w).step_by(workers).cloned().collect();
                let handle = std::thread::spawn(move || {
                    for indices in mine {
                        let batch = make_batch(&dataset, &indices, &device, distortion);
                        // The iterator was dropped: the epoch ended early.
                        if sender.send(batch).is_err() {
                            return;
                        }
                    }
                });
                (receiver, handle)
            })
            .collect();
        Self {
            dataset,
            batches,
            device,
            workers,
            distortion,
            next_batch: 0,
            items_processed: skipped,
        }
    }
}

impl Iterator for EpochIter {
    type Item = Result<ImageBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let indices = self.batches.get(self.next_batch)?;
        let batch = if self.workers.is_empty() {
            make_batch(&self.dataset, indices, &self.device, self.distortion)
        } else {
            let (receiver, _) = &self.workers[self.next_batch % self.workers.len()];
            match receiver.recv() {
                Ok(batch) => batch,
                Err(_) => {
                    return Some(Err(DatasetError::new(std::io::Error::other(
                        "a data loader worker stopped",
                    ))));
                }
            }
        };
        self.items_processed += indices.len();
        self.next_batch += 1;
        Some(Ok(batch))
    }
}

impl DataLoaderIterator<ImageBatch> for EpochIter {
    fn progress(&self) -> Progress {
        Progress::new(self.items_processed, self.dataset.len(), None)
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        // Dropping the receivers makes the workers' next send fail, so they end.
        for (receiver, handle) in self.workers.drain(..) {
            drop(receiver);
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of_epoch(loader: &EpochLoader) -> Vec<i64> {
        loader
            .iter()
            .flat_map(|batch| {
                batch
                    .unwrap()
                    .targets
                    .into_data()
                    .iter::<i64>()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn loader(workers: usize, seed: Option<u64>) -> EpochLoader {
        EpochLoader::new(ImageSplit::synthetic(50), 8, seed, workers, Device::flex())
    }

    #[test]
    fn order_depends_on_seed_and_epoch_only() {
        assert_eq!(epoch_order(100, 7, 3), epoch_order(100, 7, 3));
        assert_ne!(epoch_order(100, 7, 3), epoch_order(100, 7, 4));
        assert_ne!(epoch_order(100, 7, 3), epoch_order(100, 8, 3));
        let mut sorted = epoch_order(100, 7, 3);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<u32>>());
    }

    #[test]
    fn workers_do_not_change_the_batches_or_their_order() {
        let plain = loader(0, Some(1));
        let threaded = loader(3, Some(1));
        for _ in 0..2 {
            assert_eq!(labels_of_epoch(&plain), labels_of_epoch(&threaded));
        }
    }

    #[test]
    fn a_loader_started_mid_epoch_serves_the_rest_of_that_epoch() {
        let whole = loader(1, Some(5));
        let epoch_1 = labels_of_epoch(&whole);
        let epoch_2 = labels_of_epoch(&whole);
        assert_ne!(epoch_1, epoch_2, "epochs are shuffled differently");

        let resumed = loader(1, Some(5)).starting_at(Position {
            epoch: 2,
            batches_done: 3,
        });
        let mut iter = resumed.iter();
        assert_eq!(iter.progress().items_processed, 24);
        let rest: Vec<i64> = iter
            .by_ref()
            .flat_map(|b| {
                b.unwrap()
                    .targets
                    .into_data()
                    .iter::<i64>()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(rest, epoch_2[24..]);
        assert_eq!(iter.progress().items_processed, 50);
        drop(iter);
        assert_eq!(
            labels_of_epoch(&resumed).len(),
            50,
            "the next epoch is whole"
        );
    }

    fn images_of_epoch(loader: &EpochLoader) -> Vec<f32> {
        loader
            .iter()
            .flat_map(|b| {
                b.unwrap()
                    .images
                    .into_data()
                    .iter::<f32>()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn augmentation_changes_images_not_labels_and_is_reproducible() {
        let distorted =
            |workers| loader(workers, Some(9)).with_augmentation(Some(Augmentation::default()));
        assert_eq!(
            labels_of_epoch(&loader(0, Some(9))),
            labels_of_epoch(&distorted(2))
        );
        let plain = images_of_epoch(&loader(0, Some(9)));
        let a = images_of_epoch(&distorted(2));
        assert!(plain != a, "images are distorted");
        assert!(
            a == images_of_epoch(&distorted(0)),
            "same seed, same distortions, whatever the workers"
        );
        let (lowest, highest) = (crate::input::normalise(0), crate::input::normalise(255));
        assert!(a.iter().all(|v| (lowest..=highest).contains(v)));
    }

    #[test]
    fn validation_keeps_the_dataset_order() {
        let unshuffled = loader(2, None);
        let labels = labels_of_epoch(&unshuffled);
        assert_eq!(labels, labels_of_epoch(&unshuffled));
        let expected: Vec<i64> = ImageSplit::synthetic(50).labels().map(i64::from).collect();
        assert_eq!(labels, expected);
    }
}

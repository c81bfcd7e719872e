//! Data: where the digits come from and how they reach the model. It knows nothing of the
//! model, of training or of the command line.
//!
//! - [`idx`] reads the IDX files a data set ships in; [`source`] finds their folder (a folder
//!   the user names, `MNIST_DIR`, the cache, a checked download, Debian's Fashion-MNIST);
//! - [`mnist`] holds a data set in memory with its validation split, as a Burn `Dataset`, and
//!   [`batcher`] turns its items into the model's input tensors;
//! - [`loader`] serves training's epochs in a seeded order that can start mid-epoch, with the
//!   seeded distortions of [`augment`]; [`rng`] is the one random generator behind them;
//! - [`image`] brings people's own images (photos, drawings) to the same 28x28 form.

pub mod augment;
pub mod batcher;
pub mod idx;
pub mod image;
pub mod loader;
pub mod mnist;
pub mod rng;
pub mod source;

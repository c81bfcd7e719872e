//! Data: where the images come from and how they reach the model. It knows nothing of the
//! model, of training or of the command line.
//!
//! - [`idx`] reads the IDX files MNIST and data sets like it ship in; [`source`] finds their
//!   folder (a folder the user names, `MNIST_DIR`, the cache, a checked download, Debian's
//!   Fashion-MNIST); [`folder`] reads people's own images, one folder per class;
//! - [`set`] reads any of them into memory with its class names; [`dataset`] holds the images
//!   with their splits, as a Burn `Dataset`, and [`batcher`] turns its items into the model's
//!   input tensors;
//! - [`loader`] serves training's epochs in a seeded order that can start mid-epoch, with the
//!   seeded distortions of [`augment`]; [`rng`] is the one random generator behind them;
//! - [`image`] brings image files (photos, drawings, pictures of objects) to the 28x28 form.

pub mod augment;
pub mod batcher;
pub mod dataset;
pub mod folder;
pub mod idx;
pub mod image;
pub mod loader;
pub mod rng;
pub mod set;
pub mod source;

/// A class label: the index of a class in the data set's class names.
pub type Class = u16;

/// The most classes a data set may have: the output layer is 84 x classes, and eval's
/// confusion matrix classes x classes.
pub const MAX_CLASSES: usize = 1000;

//! LeNet-5, the classic digit classifier, on the Burn deep-learning framework.
//!
//! The binary (`src/main.rs`) is a thin command line over this library. Its folders are its
//! roles, and each depends only on those listed before it (`docs/design.md` draws the layers
//! and says why); each returns errors of its own, which the layer above wraps, and the command
//! line turns into exit codes:
//!
//! - [`device`]: which compiled backend a run uses; [`input`]: the 28x28 form the model takes;
//! - [`kernels`]: LeNet's convolutions, pools and the 1998 ops on the CPU backends (flex, ndarray);
//! - [`data`]: IDX files and image folders, where they come from, splits in memory, batches,
//!   the epoch loader;
//! - [`model`]: LeNet-5 as a Burn `Module` and its `Config`, and the 1998 network's parts;
//! - [`config`]: the JSON config, section by section;
//! - [`run`]: the folder a run writes, and a finished run loaded back;
//! - [`report`]: tables, text and figures for people; [`tracking`]: the trackers a run is
//!   also logged to (TensorBoard, MLflow);
//! - [`inference`]: running a model, `eval`, `predict`, `explain`, `export`, `import`;
//! - [`training`]: training through Burn's `Learner`, resumable, in phases;
//! - [`sweep`]: many runs from one file, here or as a SLURM job array, ranked;
//! - [`serve`]: the runs and sweeps in the browser, over [`run`], [`sweep`] and [`inference`];
//! - [`bench`]: how fast each backend trains, evaluates and predicts.

pub mod bench;
pub mod config;
pub mod data;
pub mod device;
pub mod inference;
pub mod input;
pub mod kernels;
pub mod model;
pub mod report;
pub mod run;
pub mod serve;
pub mod sweep;
pub mod tracking;
pub mod training;

//! Sweeps: many runs from one file. A sweep file in W&B's form ([`spec`]) makes a list of
//! trials ([`plan`]), recorded in `sweep.json` ([`record`]), each an ordinary run folder inside
//! the sweep's folder ([`folder`]), so
//! that eval, predict, export, serve and resume work on a trial unchanged. A trial is trained
//! by `lenet sweep --trial N` ([`trial`]); the sweep runs them here, several at a time
//! ([`local`]), or as a SLURM job array ([`slurm`]). Poor trials can be ended early by
//! hyperband ([`hyperband`]). [`report`] ranks the trials by the sweep's metric.
//!
//! It sits above training, which it drives, and knows nothing of the command line: the
//! command that trains one trial is given to it.

pub mod error;
pub mod folder;
pub mod hyperband;
pub mod local;
pub mod plan;
pub mod record;
pub mod report;
pub mod slurm;
pub mod spec;
pub mod trial;

pub use error::SweepError;
pub use folder::{TrialState, TrialStatus};
pub use plan::SweepPlan;
pub use record::{SweepRecord, Trial};
pub use report::{SweepReport, TrialRow};
pub use spec::{Goal, Metric, MetricName, SweepSpec};

//! What people read and look at: the per-layer table, a run's summary and the table of runs
//! ([`text`]), the evaluation report ([`eval_report`]: overall and per-class accuracy, the
//! confusion matrix) and the figures ([`plots`]). It turns values into text and pictures and
//! computes nothing else.

pub mod eval_report;
pub mod explain;
pub mod plots;
pub mod text;

pub use eval_report::{ClassReport, EvalReport, Mistake};
pub use text::{epoch_line, layer_table, percent, runs_table, thousands};

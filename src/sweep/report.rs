//! `lenet sweep report`: a sweep's trials ranked by its metric, with the values that vary, the
//! test figures and each trial's state, read from the sweep's folder; as a table for people and
//! as JSON (the same that `lenet serve` shows as a page).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::error::SweepError;
use super::folder::{TrialState, TrialStatus};
use super::plan::brief;
use super::record::SweepRecord;
use super::spec::{Goal, Metric, MetricName};
use crate::report::percent;
use crate::run::SWEEP_FILE;
use crate::run::history::EpochMetrics;

/// A sweep's trials, best first.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub sweep: String,
    /// The sweep's folder.
    pub dir: PathBuf,
    pub metric: MetricName,
    pub goal: Goal,
    pub method: super::spec::Method,
    /// The dotted config keys that vary between trials.
    pub varied: Vec<String>,
    /// Those drawn on a logarithmic scale.
    pub log_scale: Vec<String>,
    pub trials: Vec<TrialRow>,
}

/// One trial of the report.
#[derive(Debug, Clone, Serialize)]
pub struct TrialRow {
    /// The trial's run folder, which `lenet eval --run` and the others take.
    pub run: PathBuf,
    pub name: String,
    pub number: usize,
    /// The values of the keys that vary, by dotted key.
    pub parameters: BTreeMap<String, Value>,
    /// The sweep's metric: the finished run's, as its summary has it, or the latest epoch's.
    pub metric: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub test_loss: Option<f64>,
    pub state: TrialState,
    pub epochs_done: usize,
    pub epochs_planned: Option<usize>,
    /// Why the trial stopped or failed, as its folder says.
    pub message: Option<String>,
    /// What ended the trial early (hyperband, and why).
    pub stopped_by: Option<String>,
    /// Its epochs, for the sweep page's curves (left out of the JSON of `lenet sweep report`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<EpochMetrics>>,
}

impl SweepReport {
    /// The report of the sweep in `dir`; with `histories`, each trial's epochs too.
    pub fn read(dir: &Path, histories: bool) -> Result<Self, SweepError> {
        if !dir.is_dir() {
            return Err(SweepError::Run(crate::run::RunError::NoSuchFolder {
                dir: dir.to_path_buf(),
            }));
        }
        if let Some(sweep) = dir.parent().filter(|p| p.join(SWEEP_FILE).is_file()) {
            return Err(SweepError::TrialNotSweep {
                dir: dir.to_path_buf(),
                sweep: sweep.to_path_buf(),
            });
        }
        let record = SweepRecord::read(dir)?;
        let metric = record.metric;
        let mut trials: Vec<TrialRow> = record
            .trials
            .iter()
            .map(|trial| {
                let status = TrialStatus::read(&dir.join(&trial.name));
                let value = match &status.summary {
                    Some(summary) => metric.name.of_summary(summary),
                    None => status.history.last().and_then(|e| metric.name.of_epoch(e)),
                };
                TrialRow {
                    run: status.dir.clone(),
                    name: trial.name.clone(),
                    number: trial.number,
                    parameters: record
                        .varied
                        .iter()
                        .filter_map(|k| Some((k.clone(), trial.parameters.get(k)?.clone())))
                        .collect(),
                    metric: value,
                    test_accuracy: status.summary.as_ref().map(|s| s.test_accuracy),
                    test_loss: status.summary.as_ref().map(|s| s.test_loss),
                    state: status.state,
                    epochs_done: status.history.len(),
                    epochs_planned: status.epochs_planned.or_else(|| record.epochs(trial)),
                    stopped_by: status.summary.as_ref().and_then(|s| s.stopped_by.clone()),
                    message: status.message,
                    history: histories.then_some(status.history),
                }
            })
            .collect();
        trials.sort_by(|a, b| rank(metric, a, b));
        Ok(Self {
            // The folder's name, which the page's links and the API use, even if renamed.
            sweep: crate::run::name(dir),
            dir: dir.to_path_buf(),
            metric: metric.name,
            goal: metric.goal,
            method: record.method,
            varied: record.varied,
            log_scale: record.log_scale,
            trials,
        })
    }

    /// The best trial that ran to its end: the first finished one, as trials are ranked.
    pub fn best(&self) -> Option<&TrialRow> {
        self.trials
            .iter()
            .find(|t| t.state == TrialState::Finished && t.metric.is_some())
    }

    /// How many trials are in each state, in words: "3 finished, 1 terminated".
    pub fn counts(&self) -> String {
        let states = [
            TrialState::Finished,
            TrialState::Terminated,
            TrialState::Training,
            TrialState::Stopped,
            TrialState::Failed,
            TrialState::Pending,
        ];
        states
            .iter()
            .filter_map(|state| {
                let n = self.trials.iter().filter(|t| t.state == *state).count();
                (n > 0).then(|| format!("{n} {}", state.as_str()))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn metric(&self) -> Metric {
        Metric {
            name: self.metric,
            goal: self.goal,
        }
    }
}

/// Trials with a figure first, best first, then by number; the finished before the others
/// when their figures tie.
fn rank(metric: Metric, a: &TrialRow, b: &TrialRow) -> std::cmp::Ordering {
    match (a.metric, b.metric) {
        (Some(x), Some(y)) => metric.best_first(x, y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
    .then(a.number.cmp(&b.number))
}

/// A metric's value as the table shows it: accuracies in percent, losses to four places.
pub fn figure(metric: MetricName, value: Option<f64>) -> String {
    match value {
        None => "-".to_string(),
        Some(v) if metric.is_accuracy() => percent(Some(v)),
        Some(v) => format!("{v:.4}"),
    }
}

/// A value as the table shows it (the JSON has every digit).
fn cell(value: Option<&Value>) -> String {
    value.map_or("-".to_string(), brief)
}

/// The ranking as a table, the best trial named under it.
impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let metric = self.metric();
        writeln!(
            f,
            "Sweep {} ({}): {} trials ({}), ranked by {} ({})",
            self.sweep,
            self.dir.display(),
            self.trials.len(),
            self.counts(),
            metric.name.as_str(),
            metric.goal.as_str()
        )?;
        let mut header: Vec<String> = vec!["rank".into(), "trial".into()];
        header.extend(self.varied.iter().cloned());
        header.extend([
            metric.name.as_str().to_string(),
            "test acc".into(),
            "epochs".into(),
            "state".into(),
        ]);
        let rows: Vec<Vec<String>> = self
            .trials
            .iter()
            .enumerate()
            .map(|(i, trial)| {
                let mut row = vec![
                    if trial.metric.is_some() {
                        (i + 1).to_string()
                    } else {
                        "-".to_string()
                    },
                    trial.number.to_string(),
                ];
                row.extend(self.varied.iter().map(|k| cell(trial.parameters.get(k))));
                row.extend([
                    figure(metric.name, trial.metric),
                    percent(trial.test_accuracy),
                    format!(
                        "{}/{}",
                        trial.epochs_done,
                        trial
                            .epochs_planned
                            .map_or("?".to_string(), |n| n.to_string())
                    ),
                    trial.state.as_str().to_string(),
                ]);
                row
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // The trial's number and state read left to right; figures line up on the right.
        let text_column = |c: usize| c == header.len() - 1;
        for row in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, text)| {
                    if text_column(c) {
                        format!("{text:<w$}", w = widths[c])
                    } else {
                        format!("{text:>w$}", w = widths[c])
                    }
                })
                .collect();
            writeln!(f, "{}", line.join("  ").trim_end())?;
        }
        for trial in &self.trials {
            let why = match trial.state {
                TrialState::Failed => trial.message.as_deref(),
                TrialState::Terminated => trial.stopped_by.as_deref(),
                _ => None,
            };
            if let Some(why) = why {
                writeln!(f, "trial {}: {why}", trial.number)?;
            }
        }
        match self.best() {
            Some(best) => writeln!(
                f,
                "Best: trial {}, {} {}, test accuracy {}: {}",
                best.number,
                metric.name.as_str(),
                figure(metric.name, best.metric),
                percent(best.test_accuracy),
                best.run.display()
            ),
            None => writeln!(f, "Best: none yet (no trial has finished)"),
        }
    }
}

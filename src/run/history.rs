//! A run's history: loss, accuracy, learning rate and time per epoch, as training records them,
//! and `metrics.csv`, the same for spreadsheets and pandas.

use serde::{Deserialize, Serialize};

use crate::config::{EarlyStopping, StopMetric};

/// One epoch's metrics. Accuracies are fractions (0..1); Burn logs percentages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: Option<f64>,
    pub train_accuracy: Option<f64>,
    pub valid_loss: Option<f64>,
    pub valid_accuracy: Option<f64>,
    /// The learning rate at the end of the epoch.
    pub learning_rate: Option<f64>,
    pub train_seconds: Option<f64>,
    pub valid_seconds: Option<f64>,
}

impl EpochMetrics {
    /// The epoch's value of `metric`, if it was validated.
    pub fn value(&self, metric: StopMetric) -> Option<f64> {
        match metric {
            StopMetric::ValidLoss => self.valid_loss,
            StopMetric::ValidAccuracy => self.valid_accuracy,
        }
    }
}

/// The best epoch of `history` by `metric`: the first one that beats every epoch before it
/// by more than `min_delta`, and that no later epoch beats by more than `min_delta`. This is
/// a function of the history alone, which checkpoints keep, so a resumed run picks the same
/// epoch as an uninterrupted one. (Burn's `MetricEarlyStoppingStrategy` keeps its best value in
/// the process and reads Burn's event store, which a resumed run has only from the resume on.)
pub fn best_epoch(history: &[EpochMetrics], metric: StopMetric, min_delta: f64) -> Option<usize> {
    let better = |value: f64, best: f64| match metric {
        StopMetric::ValidLoss => value < best - min_delta,
        StopMetric::ValidAccuracy => value > best + min_delta,
    };
    let mut best: Option<(usize, f64)> = None;
    for epoch in history {
        if let Some(value) = epoch.value(metric).filter(|v| v.is_finite())
            && best.is_none_or(|(_, b)| better(value, b))
        {
            best = Some((epoch.epoch, value));
        }
    }
    best.map(|(epoch, _)| epoch)
}

/// The metric that picks a run's best epoch, and by how much an epoch must beat the best so
/// far: early stopping's, or else the validation loss.
pub fn best_rule(early_stopping: Option<EarlyStopping>) -> (StopMetric, f64) {
    early_stopping.map_or((StopMetric::ValidLoss, 0.0), |e| (e.metric, e.min_delta))
}

/// The epoch at which `rule` ends a run with this `history`: its last epoch, once `patience`
/// epochs have passed since the best; `None` while the run goes on (or was never validated).
pub fn stopped_early(history: &[EpochMetrics], rule: &EarlyStopping) -> Option<usize> {
    let last = history.last()?.epoch;
    let best = best_epoch(history, rule.metric, rule.min_delta)?;
    (last - best >= rule.patience).then_some(last)
}

/// `metrics.csv`: one row per epoch and split, for spreadsheets and pandas.
pub fn to_csv(history: &[EpochMetrics]) -> String {
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let mut out = String::from("epoch,split,loss,accuracy,learning_rate,seconds\n");
    for e in history {
        out += &format!(
            "{},train,{},{},{},{}\n",
            e.epoch,
            cell(e.train_loss),
            cell(e.train_accuracy),
            cell(e.learning_rate),
            cell(e.train_seconds)
        );
        if e.valid_loss.is_some() {
            out += &format!(
                "{},valid,{},{},,{}\n",
                e.epoch,
                cell(e.valid_loss),
                cell(e.valid_accuracy),
                cell(e.valid_seconds)
            );
        }
    }
    out
}

/// The epochs `metrics.csv` holds, as [`to_csv`] wrote them; rows it cannot read are skipped,
/// since a watcher of a run should see what there is rather than nothing.
pub fn from_csv(csv: &str) -> Vec<EpochMetrics> {
    let mut history: Vec<EpochMetrics> = Vec::new();
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let [epoch, split, loss, accuracy, learning_rate, seconds] = cells[..] else {
            continue;
        };
        let Ok(epoch) = epoch.parse::<usize>() else {
            continue;
        };
        let value = |cell: &str| cell.parse::<f64>().ok();
        if history.last().is_none_or(|e| e.epoch != epoch) {
            history.push(EpochMetrics {
                epoch,
                ..EpochMetrics::default()
            });
        }
        let row = history.last_mut().expect("pushed above");
        match split {
            "train" => {
                row.train_loss = value(loss);
                row.train_accuracy = value(accuracy);
                row.learning_rate = value(learning_rate);
                row.train_seconds = value(seconds);
            }
            "valid" => {
                row.valid_loss = value(loss);
                row.valid_accuracy = value(accuracy);
                row.valid_seconds = value(seconds);
            }
            _ => {}
        }
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_row_per_epoch_and_split() {
        let history = [
            EpochMetrics {
                epoch: 1,
                train_loss: Some(0.7),
                train_accuracy: Some(0.9),
                valid_loss: Some(0.4),
                valid_accuracy: None,
                learning_rate: Some(0.0009),
                train_seconds: Some(5.0),
                valid_seconds: Some(0.5),
            },
            EpochMetrics {
                epoch: 2,
                train_loss: Some(0.3),
                ..EpochMetrics::default()
            },
        ];
        let csv = to_csv(&history);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "epoch,split,loss,accuracy,learning_rate,seconds");
        assert_eq!(lines[1], "1,train,0.7,0.9,0.0009,5");
        assert_eq!(lines[2], "1,valid,0.4,,,0.5");
        assert_eq!(lines[3], "2,train,0.3,,,");
        assert_eq!(lines.len(), 4);
        assert_eq!(from_csv(&csv), history);
    }
}

#[cfg(test)]
mod best_tests {
    use super::*;

    fn losses(values: &[f64]) -> Vec<EpochMetrics> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| EpochMetrics {
                epoch: i + 1,
                valid_loss: Some(v),
                valid_accuracy: Some(1.0 - v),
                ..EpochMetrics::default()
            })
            .collect()
    }

    #[test]
    fn the_best_epoch_must_improve_by_more_than_min_delta() {
        let history = losses(&[0.5, 0.3, 0.29, 0.35, 0.28]);
        assert_eq!(best_epoch(&history, StopMetric::ValidLoss, 0.0), Some(5));
        assert_eq!(best_epoch(&history, StopMetric::ValidLoss, 0.025), Some(2));
        assert_eq!(
            best_epoch(&history, StopMetric::ValidAccuracy, 0.0),
            Some(5)
        );
        assert_eq!(
            best_epoch(&history[..4], StopMetric::ValidAccuracy, 0.0),
            Some(3)
        );
        assert_eq!(best_epoch(&[], StopMetric::ValidLoss, 0.0), None);
    }
}

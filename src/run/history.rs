//! A run's history: loss, accuracy, learning rate and time per epoch, as training records them,
//! and `metrics.csv`, the same for spreadsheets and pandas.

use serde::{Deserialize, Serialize};

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

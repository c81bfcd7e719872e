//! Per-epoch metrics read back from the logs Burn's `FileMetricLogger` writes in the run
//! directory (`<split>/epoch-<n>/<Metric_Name>.log`, one entry per line, the epoch's value last,
//! marked `,final`), joined with the time each split took, and written out as `metrics.csv`.
//! Reading the files works the same whether the dashboard or the plain renderer showed the run.

use std::fs;
use std::path::Path;

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

/// How long the training and validation splits of an epoch took, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitSeconds {
    pub train: f64,
    pub valid: f64,
}

/// Metrics of epochs 1, 2, ... for as long as the logs have them; `seconds[i]` is epoch i+1's.
pub fn read(run_dir: &Path, seconds: &[SplitSeconds]) -> Vec<EpochMetrics> {
    (1..)
        .map_while(|epoch| {
            let read = |split: &str, metric: &str| {
                epoch_value(
                    &run_dir
                        .join(split)
                        .join(format!("epoch-{epoch}"))
                        .join(metric),
                )
            };
            let percent = |v: Option<f64>| v.map(|v| v / 100.0);
            let timing = seconds.get(epoch - 1);
            let metrics = EpochMetrics {
                epoch,
                train_loss: read("train", "Loss.log"),
                train_accuracy: percent(read("train", "Accuracy.log")),
                valid_loss: read("valid", "Loss.log"),
                valid_accuracy: percent(read("valid", "Accuracy.log")),
                learning_rate: read("train", "Learning_Rate.log"),
                train_seconds: timing.map(|t| t.train),
                valid_seconds: timing.map(|t| t.valid),
            };
            metrics.train_loss.is_some().then_some(metrics)
        })
        .collect()
}

/// The epoch's value from one metric log: its `final` entry, or failing that the last entry.
fn epoch_value(path: &Path) -> Option<f64> {
    let text = fs::read_to_string(path).ok()?;
    let entries: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let final_entry = entries.iter().rev().find(|l| l.ends_with(",final"));
    let entry = final_entry.or(entries.last())?;
    entry.split(',').next()?.parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_final_entry_of_each_epoch_and_writes_csv() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("train/epoch-1/Loss.log", "0.9,64\n0.5,64\n0.7,final\n");
        write("train/epoch-1/Accuracy.log", "80,64\n90,final\n");
        write("valid/epoch-1/Loss.log", "0.4,final\n");
        write("train/epoch-1/Learning_Rate.log", "0.001\n0.0009\n");
        write("train/epoch-2/Loss.log", "0.3,final\n");
        let seconds = [SplitSeconds {
            train: 5.0,
            valid: 0.5,
        }];

        let history = read(dir.path(), &seconds);
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].train_loss, Some(0.7));
        assert_eq!(history[0].train_accuracy, Some(0.9));
        assert_eq!(history[0].valid_loss, Some(0.4));
        assert_eq!(history[0].valid_accuracy, None);
        assert_eq!(history[0].learning_rate, Some(0.0009));
        assert_eq!(history[0].train_seconds, Some(5.0));
        assert_eq!(history[1].train_loss, Some(0.3));
        assert_eq!(history[1].train_seconds, None);

        let csv = to_csv(&history);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "epoch,split,loss,accuracy,learning_rate,seconds");
        assert_eq!(lines[1], "1,train,0.7,0.9,0.0009,5");
        assert_eq!(lines[2], "1,valid,0.4,,,0.5");
        assert_eq!(lines[3], "2,train,0.3,,,");
        assert_eq!(lines.len(), 4);
    }
}

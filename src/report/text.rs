//! Text for people: the per-layer table, the table of runs, a line per epoch, a run's summary,
//! and numbers with thousands separators.

use std::fmt;

use crate::model::LeNet5Config;
use crate::model::layers::LayerInfo;
use crate::model::{OutputKind, Variant};
use crate::run::history::EpochMetrics;
use crate::run::{RunInfo, RunState, RunSummary};

/// `61706` -> `61,706`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A fraction as a percentage to two places (`0.9926` -> `99.26%`), `-` when there is none.
pub fn percent(fraction: Option<f64>) -> String {
    fraction.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0))
}

fn shape(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// The per-layer table: layer, kind, output shape, parameters, and the total.
pub fn layer_table(config: &LeNet5Config, layers: &[LayerInfo]) -> String {
    let kind_width = layers
        .iter()
        .map(|l| l.kind.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = match config.variant {
        Variant::Modern => format!(
            "LeNet-5 ({} activation, {} pooling)\n",
            config.activation, config.pooling
        ),
        Variant::Lecun98 => format!(
            "LeNet-5 as in LeCun et al. 1998 ({} activation, {} subsampling, {} output)\n",
            config.activation,
            config.pooling,
            match config.output {
                OutputKind::Linear => "linear",
                OutputKind::Rbf => "RBF",
            }
        ),
    };
    let row = |name: &str, kind: &str, output: &str, params: &str| {
        let line = format!("{name:<6} {kind:<kind_width$} {output:>9} {params:>11}");
        format!("{}\n", line.trim_end())
    };
    out += &row("layer", "kind", "output", "parameters");
    out += &row("input", "28x28 greyscale digit", "1x28x28", "");
    for layer in layers {
        out += &row(
            layer.name,
            &layer.kind,
            &shape(&layer.output),
            &thousands(layer.parameters),
        );
    }
    let total: usize = layers.iter().map(|l| l.parameters).sum();
    out += &row("total", "", "", &thousands(total));
    out
}

/// The runs of an artifacts folder as a table, one line each, as `lenet runs` prints them.
pub fn runs_table(runs: &[RunInfo]) -> String {
    let header = [
        "run",
        "config",
        "variant",
        "dataset",
        "backend",
        "epochs",
        "test acc",
        "started",
        "state",
        "logged to",
    ]
    .map(String::from);
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
    let rows: Vec<[String; 10]> = runs
        .iter()
        .map(|run| {
            [
                run.name.clone(),
                or_dash(&run.config),
                or_dash(&run.variant),
                or_dash(&run.dataset),
                or_dash(&run.backend),
                format!(
                    "{}/{}",
                    run.epochs_done,
                    run.epochs_planned
                        .map_or("?".to_string(), |n| n.to_string())
                ),
                run.test_accuracy
                    .map_or("-".to_string(), |a| format!("{:.2}%", a * 100.0)),
                run.started
                    .as_deref()
                    .map_or("-".to_string(), |s| s.replace('T', " ").replace('Z', "")),
                // A finished run's note is short ("stopped early after epoch 13"); a failed
                // one's is an error message, which `--json` and serve show in full.
                match (&run.state, &run.message) {
                    (RunState::Finished, Some(note)) => format!("finished, {note}"),
                    (state, _) => state.as_str().to_string(),
                },
                if run.logged_to.is_empty() {
                    "-".to_string()
                } else {
                    let trackers: Vec<&str> =
                        run.logged_to.iter().map(|t| t.tracker.as_str()).collect();
                    trackers.join(", ")
                },
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .chain([&header])
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in [&header].into_iter().chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            // The numbers (epochs, accuracy) right-aligned, the rest left.
            .map(|(c, (cell, &w))| match c {
                5 | 6 => format!("{cell:>w$}"),
                _ => format!("{cell:<w$}"),
            })
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}

/// One epoch as a line, as printed while training without the dashboard and after it closes:
/// `epoch  3/12  train loss 0.0464 acc  98.55%  valid loss 0.0501 acc  98.52%  lr 8.96e-4  4.0 s`.
pub fn epoch_line(epoch: &EpochMetrics, total_epochs: usize) -> String {
    let width = total_epochs.to_string().len();
    let mut line = format!("epoch {:>width$}/{total_epochs}", epoch.epoch);
    for (split, loss, accuracy) in [
        ("train", epoch.train_loss, epoch.train_accuracy),
        ("valid", epoch.valid_loss, epoch.valid_accuracy),
    ] {
        if let (Some(loss), Some(accuracy)) = (loss, accuracy) {
            line += &format!("  {split} loss {loss:.4} acc {:6.2}%", accuracy * 100.0);
        }
    }
    if let Some(lr) = epoch.learning_rate {
        line += &format!("  lr {lr:.2e}");
    }
    let seconds = epoch.train_seconds.unwrap_or(0.0) + epoch.valid_seconds.unwrap_or(0.0);
    line + &format!("  {seconds:.1} s")
}

/// The summary printed at the end of a run.
impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.history.last();
        writeln!(
            f,
            "Test accuracy: {:.2}% ({} of {} images), test loss {:.4}",
            self.test_accuracy * 100.0,
            thousands(self.test_correct),
            thousands(self.test_images),
            self.test_loss
        )?;
        writeln!(
            f,
            "Epochs: {} (last: train {}, valid {})",
            self.epochs,
            percent(last.and_then(|e| e.train_accuracy)),
            percent(last.and_then(|e| e.valid_accuracy)),
        )?;
        if let Some(epoch) = self.stopped_early_at {
            let why = self
                .stopped_by
                .as_deref()
                .unwrap_or("validation stopped improving");
            writeln!(f, "Stopped early after epoch {epoch}: {why}")?;
        }
        if let Some(best) = &self.best {
            writeln!(
                f,
                "Best epoch: {} by {} ({:.4}), test accuracy {:.2}% (model_best.bpk; eval, \
                 predict and export take --model best)",
                best.epoch,
                best.metric,
                best.value,
                best.test_accuracy * 100.0
            )?;
        }
        writeln!(
            f,
            "Time: {:.1} s training ({:.1} s per epoch), {:.1} s test evaluation",
            self.train_seconds,
            self.train_seconds / self.epochs.max(1) as f64,
            self.test_seconds
        )?;
        writeln!(f, "Backend: {}", self.device)?;
        write!(
            f,
            "Outputs: {} (model.bpk, summary.json, metrics.csv, plots/, config.json, checkpoints/)",
            self.run_dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_line_shows_both_splits() {
        let epoch = EpochMetrics {
            epoch: 3,
            train_loss: Some(0.25),
            train_accuracy: Some(0.935),
            valid_loss: Some(0.125),
            valid_accuracy: Some(0.96),
            learning_rate: Some(0.0009),
            train_seconds: Some(4.0),
            valid_seconds: Some(0.5),
        };
        assert_eq!(
            epoch_line(&epoch, 12),
            "epoch  3/12  train loss 0.2500 acc  93.50%  valid loss 0.1250 acc  96.00%  lr 9.00e-4  4.5 s"
        );
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(850), "850");
        assert_eq!(thousands(2_416), "2,416");
        assert_eq!(thousands(61_706), "61,706");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}

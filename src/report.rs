//! What people read: the per-layer table, the evaluation report (overall and per-digit
//! accuracy, the confusion matrix) and how numbers are written.

use serde::{Deserialize, Serialize};

use crate::idx::NUM_CLASSES;
use crate::inference::Evaluation;
use crate::model::{LayerInfo, LeNet5Config, OutputKind, Variant};

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

/// How well a model did on a dataset, overall and digit by digit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub images: usize,
    pub correct: usize,
    /// Fraction correct, 0..1.
    pub accuracy: f64,
    pub loss: f64,
    pub classes: Vec<ClassReport>,
    /// `confusion[true digit][predicted digit]` = number of images.
    pub confusion: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    pub digit: u8,
    /// Images of this digit.
    pub support: usize,
    /// Of the images predicted as this digit, the fraction that are.
    pub precision: f64,
    /// Of the images of this digit, the fraction predicted as it.
    pub recall: f64,
}

impl EvalReport {
    pub fn new(evaluation: &Evaluation) -> Self {
        let mut confusion = vec![vec![0usize; NUM_CLASSES]; NUM_CLASSES];
        for (&label, &predicted) in evaluation.labels.iter().zip(&evaluation.predictions) {
            confusion[label as usize][predicted as usize] += 1;
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let classes = (0..NUM_CLASSES)
            .map(|digit| {
                let hits = confusion[digit][digit];
                let support: usize = confusion[digit].iter().sum();
                let predicted: usize = confusion.iter().map(|row| row[digit]).sum();
                ClassReport {
                    digit: digit as u8,
                    support,
                    precision: ratio(hits, predicted),
                    recall: ratio(hits, support),
                }
            })
            .collect();
        Self {
            images: evaluation.images(),
            correct: evaluation.correct(),
            accuracy: evaluation.accuracy(),
            loss: evaluation.loss,
            classes,
            confusion,
        }
    }

    /// The report as tables: overall figures, per-digit precision and recall, confusion matrix.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "Accuracy: {:.2}% ({} of {} images), loss {:.4}\n\n",
            self.accuracy * 100.0,
            thousands(self.correct),
            thousands(self.images),
            self.loss
        );
        out += "digit  images  precision  recall\n";
        for class in &self.classes {
            out += &format!(
                "{:>5}  {:>6}  {:>8.2}%  {:>5.2}%\n",
                class.digit,
                class.support,
                class.precision * 100.0,
                class.recall * 100.0
            );
        }
        out += "\nConfusion matrix (rows: true digit, columns: predicted digit)\n";
        out += "     ";
        for digit in 0..NUM_CLASSES {
            out += &format!("{digit:>6}");
        }
        out += "\n";
        for (digit, row) in self.confusion.iter().enumerate() {
            out += &format!("{digit:>5}");
            for &count in row {
                out += &format!("{count:>6}");
            }
            out += "\n";
        }
        out
    }

    /// The confusion matrix as CSV, a header row of predicted digits and one row per true digit.
    pub fn confusion_csv(&self) -> String {
        let mut out = String::from("true\\predicted");
        for digit in 0..NUM_CLASSES {
            out += &format!(",{digit}");
        }
        out += "\n";
        for (digit, row) in self.confusion.iter().enumerate() {
            out += &digit.to_string();
            for count in row {
                out += &format!(",{count}");
            }
            out += "\n";
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(850), "850");
        assert_eq!(thousands(2_416), "2,416");
        assert_eq!(thousands(61_706), "61,706");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    fn report() -> EvalReport {
        // digit 0: 3 images, 2 right, 1 taken for a 6; digit 6: 1 image, right.
        let p = [0.1; NUM_CLASSES];
        EvalReport::new(&Evaluation {
            labels: vec![0, 0, 0, 6],
            predictions: vec![0, 6, 0, 6],
            probabilities: vec![p; 4],
            loss: 0.25,
        })
    }

    #[test]
    fn confusion_precision_and_recall() {
        let r = report();
        assert_eq!((r.images, r.correct), (4, 3));
        assert_eq!(r.confusion[0][0], 2);
        assert_eq!(r.confusion[0][6], 1);
        assert_eq!(r.confusion[6][6], 1);
        assert_eq!(r.classes[0].support, 3);
        assert!((r.classes[0].recall - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.classes[0].precision, 1.0);
        assert_eq!(r.classes[6].precision, 0.5);
        assert_eq!(r.classes[6].recall, 1.0);
        assert_eq!(r.classes[3].support, 0);
        assert_eq!(r.classes[3].precision, 0.0);
    }

    #[test]
    fn tables_and_csv_show_the_counts() {
        let r = report();
        let table = r.to_table();
        assert!(table.starts_with("Accuracy: 75.00% (3 of 4 images), loss 0.2500"));
        assert!(
            table.contains("    0       3    100.00%  66.67%"),
            "{table}"
        );
        let csv = r.confusion_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "true\\predicted,0,1,2,3,4,5,6,7,8,9");
        assert_eq!(lines[1], "0,2,0,0,0,0,0,1,0,0,0");
        assert_eq!(lines.len(), 11);
    }
}

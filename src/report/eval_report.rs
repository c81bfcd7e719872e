//! The evaluation report: how well a model did on a data set, overall and class by class, with
//! the confusion matrix, as tables, CSV and JSON.

use serde::{Deserialize, Serialize};

use super::thousands;

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

/// A misclassified image: its position in the data set and how sure the model was.
#[derive(Debug, Clone, PartialEq)]
pub struct Mistake {
    pub index: usize,
    pub label: u8,
    pub predicted: u8,
    /// Probability the model gave its (wrong) answer.
    pub confidence: f32,
}

impl EvalReport {
    /// The report on a model's `predictions` of images labelled `labels`, over `classes`
    /// classes, with its mean `loss`.
    pub fn new(classes: usize, labels: &[u8], predictions: &[u8], loss: f64) -> Self {
        let mut confusion = vec![vec![0usize; classes]; classes];
        for (&label, &predicted) in labels.iter().zip(predictions) {
            confusion[label as usize][predicted as usize] += 1;
        }
        let correct = (0..classes).map(|c| confusion[c][c]).sum();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let classes = (0..classes)
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
            images: labels.len(),
            correct,
            accuracy: ratio(correct, labels.len()),
            loss,
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
        for digit in 0..self.confusion.len() {
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
        for digit in 0..self.confusion.len() {
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

    fn report() -> EvalReport {
        // digit 0: 3 images, 2 right, 1 taken for a 6; digit 6: 1 image, right.
        EvalReport::new(10, &[0, 0, 0, 6], &[0, 6, 0, 6], 0.25)
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

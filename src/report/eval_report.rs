//! The evaluation report: how well a model did on a data set, overall and class by class, with
//! the confusion matrix, as tables, CSV and JSON.

use serde::{Deserialize, Serialize};

use super::text::thousands;
use crate::data::Class;

/// Above this many classes the table leaves the confusion matrix to the CSV and the picture:
/// a terminal is not wide enough for it.
const MATRIX_IN_TABLE: usize = 20;

/// How well a model did on a dataset, overall and class by class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub images: usize,
    pub correct: usize,
    /// Fraction correct, 0..1.
    pub accuracy: f64,
    pub loss: f64,
    pub classes: Vec<ClassReport>,
    /// `confusion[true class][predicted class]` = number of images.
    pub confusion: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    /// The class's label.
    pub class: Class,
    /// The class's name.
    pub name: String,
    /// Images of this class.
    pub support: usize,
    /// Of the images predicted as this class, the fraction that are.
    pub precision: f64,
    /// Of the images of this class, the fraction predicted as it.
    pub recall: f64,
}

/// A misclassified image: its position in the data set and how sure the model was.
#[derive(Debug, Clone, PartialEq)]
pub struct Mistake {
    pub index: usize,
    pub label: Class,
    pub predicted: Class,
    /// Probability the model gave its (wrong) answer.
    pub confidence: f32,
}

impl EvalReport {
    /// The report on a model's `predictions` of images labelled `labels`, over the classes
    /// named `names`, with its mean `loss`.
    pub fn new(names: &[String], labels: &[Class], predictions: &[Class], loss: f64) -> Self {
        let classes = names.len();
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
                    class: digit as Class,
                    name: names[digit].clone(),
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

    /// The report as tables: overall figures, per-class precision and recall, confusion matrix.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "Accuracy: {:.2}% ({} of {} images), loss {:.4}\n\n",
            self.accuracy * 100.0,
            thousands(self.correct),
            thousands(self.images),
            self.loss
        );
        let width = self
            .classes
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(5, 24);
        out += &format!("{:>width$}  images  precision  recall\n", "class");
        for class in &self.classes {
            out += &format!(
                "{:>width$}  {:>6}  {:>8.2}%  {:>5.2}%\n",
                short(&class.name, width),
                class.support,
                class.precision * 100.0,
                class.recall * 100.0
            );
        }
        if self.confusion.len() > MATRIX_IN_TABLE {
            out += &format!(
                "\nConfusion matrix: {0} x {0} classes, in confusion.csv and confusion.png\n",
                self.confusion.len()
            );
            return out;
        }
        out += "\nConfusion matrix (rows: true class, columns: predicted class)\n";
        out += &" ".repeat(width);
        for class in &self.classes {
            out += &format!("{:>6}", short(&class.name, 5));
        }
        out += "\n";
        for (class, row) in self.classes.iter().zip(&self.confusion) {
            out += &format!("{:>width$}", short(&class.name, width));
            for &count in row {
                out += &format!("{count:>6}");
            }
            out += "\n";
        }
        out
    }

    /// The confusion matrix as CSV, a header row of predicted classes and one row per true
    /// class, each named.
    pub fn confusion_csv(&self) -> String {
        let mut out = String::from("true\\predicted");
        for class in &self.classes {
            out += &format!(",{}", csv_cell(&class.name));
        }
        out += "\n";
        for (class, row) in self.classes.iter().zip(&self.confusion) {
            out += &csv_cell(&class.name);
            for count in row {
                out += &format!(",{count}");
            }
            out += "\n";
        }
        out
    }
}

/// `text` cut to `width` characters, the cut marked.
pub fn short(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('~');
        cut
    }
}

/// A CSV cell, quoted when the text holds a comma, a quote or a line break.
pub fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> EvalReport {
        // digit 0: 3 images, 2 right, 1 taken for a 6; digit 6: 1 image, right.
        EvalReport::new(
            &crate::data::classes::numbered(10),
            &[0, 0, 0, 6],
            &[0, 6, 0, 6],
            0.25,
        )
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

    #[test]
    fn classes_are_shown_by_name() {
        let names: Vec<String> = [
            "cat",
            "dog, big",
            "a very long class name indeed for a table",
        ]
        .map(String::from)
        .to_vec();
        let r = EvalReport::new(&names, &[0, 1, 2, 1], &[0, 1, 1, 1], 0.1);
        assert_eq!(r.classes[1].name, "dog, big");
        let table = r.to_table();
        assert!(
            table.contains("     cat       1    100.00%  100.00%"),
            "{table}"
        );
        assert!(table.contains("a very long class name ~"), "{table}");
        let csv = r.confusion_csv();
        assert_eq!(
            csv.lines().next().unwrap(),
            "true\\predicted,cat,\"dog, big\",a very long class name indeed for a table"
        );
        assert_eq!(
            csv.lines().nth(3).unwrap(),
            "a very long class name indeed for a table,0,1,0"
        );
    }
}

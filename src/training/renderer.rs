//! Progress output for runs without a terminal (CI, pipes, `--no-tui`): one readable line per
//! epoch instead of the debug line per batch that Burn's fallback renderer prints.

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use crate::report::epoch_line;
use crate::run::history::EpochMetrics;
use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

/// The value of each numeric metric at the end of one split of an epoch, by metric name.
type SplitValues = HashMap<String, f64>;

/// Prints `epoch 3/10  train loss 0.0512 acc 98.42%  valid loss ... lr ...  6.2 s`.
pub struct EpochLineRenderer {
    names: HashMap<MetricId, String>,
    train: SplitValues,
    valid: SplitValues,
    total_epochs: usize,
    epoch_started: Instant,
}

impl EpochLineRenderer {
    pub fn new() -> Self {
        Self {
            names: HashMap::new(),
            train: SplitValues::new(),
            valid: SplitValues::new(),
            total_epochs: 0,
            epoch_started: Instant::now(),
        }
    }

    fn record(names: &HashMap<MetricId, String>, values: &mut SplitValues, state: MetricState) {
        // Per-batch entries keep the line current if an epoch is cut short; the epoch's `Final`
        // entry, which comes last, is the one printed for a complete epoch.
        if let MetricState::Numeric(entry, Some(value)) = state
            && let Some(name) = names.get(&entry.metric_id)
        {
            let value = match value {
                NumericEntry::Final(v) | NumericEntry::Value(v) => v,
                NumericEntry::Aggregated {
                    aggregated_value, ..
                } => aggregated_value,
            };
            values.insert(name.clone(), value);
        }
    }

    fn line(&self, epoch: usize) -> String {
        let fraction = |percent: Option<&f64>| percent.map(|p| p / 100.0);
        let metrics = EpochMetrics {
            epoch,
            train_loss: self.train.get("Loss").copied(),
            train_accuracy: fraction(self.train.get("Accuracy")),
            valid_loss: self.valid.get("Loss").copied(),
            valid_accuracy: fraction(self.valid.get("Accuracy")),
            learning_rate: self.train.get("Learning Rate").copied(),
            train_seconds: Some(self.epoch_started.elapsed().as_secs_f64()),
            valid_seconds: None,
        };
        epoch_line(&metrics, self.total_epochs)
    }
}

impl Default for EpochLineRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsRendererTraining for EpochLineRenderer {
    fn update_train(&mut self, state: MetricState) {
        Self::record(&self.names, &mut self.train, state);
    }

    fn update_valid(&mut self, state: MetricState) {
        Self::record(&self.names, &mut self.valid, state);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        // The program prints its own summary after the test-set evaluation.
        Ok(())
    }
}

impl TrainingProgressLogger for EpochLineRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        _starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.epoch_started = Instant::now();
    }

    fn update_epoch(&mut self, epoch: usize) {
        println!("{}", self.line(epoch));
        let _ = std::io::stdout().flush();
        self.train.clear();
        self.valid.clear();
        self.epoch_started = Instant::now();
    }

    fn start_split(&mut self, _split: &str, _total_items: usize) {}

    fn update_split(&mut self, _items_processed: usize) {}

    fn end_split(&mut self) {}

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for EpochLineRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, _name: &str, _total_items: usize) {}

    fn update_test_progress(&mut self, _items_processed: usize) {}

    fn end_test(&mut self) {}

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRendererEvaluation for EpochLineRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl MetricsRenderer for EpochLineRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id, definition.name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::train::metric::{MetricEntry, SerializedEntry};
    use std::sync::Arc;

    fn numeric(id: &MetricId, value: NumericEntry) -> MetricState {
        MetricState::Numeric(
            MetricEntry::new(
                id.clone(),
                SerializedEntry::new(String::new(), String::new()),
            ),
            Some(value),
        )
    }

    #[test]
    fn line_shows_the_final_value_of_each_split() {
        let mut renderer = EpochLineRenderer::new();
        let loss = MetricId::new(Arc::new("loss-id".to_string()));
        let acc = MetricId::new(Arc::new("acc-id".to_string()));
        renderer.names.insert(loss.clone(), "Loss".into());
        renderer.names.insert(acc.clone(), "Accuracy".into());
        renderer.start(12, 1, None, None);

        renderer.update_train(numeric(&loss, NumericEntry::Value(0.9)));
        renderer.update_train(numeric(&loss, NumericEntry::Final(0.25)));
        renderer.update_train(numeric(&acc, NumericEntry::Final(93.5)));
        renderer.update_valid(numeric(&loss, NumericEntry::Final(0.125)));
        renderer.update_valid(numeric(&acc, NumericEntry::Final(96.0)));

        let line = renderer.line(3);
        assert!(line.starts_with("epoch  3/12"), "{line}");
        assert!(line.contains("train loss 0.2500 acc  93.50%"), "{line}");
        assert!(line.contains("valid loss 0.1250 acc  96.00%"), "{line}");
        assert!(line.ends_with(" s"), "{line}");
    }
}

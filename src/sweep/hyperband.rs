//! Early termination of poor trials, as W&B's `"early_terminate": {"type": "hyperband"}` does
//! it: successive halving at rungs of `min_iter`, `min_iter * eta`, `min_iter * eta^2`, ...
//! epochs. A trial that reaches a rung goes on only if its metric there is among the best
//! `1/eta` of every trial's that reached the rung so far; the others end there. Asynchronous,
//! as trials run at their own pace (here or as SLURM array tasks): each trial judges itself
//! when it gets to a rung, against what the other trials' folders hold then.

use super::spec::{EarlyTerminate, Goal, Metric};
use crate::run::history::EpochMetrics;

/// The epochs at which a trial of `epochs` epochs is judged: the rungs before its last epoch.
pub fn rungs(rule: &EarlyTerminate, epochs: usize) -> Vec<usize> {
    std::iter::successors(Some(rule.min_iter), |rung| rung.checked_mul(rule.eta))
        .take_while(|rung| *rung < epochs)
        .collect()
}

/// Whether the trial whose epochs so far are `own` ends at its latest epoch, judged against
/// `others`, the epochs every other trial has recorded: the reason when it does.
pub fn judge(
    rule: &EarlyTerminate,
    metric: Metric,
    epochs: usize,
    own: &[EpochMetrics],
    others: &[Vec<EpochMetrics>],
) -> Option<String> {
    let latest = own.last()?;
    let rung = latest.epoch;
    if !rungs(rule, epochs).contains(&rung) {
        return None;
    }
    let value = metric.name.of_epoch(latest).filter(|v| v.is_finite())?;
    let mut reached: Vec<f64> = others
        .iter()
        .filter_map(|history| history.iter().find(|e| e.epoch == rung))
        .filter_map(|epoch| metric.name.of_epoch(epoch))
        .filter(|v| v.is_finite())
        .collect();
    reached.push(value);
    let threshold = threshold(&mut reached, metric.goal, rule.eta);
    let worse = match metric.goal {
        Goal::Maximize => value < threshold,
        Goal::Minimize => value > threshold,
    };
    worse.then(|| {
        format!(
            "hyperband: {} {value:.4} at epoch {rung} is not among the best 1/{} of the {} \
             trials there (the line is {threshold:.4})",
            metric.name.as_str(),
            rule.eta,
            reached.len()
        )
    })
}

/// The value the best `1/eta` of `values` are at or beyond: the (1 - 1/eta) quantile when
/// larger is better, the 1/eta quantile when smaller is, between neighbours linearly.
fn threshold(values: &mut [f64], goal: Goal, eta: usize) -> f64 {
    values.sort_by(f64::total_cmp);
    let q = match goal {
        Goal::Maximize => 1.0 - 1.0 / eta as f64,
        Goal::Minimize => 1.0 / eta as f64,
    };
    let position = q * (values.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    values[below] + (values[above] - values[below]) * (position - below as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::{MetricName, TerminateKind};

    const RULE: EarlyTerminate = EarlyTerminate {
        kind: TerminateKind::Hyperband,
        min_iter: 2,
        eta: 3,
    };
    const ACCURACY: Metric = Metric {
        name: MetricName::ValidAccuracy,
        goal: Goal::Maximize,
    };

    fn history(values: &[f64]) -> Vec<EpochMetrics> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| EpochMetrics {
                epoch: i + 1,
                valid_accuracy: Some(*v),
                valid_loss: Some(1.0 - v),
                ..EpochMetrics::default()
            })
            .collect()
    }

    #[test]
    fn rungs_grow_by_eta_and_stop_before_the_last_epoch() {
        assert_eq!(rungs(&RULE, 20), [2, 6, 18]);
        assert_eq!(rungs(&RULE, 18), [2, 6]);
        assert_eq!(rungs(&RULE, 2), Vec::<usize>::new());
    }

    #[test]
    fn a_trial_goes_on_only_among_the_best_third_at_a_rung() {
        let others = vec![history(&[0.5, 0.9]), history(&[0.5, 0.8]), history(&[0.7])];
        // The first to reach a rung has nobody to lose to.
        assert_eq!(judge(&RULE, ACCURACY, 10, &history(&[0.1, 0.2]), &[]), None);
        // Between rungs, nothing is judged.
        assert_eq!(
            judge(&RULE, ACCURACY, 10, &history(&[0.1, 0.2, 0.3]), &others),
            None
        );
        assert_eq!(
            judge(&RULE, ACCURACY, 10, &history(&[0.1, 0.95]), &others),
            None
        );
        let reason = judge(&RULE, ACCURACY, 10, &history(&[0.1, 0.85]), &others).unwrap();
        assert!(
            reason.contains("valid_accuracy 0.8500 at epoch 2"),
            "{reason}"
        );
        assert!(reason.contains("of the 3 trials there"), "{reason}");
        // The last epoch is no rung: a trial that got there finishes.
        assert_eq!(
            judge(&RULE, ACCURACY, 2, &history(&[0.1, 0.1]), &others),
            None
        );
    }

    #[test]
    fn a_loss_is_judged_the_other_way() {
        let loss = Metric {
            name: MetricName::ValidLoss,
            goal: Goal::Minimize,
        };
        let others = vec![history(&[0.5, 0.9]), history(&[0.5, 0.8])];
        // Losses 0.1 and 0.2 there: 0.05 is the best, 0.3 the worst.
        assert_eq!(
            judge(&RULE, loss, 10, &history(&[0.0, 0.95]), &others),
            None
        );
        assert!(judge(&RULE, loss, 10, &history(&[0.0, 0.7]), &others).is_some());
    }
}

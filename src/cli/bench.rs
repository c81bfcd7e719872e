//! `lenet bench`: each compiled backend's training, evaluation and prediction speed.

use std::process::ExitCode;

use lenet::bench::{self, BenchSettings};
use lenet::config::{Overrides, TrainingConfig};
use lenet::device::BackendKind;

use super::BenchArgs;
use super::error::Error;

pub fn bench_command(args: &BenchArgs) -> Result<ExitCode, Error> {
    let mut config = match &args.config {
        Some(path) => TrainingConfig::load(path)?,
        None => TrainingConfig::default(),
    };
    config.apply(&Overrides {
        data_dir: args.data_dir.clone(),
        ..Overrides::default()
    })?;
    let backends = if args.device.is_empty() {
        BackendKind::compiled()
    } else {
        args.device
            .iter()
            .map(|backend| backend.ensure_compiled())
            .collect::<Result<_, _>>()?
    };
    let settings = BenchSettings {
        backends,
        batch_sizes: args.batch_size.clone(),
        epochs: args.epochs,
        warmup_batches: args.warmup_batches,
        eval_batch_size: args.eval_batch_size,
        predict_samples: args.predict_samples,
    };
    bench::measure(&config, &settings, |result| {
        if args.json {
            eprintln!("{result}");
            println!(
                "{}",
                serde_json::to_string(result).expect("results serialise")
            );
        } else {
            println!("{result}");
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

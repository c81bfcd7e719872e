//! `lenet`: train LeNet-5 on MNIST from a JSON config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lenet::config::{Overrides, TrainingConfig, config_name};
use lenet::device::Backend;
use lenet::training::{RunOptions, RunSummary, thousands, train};

/// Train LeNet-5 on MNIST with Burn.
///
/// Every hyperparameter comes from the JSON config; the flags below override the common ones.
/// In a terminal, training shows Burn's dashboard (press q to stop); otherwise it prints one line
/// per epoch. The run's outputs (resolved config, final model, checkpoints, metric logs,
/// summary.json) go to artifacts/<config name> unless --artifact-dir says otherwise.
#[derive(Debug, Parser)]
#[command(name = "lenet", version, max_term_width = 100)]
struct Cli {
    /// Training config (JSON), e.g. configs/lenet.json
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Number of epochs (config: epochs)
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Images per batch (config: batch_size)
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Initial learning rate (config: optimizer.learning_rate)
    #[arg(long, value_name = "LR")]
    learning_rate: Option<f64>,
    /// Seed for weight init, data order and validation split (config: seed)
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Backend to train on; it must be compiled in with `--features <name>` [default: the most
    /// specific compiled one: vulkan, wgpu, ndarray, then flex] (config: device)
    #[arg(long, value_enum, value_name = "NAME")]
    device: Option<Backend>,
    /// Folder holding the four MNIST IDX files, raw or .gz (config: data.dir) [default: $MNIST_DIR,
    /// then the user cache folder, downloaded there if missing]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where to write the run's outputs (config: artifact_dir) [default: artifacts/<config name>]
    #[arg(long, value_name = "DIR")]
    artifact_dir: Option<PathBuf>,
    /// Print one line per epoch instead of showing the dashboard, even in a terminal
    #[arg(long)]
    no_tui: bool,
    /// Replace a run already in the output folder
    #[arg(long)]
    overwrite: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(summary) => {
            print_summary(&summary);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

fn run(cli: &Cli) -> Result<RunSummary, lenet::Error> {
    let mut config = TrainingConfig::load(&cli.config)?;
    config.apply(&Overrides {
        epochs: cli.epochs,
        batch_size: cli.batch_size,
        learning_rate: cli.learning_rate,
        seed: cli.seed,
        device: cli.device,
        data_dir: cli.data_dir.clone(),
        artifact_dir: cli.artifact_dir.clone(),
    })?;
    let options = RunOptions {
        config_name: config_name(&cli.config),
        dashboard: !cli.no_tui,
        overwrite: cli.overwrite,
    };
    train(&config, &options)
}

fn print_summary(summary: &RunSummary) {
    let last = summary.history.last();
    let percent = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0));
    println!();
    println!(
        "Test accuracy: {:.2}% ({} of {} images), test loss {:.4}",
        summary.test_accuracy * 100.0,
        thousands(summary.test_correct),
        thousands(summary.test_images),
        summary.test_loss
    );
    println!(
        "Epochs: {} (last: train {}, valid {})",
        summary.epochs,
        percent(last.and_then(|e| e.train_accuracy)),
        percent(last.and_then(|e| e.valid_accuracy)),
    );
    println!(
        "Time: {:.1} s training ({:.1} s per epoch), {:.1} s test evaluation",
        summary.train_seconds,
        summary.train_seconds / summary.epochs as f64,
        summary.test_seconds
    );
    println!("Backend: {}", summary.device);
    println!(
        "Outputs: {} (model.bpk, summary.json, config.json, checkpoint/, train/ and valid/ logs)",
        summary.run_dir.display()
    );
}

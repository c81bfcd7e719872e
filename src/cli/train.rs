//! `lenet train` (and plain `lenet --config FILE`) and `lenet resume`: a run prepared, shown,
//! trained and summed up, with Ctrl-C turned into a stop at the next batch.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::train::Interrupter;
use lenet::config::{Overrides, TrainingConfig, config_name};
use lenet::report::epoch_line;
use lenet::run::{self, RunSummary};
use lenet::training::checkpoint::Checkpoints;
use lenet::training::{TrainOptions, Training, terminal};

use super::{ResumeArgs, TrainArgs};

pub fn train_command(args: &TrainArgs) -> Result<ExitCode, lenet::Error> {
    let config_path = args.config.as_ref().expect("clap requires --config");
    let mut config = TrainingConfig::load(config_path)?;
    config.apply(&Overrides {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        seed: args.seed,
        device: args.device,
        data_dir: args.data_dir.clone(),
        artifact_dir: args.artifact_dir.clone(),
    })?;
    let options = TrainOptions {
        dashboard: !args.no_tui,
        overwrite: args.overwrite,
        resume: args.resume,
        interrupter: stop_on_ctrl_c(),
        ..TrainOptions::new(config_name(config_path))
    };
    train(&config, &options)
}

/// Prepares the run, says what it is about to do, trains, and prints the summary.
fn train(config: &TrainingConfig, options: &TrainOptions) -> Result<ExitCode, lenet::Error> {
    let training = Training::prepare(config, options)?;
    for warning in training.warnings() {
        eprintln!("warning: {warning}");
    }
    print!("{training}");
    let dashboard = training.uses_dashboard();
    let launched = training.launch();
    if dashboard {
        // The dashboard's screen is gone: leave the epochs in the terminal's history.
        let history = match &launched {
            Ok(summary) => Some(summary.history.as_slice()),
            Err(error) => error.history(),
        };
        for epoch in history.unwrap_or_default() {
            println!("{}", epoch_line(epoch, config.epochs));
        }
    }
    print_summary(&launched?);
    Ok(ExitCode::SUCCESS)
}

pub fn resume_command(args: &ResumeArgs) -> Result<ExitCode, lenet::Error> {
    let mut config = run::prepare_resume(&args.run, args.epochs.is_some())?;
    config.apply(&Overrides {
        epochs: args.epochs,
        device: args.device,
        data_dir: args.data_dir.clone(),
        artifact_dir: Some(args.run.clone()),
        ..Overrides::default()
    })?;
    let name = Checkpoints::new(&args.run)
        .config_name()
        .unwrap_or_else(|| run::name(&args.run));
    let options = TrainOptions {
        dashboard: !args.no_tui,
        resume: true,
        extend: args.epochs.is_some(),
        interrupter: stop_on_ctrl_c(),
        ..TrainOptions::new(name)
    };
    train(&config, &options)
}

/// The first Ctrl-C asks training to stop at the next batch boundary and write a checkpoint; the
/// second exits at once.
fn stop_on_ctrl_c() -> Interrupter {
    let interrupter = Interrupter::new();
    let handle = interrupter.clone();
    let presses = AtomicUsize::new(0);
    let installed = ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!(
                "\nStopping at the end of this batch to write a checkpoint; Ctrl-C again quits at once."
            );
            handle.stop(Some("Ctrl-C"));
        } else {
            terminal::restore();
            eprintln!("Quit without a checkpoint; the previous one is intact.");
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will end training without a checkpoint: {e}");
    }
    interrupter
}

/// How the user ran this program, for commands printed back to them.
pub fn invocation() -> String {
    // `cargo run` sets CARGO in the environment of the program it runs.
    if std::env::var_os("CARGO").is_some() {
        "cargo run --release --".to_string()
    } else {
        "lenet".to_string()
    }
}

fn print_summary(summary: &RunSummary) {
    println!();
    println!("{summary}");
    println!(
        "Next: lenet eval --run {0}   |   lenet predict --run {0} image.png",
        summary.run_dir.display()
    );
}

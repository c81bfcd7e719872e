//! `lenet train` (and plain `lenet --config FILE`) and `lenet resume`: a run prepared, shown,
//! trained and summed up, with Ctrl-C turned into a stop at the next batch.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::train::Interrupter;
use lenet::config::{Overrides, TrainingConfig, config_name};
use lenet::report::epoch_line;
use lenet::training::{StartMode, TrainOptions, Training, burn_glue};

use super::error::{Error, training_line};
use super::{ResumeArgs, TrainArgs, next_steps};

pub fn train_command(args: &TrainArgs) -> Result<ExitCode, Error> {
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
        tensorboard: args.tensorboard,
        mlflow: args.mlflow.clone(),
    })?;
    let mode = if args.resume {
        StartMode::Resume
    } else if args.overwrite {
        StartMode::Overwrite
    } else {
        StartMode::New
    };
    let (options, tracked) = options(args.no_tui);
    let training = Training::prepare(&config, &config_name(config_path), mode, &options)?;
    train(training, &tracked)
}

pub fn resume_command(args: &ResumeArgs) -> Result<ExitCode, Error> {
    let overrides = Overrides {
        device: args.device,
        data_dir: args.data_dir.clone(),
        ..Overrides::default()
    };
    let (options, tracked) = options(args.no_tui);
    let training = Training::resume(&args.run, args.epochs, &overrides, &options)?;
    train(training, &tracked)
}

/// Where a run was also logged, as training tells it at the end: printed after the summary.
pub(super) type Tracked = Arc<Mutex<Vec<String>>>;

/// Says what the run is about to do, trains, and prints the summary.
pub(super) fn train(training: Training, tracked: &Tracked) -> Result<ExitCode, Error> {
    for warning in training.warnings() {
        eprintln!("warning: {warning}");
    }
    print!("{training}");
    let dashboard = training.uses_dashboard();
    let epochs = training.epochs();
    let launched = training.launch();
    if dashboard {
        // The dashboard's screen is gone: leave the epochs in the terminal's history.
        let history = match &launched {
            Ok(summary) => Some(summary.history.as_slice()),
            Err(error) => error.history(),
        };
        for epoch in history.unwrap_or_default() {
            println!("{}", epoch_line(epoch, epochs));
        }
    }
    let tracked = std::mem::take(&mut *tracked.lock().unwrap_or_else(|p| p.into_inner()));
    let summary = match launched {
        Ok(summary) => summary,
        Err(error) => {
            for line in &tracked {
                eprintln!("{line}");
            }
            return Err(error.into());
        }
    };
    println!();
    println!("{summary}");
    for line in &tracked {
        println!("{line}");
    }
    println!("{}", next_steps(&summary.run_dir));
    Ok(ExitCode::SUCCESS)
}

/// How the command line trains: the dashboard unless `no_tui`, Ctrl-C as a stop, the
/// dashboard's kill said in the command line's words, and where the run was logged kept for
/// after the summary.
pub(super) fn options(no_tui: bool) -> (TrainOptions, Tracked) {
    let tracked = Tracked::default();
    let keep = tracked.clone();
    let options = TrainOptions {
        dashboard: !no_tui,
        interrupter: stop_on_ctrl_c(),
        on_kill: Some(Arc::new(|error| eprintln!("{}", training_line(error)))),
        on_tracked: Some(Arc::new(move |line: &str| {
            keep.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.to_string());
        })),
        ..TrainOptions::default()
    };
    (options, tracked)
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
            burn_glue::restore();
            eprintln!("Quit without a checkpoint; the previous one is intact.");
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will end training without a checkpoint: {e}");
    }
    interrupter
}

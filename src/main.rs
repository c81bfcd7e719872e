//! `lenet`: train LeNet-5 on MNIST from a JSON config, then evaluate, use and export it.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::atomic::{AtomicUsize, Ordering};

use burn::train::Interrupter;
use clap::{Args, Parser, Subcommand};
use lenet::bench::{self, BenchSettings};
use lenet::config::{Overrides, TrainingConfig, config_name};
use lenet::device::BackendKind;
use lenet::inference::eval::{EvalOptions, eval_run};
use lenet::inference::export::to_safetensors;
use lenet::inference::predict::predict_files;
use lenet::report::{epoch_line, layer_table};
use lenet::run::{self, FinishedRun, RunSummary, write_atomic};
use lenet::training::checkpoint::Checkpoints;
use lenet::training::{TrainOptions, Training, terminal};

// mimalloc keeps freed memory for reuse: with the system allocator, the large buffers the flex
// kernels in conv.rs and pool.rs allocate each step went back to the OS and came back as page
// faults, which made a training epoch 7.6 s instead of 7.2 s and evaluation half as fast
// (`lenet bench`, flex, 2 cores).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train LeNet-5 on MNIST with Burn, then evaluate, use and export it.
///
/// `lenet --config FILE` trains (the same as `lenet train --config FILE`). Every hyperparameter
/// comes from the JSON config; the flags override the common ones. In a terminal, training shows
/// Burn's dashboard (press q to stop); otherwise it prints one line per epoch. The run's outputs
/// go to artifacts/<config name> unless --artifact-dir says otherwise. Ctrl-C stops training at
/// the next batch and writes a checkpoint that `lenet resume --run DIR` continues from; a second
/// Ctrl-C exits at once.
#[derive(Debug, Parser)]
#[command(
    name = "lenet",
    version,
    max_term_width = 100,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train LeNet-5 on MNIST (what `lenet --config FILE` does)
    Train(TrainArgs),
    /// Continue an interrupted run from its newest checkpoint (what `--resume` does, given only
    /// the run directory)
    Resume(ResumeArgs),
    /// Evaluate a finished run on the test set: accuracy, per-digit precision and recall,
    /// confusion matrix, and the worst mistakes as pictures (written to RUN/eval/)
    Eval(EvalArgs),
    /// Classify image files (PNG, JPEG or BMP; any size, colour or polarity) with a run's model
    Predict(PredictArgs),
    /// Print the model's layers: kind, output shape and parameters
    Summary(SummaryArgs),
    /// Write a run's weights as safetensors in PyTorch's layout and names
    Export(ExportArgs),
    /// Measure training, evaluation and prediction speed on each compiled backend, the same way
    /// benches/pytorch_reference.py measures PyTorch (benches/compare.sh runs the two)
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// Training config (JSON), e.g. configs/lenet.json
    #[arg(long, short, value_name = "FILE", required = true)]
    config: Option<PathBuf>,
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
    /// BackendKind to train on; it must be compiled in with `--features <name>` [default: the most
    /// specific compiled one: vulkan, wgpu, ndarray, then flex] (config: device)
    #[arg(long, value_enum, value_name = "NAME")]
    device: Option<BackendKind>,
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
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Continue the run in the output folder from its newest checkpoint (the config must be the
    /// one it started with)
    #[arg(long)]
    resume: bool,
}

#[derive(Debug, Args)]
struct ResumeArgs {
    /// The run directory of an interrupted run, e.g. artifacts/lenet
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// BackendKind to continue on [default: the run's]
    #[arg(long, value_enum, value_name = "NAME")]
    device: Option<BackendKind>,
    /// Folder holding MNIST [default: the one the run was trained from]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print one line per epoch instead of showing the dashboard, even in a terminal
    #[arg(long)]
    no_tui: bool,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// A run directory written by training, e.g. artifacts/lenet
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Folder holding MNIST [default: the one the run was trained from]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// BackendKind to evaluate on [default: the run's, if compiled in]
    #[arg(long, value_enum, value_name = "NAME")]
    device: Option<BackendKind>,
    /// Print the report as JSON instead of tables
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PredictArgs {
    /// A run directory written by training, e.g. artifacts/lenet
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// BackendKind to run the model on [default: the run's, if compiled in]
    #[arg(long, value_enum, value_name = "NAME")]
    device: Option<BackendKind>,
    /// Print the predictions as JSON
    #[arg(long)]
    json: bool,
    /// Images of single digits
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct SummaryArgs {
    /// Config whose model to describe [default: the default model, as in configs/lenet.json]
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Config whose model, optimizer, seed and loader workers to use [default: the defaults, the
    /// model and optimizer of configs/lenet.json]
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// BackendKind to measure; repeat for several [default: every compiled one]
    #[arg(long, value_enum, value_name = "NAME")]
    device: Vec<BackendKind>,
    /// Images per training batch; repeat for several
    #[arg(long, value_name = "N", default_value = "64")]
    batch_size: Vec<usize>,
    /// Timed training epochs (of all 60,000 training images)
    #[arg(long, value_name = "N", default_value_t = 1)]
    epochs: usize,
    /// Untimed training batches before the timed epochs
    #[arg(long, value_name = "N", default_value_t = 20)]
    warmup_batches: usize,
    /// Images per batch when timing evaluation on the test set
    #[arg(long, value_name = "N", default_value_t = 1000)]
    eval_batch_size: usize,
    /// Single-image predictions timed for the latency percentiles
    #[arg(long, value_name = "N", default_value_t = 200)]
    predict_samples: usize,
    /// Folder holding the MNIST IDX files (as for training)
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print each result as one JSON line on stdout (the readable line goes to stderr)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// A run directory written by training, e.g. artifacts/lenet
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// The safetensors file to write
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `lenet ... | head` would panic on the next print once `head`
    // exits; restore the default and end quietly, as other command-line tools do.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        None => train_command(&cli.train),
        Some(Command::Train(args)) => train_command(args),
        Some(Command::Resume(args)) => resume_command(args),
        Some(Command::Eval(args)) => eval_command(args),
        Some(Command::Predict(args)) => predict_command(args),
        Some(Command::Summary(args)) => summary_command(args),
        Some(Command::Export(args)) => export_command(args),
        Some(Command::Bench(args)) => bench_command(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            if let lenet::Error::Interrupted { run_dir, .. } = &error {
                eprintln!(
                    "to resume: {} resume --run {}",
                    invocation(),
                    run_dir.display()
                );
            }
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

fn train_command(args: &TrainArgs) -> Result<ExitCode, lenet::Error> {
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

fn resume_command(args: &ResumeArgs) -> Result<ExitCode, lenet::Error> {
    let mut config = run::prepare_resume(&args.run)?;
    config.apply(&Overrides {
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
fn invocation() -> String {
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
        "Next: lenet eval --run {0}   |   lenet predict --run {0} digit.png",
        summary.run_dir.display()
    );
}

fn eval_command(args: &EvalArgs) -> Result<ExitCode, lenet::Error> {
    let outcome = eval_run(
        &args.run,
        &EvalOptions {
            data_dir: args.data_dir.clone(),
            device: args.device,
            progress: true,
        },
    )?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome.report).expect("report serialises")
        );
    } else {
        print!("{}", outcome.report.to_table());
        println!("\nBackend: {}", outcome.backend);
        println!("Written:");
        for file in &outcome.files {
            println!("  {}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn predict_command(args: &PredictArgs) -> Result<ExitCode, lenet::Error> {
    let run = FinishedRun::load(&args.run, args.device)?;
    let results = predict_files(&run.model, &args.images, &run.device);
    let failed = results.iter().filter(|r| r.is_err()).count();
    if args.json {
        let entries: Vec<serde_json::Value> = results
            .iter()
            .zip(&args.images)
            .map(|(r, file)| match r {
                Ok(p) => serde_json::to_value(p).expect("prediction serialises"),
                Err(e) => serde_json::json!({ "file": file, "error": e.to_string() }),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).expect("json serialises")
        );
    } else {
        for result in &results {
            match result {
                Ok(p) => {
                    let top3: Vec<String> = p
                        .top3
                        .iter()
                        .map(|c| format!("{} {:.1}%", c.digit, c.probability * 100.0))
                        .collect();
                    println!(
                        "{}: {} ({:.1}%)   top 3: {}",
                        p.file.display(),
                        p.digit,
                        p.probability * 100.0,
                        top3.join(", ")
                    );
                }
                Err(e) => eprintln!("error: {e}"),
            }
        }
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn summary_command(args: &SummaryArgs) -> Result<ExitCode, lenet::Error> {
    let config = match &args.config {
        Some(path) => TrainingConfig::load(path)?,
        None => TrainingConfig::default(),
    };
    let device = BackendKind::preferred().device()?;
    let model_config = config.model.to_model_config();
    let model = model_config.init(&device);
    print!("{}", layer_table(&model_config, &model.layers(&device)));
    Ok(ExitCode::SUCCESS)
}

fn export_command(args: &ExportArgs) -> Result<ExitCode, lenet::Error> {
    let run = FinishedRun::load(&args.run, None)?;
    let bytes = to_safetensors(&run.model, &run.config.model.to_model_config())?;
    write_atomic(&args.out, &bytes)?;
    println!(
        "Wrote {}: weights and biases of c1, c3, c5 (Conv2d) and f6, f7 (Linear) in PyTorch's layout",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_command(args: &BenchArgs) -> Result<ExitCode, lenet::Error> {
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

//! The command line: what each command and flag is, as clap reads them, with values checked
//! in words people use ("a whole number >= 1"). The commands themselves are in [`train`],
//! [`inference`], [`explain`], [`serve`] and [`bench`]; they call the library and print what it
//! returns.
//! [`error`] gathers the library's errors and decides the exit codes.

pub mod bench;
pub mod error;
pub mod explain;
pub mod inference;
pub mod serve;
pub mod sweep;
pub mod train;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lenet::device::BackendKind;
use lenet::run::{ModelChoice, invocation};

/// Train LeNet-5 with Burn on MNIST, another IDX data set or your own image folders, then
/// evaluate, use and export it.
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
    subcommand_negates_reqs = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train LeNet-5 on MNIST or your own data (what `lenet --config FILE` does)
    Train(TrainArgs),
    /// Continue an interrupted run from its newest checkpoint (what `--resume` does, given only
    /// the run directory), or a finished one to more epochs with --epochs
    Resume(ResumeArgs),
    /// Evaluate a finished run on the test set: accuracy, per-class precision and recall,
    /// confusion matrix, and the worst mistakes as pictures (written to RUN/eval/)
    Eval(EvalArgs),
    /// Classify images (PNG, JPEG, BMP, WebP, TIFF or GIF; drawings or photos, any size, colour
    /// or polarity) with a run's model, prepared as the run's data was
    Predict(PredictArgs),
    /// Show what each layer of a run's model makes of images (feature maps, dense layers,
    /// saliency) as figures or JSON, or the learned filters with --filters
    Explain(ExplainArgs),
    /// Print the model's layers: kind, output shape and parameters
    Summary(SummaryArgs),
    /// Write a run's model as safetensors in PyTorch's layout and names, or as an ONNX graph
    Export(ExportArgs),
    /// Make a run folder from PyTorch-layout safetensors weights and a config, so that eval,
    /// predict and export use a model trained elsewhere
    Import(ImportArgs),
    /// Measure training, evaluation and prediction speed on each compiled backend, the same way
    /// benches/pytorch_reference.py measures PyTorch (benches/compare.sh runs the two)
    Bench(BenchArgs),
    /// A local web app over the runs: curves (live while training), evaluation, runs compared,
    /// and a canvas to draw a digit (or any class) for a run's model
    Serve(ServeArgs),
    /// List the runs under the artifacts folder: config, epochs, test accuracy, state
    Runs(RunsArgs),
    /// Many runs from one sweep file (W&B's form): a grid or a random search over config keys,
    /// run here N at a time or as a SLURM job array, ranked by a metric (`lenet sweep report`)
    Sweep(SweepArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training config (JSON), e.g. configs/lenet.json
    #[arg(long, short, value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,
    /// Number of epochs (config: epochs)
    #[arg(long, value_name = "N", value_parser = whole_number(1usize))]
    pub epochs: Option<usize>,
    /// Images per batch (config: batch_size)
    #[arg(long, value_name = "N", value_parser = whole_number(1usize))]
    pub batch_size: Option<usize>,
    /// Initial learning rate (config: optimizer.learning_rate)
    #[arg(long, value_name = "LR", value_parser = positive_number)]
    pub learning_rate: Option<f64>,
    /// Seed for weight init, data order and validation split (config: seed)
    #[arg(long, value_name = "N", value_parser = whole_number(0u64))]
    pub seed: Option<u64>,
    #[arg(long, value_name = "NAME", value_parser = device, help = device_help(
        "Backend to train on (config: device) [default: the most specific compiled one: vulkan, \
         wgpu, ndarray, then flex]"
    ))]
    pub device: Option<BackendKind>,
    /// Folder holding the four IDX files (raw or .gz), or the image folders of a "folder" data
    /// set (config: data.dir) [default for MNIST: $MNIST_DIR, then the user cache folder,
    /// downloaded there if missing]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where to write the run's outputs (config: artifact_dir) [default: artifacts/<config name>]
    #[arg(long, value_name = "DIR")]
    pub artifact_dir: Option<PathBuf>,
    /// Also log the run as TensorBoard event files in the run folder's tensorboard/, for
    /// `tensorboard --logdir artifacts` (config: tracking.tensorboard)
    #[arg(long)]
    pub tensorboard: bool,
    /// Also log the run to this MLflow tracking server, e.g. http://127.0.0.1:5000 (config:
    /// tracking.mlflow.uri; the experiment is tracking.mlflow.experiment, else
    /// $MLFLOW_EXPERIMENT_NAME, else lenet)
    #[arg(long, value_name = "URI")]
    pub mlflow: Option<String>,
    /// Print one line per epoch instead of showing the dashboard, even in a terminal
    #[arg(long)]
    pub no_tui: bool,
    /// Replace a run already in the output folder
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Continue the run in the output folder from its newest checkpoint (the config must be the
    /// one it started with)
    #[arg(long)]
    pub resume: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run directory of an interrupted run, e.g. artifacts/lenet
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Train to N epochs in all, more than the run has done, even if it finished. The learning
    /// rate schedule is planned anew for N epochs and continues from where the run is in it
    #[arg(long, value_name = "N", value_parser = whole_number(1usize))]
    pub epochs: Option<usize>,
    #[arg(long, value_name = "NAME", value_parser = device,
        help = device_help("Backend to continue on [default: the run's]"))]
    pub device: Option<BackendKind>,
    /// Folder holding the data set (IDX files or image folders) [default: the one the run was
    /// trained from]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print one line per epoch instead of showing the dashboard, even in a terminal
    #[arg(long)]
    pub no_tui: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory written by training, e.g. artifacts/lenet
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Folder holding the data set (IDX files or image folders) [default: the one the run was
    /// trained from]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_name = "NAME", value_parser = device,
        help = device_help("Backend to evaluate on [default: the run's, if compiled in]"))]
    pub device: Option<BackendKind>,
    /// Print the report as JSON instead of tables
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArg,
}

/// `--model best|last`, shared by the commands that use a run's model.
#[derive(Debug, Args)]
pub struct ModelArg {
    /// Which of the run's models: last, the weights after the final epoch, which the run's
    /// summary tests; or best, the best epoch's by validation (model_best.bpk)
    #[arg(
        long = "model",
        value_enum,
        value_name = "WHICH",
        default_value = "last"
    )]
    pub choice: ModelChoice,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A run directory written by training, e.g. artifacts/lenet
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    #[arg(long, value_name = "NAME", value_parser = device,
        help = device_help("Backend to run the model on [default: the run's, if compiled in]"))]
    pub device: Option<BackendKind>,
    /// Print the predictions as JSON: the answer, every class's probability, the warnings
    #[arg(long)]
    pub json: bool,
    /// Write the 28x28 image the model saw for each input into DIR, as <name>.png
    #[arg(long, value_name = "DIR")]
    pub save_input: Option<PathBuf>,
    /// Refuse images of more pixels than N, from their header, before decoding them
    /// [default: the run's data.max_image_pixels, 50,000,000 unless set]
    #[arg(long, value_name = "N", value_parser = whole_number(1u64))]
    pub max_image_pixels: Option<u64>,
    #[command(flatten)]
    pub model: ModelArg,
    /// Images of single digits, folders of them, or patterns such as 'digits/*.png'
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A run directory written by training, e.g. artifacts/lenet
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    #[arg(long, value_name = "NAME", value_parser = device,
        help = device_help("Backend to run the model on [default: the run's, if compiled in]"))]
    pub device: Option<BackendKind>,
    /// Write a figure per image into DIR, as <name>.png (with --filters: DIR/filters.png)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print every layer's values as JSON instead of a summary
    #[arg(long)]
    pub json: bool,
    /// Refuse images of more pixels than N, from their header, before decoding them
    /// [default: the run's data.max_image_pixels, 50,000,000 unless set]
    #[arg(long, value_name = "N", value_parser = whole_number(1u64))]
    pub max_image_pixels: Option<u64>,
    /// Show the learned filters (C1's and C3's kernels; the 1998 network's connection table
    /// and RBF prototypes) instead of images
    #[arg(long, conflicts_with = "images")]
    pub filters: bool,
    #[command(flatten)]
    pub model: ModelArg,
    /// Images (as for predict: files, folders, patterns), prepared as predict prepares them
    #[arg(value_name = "IMAGE", required_unless_present = "filters")]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Config whose model to describe [default: the default model, as in configs/lenet.json]
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Config whose model, optimizer, seed and loader workers to use [default: the defaults, the
    /// model and optimizer of configs/lenet.json]
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, value_name = "NAME", value_parser = device,
        help = device_help("Backend to measure; repeat for several [default: every compiled one]"))]
    pub device: Vec<BackendKind>,
    /// Images per training batch; repeat for several
    #[arg(long, value_name = "N", default_value = "64", value_parser = whole_number(1usize))]
    pub batch_size: Vec<usize>,
    /// Timed training epochs (of all 60,000 training images)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = whole_number(1usize))]
    pub epochs: usize,
    /// Untimed training batches before the timed epochs
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = whole_number(0usize))]
    pub warmup_batches: usize,
    /// Images per batch when timing evaluation on the test set
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = whole_number(1usize))]
    pub eval_batch_size: usize,
    /// Single-image predictions timed for the latency percentiles
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = whole_number(1usize))]
    pub predict_samples: usize,
    /// Folder holding the data set (as for training)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print each result as one JSON line on stdout (the readable line goes to stderr)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run directory written by training, e.g. artifacts/lenet
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// The file to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// safetensors: the weights in PyTorch's layout; onnx: the whole network, for ONNX runtimes
    #[arg(long, value_enum, default_value = "safetensors")]
    pub format: ExportFormat,
    /// With --format onnx: a second output, `probabilities`, the softmax of the logits
    #[arg(long)]
    pub probabilities: bool,
    #[command(flatten)]
    pub model: ModelArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Safetensors,
    Onnx,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Safetensors weights in PyTorch's layout and names (c1, c3, c5: Conv2d; f6, f7: Linear)
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// The config whose model the weights are for, e.g. configs/lenet.json
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The run folder to make
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The folder whose runs to serve (each run a folder in it)
    #[arg(long, value_name = "DIR", default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// The port to listen on; 0 picks a free one
    #[arg(long, value_name = "N", default_value_t = 8080, value_parser = whole_number(0u16))]
    pub port: u16,
    /// The address to listen on; 127.0.0.1 (the default) lets only this machine in, 0.0.0.0
    /// every machine that can reach it
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Folder holding the data set, for evaluations and test images of runs whose own data
    /// folder is gone (trained elsewhere, or moved) [default: each run's own]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_name = "NAME", value_parser = device,
        help = device_help("Backend to run the models on [default: each run's, if compiled in]"))]
    pub device: Option<BackendKind>,
    /// Refuse uploaded images of more pixels than N, from their header, before decoding them
    /// [default: each run's data.max_image_pixels, 50,000,000 unless set]
    #[arg(long, value_name = "N", value_parser = whole_number(1u64))]
    pub max_image_pixels: Option<u64>,
    /// Require this token on every API request (Authorization: Bearer TOKEN, or ?token=TOKEN,
    /// which the printed address carries)
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LENET_SERVE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Also answer requests addressed to this host name (the server answers only its own
    /// address, and localhost on a loopback address); repeat for several
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The folder whose runs to list (each run a folder in it)
    #[arg(long, value_name = "DIR", default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Print the runs as JSON, as `GET /api/runs` of `lenet serve` gives them
    #[arg(long)]
    pub json: bool,
}

/// `lenet sweep --config FILE` runs a sweep; `lenet sweep report --sweep DIR` ranks its trials.
///
/// Each trial is an ordinary run folder, DIR/<sweep name>/<trial>/, so eval, predict, export,
/// serve and resume work on it. Running the same sweep again skips the trials that are done and
/// resumes the stopped ones; Ctrl-C stops every trial with a checkpoint. docs/sweeps.md has the
/// sweep file's keys.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub command: Option<SweepCommand>,
    #[command(flatten)]
    pub run: SweepRunArgs,
}

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// The trials of a sweep ranked by its metric: the values that vary, the test figures, the
    /// state of each, and the best named
    Report(SweepReportArgs),
}

#[derive(Debug, Args)]
pub struct SweepRunArgs {
    /// The sweep file (JSON, in W&B's sweep form), e.g. configs/sweeps/speedrun-lr-batch.json
    #[arg(long, short, value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,
    /// Trials trained at a time on this machine, each in a process of its own [default: the
    /// cores divided by the sweep's threads_per_trial (1 unless set): a trial per core; one at a
    /// time on a GPU backend]
    #[arg(long, value_name = "N", value_parser = whole_number(1usize))]
    pub parallel: Option<usize>,
    /// The folder the sweep's own folder goes in: DIR/<sweep name>/<trial>/ [default: artifacts]
    #[arg(long, value_name = "DIR")]
    pub artifact_dir: Option<PathBuf>,
    /// Folder holding the data set, for every trial (config: data.dir)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Train only trial N (from 1), in this process, new or resumed: what each of the sweep's
    /// processes, and each SLURM array task, runs
    #[arg(long, value_name = "N", value_parser = whole_number(1usize),
        conflicts_with_all = ["parallel", "slurm"])]
    pub trial: Option<usize>,
    /// Submit the sweep to SLURM with sbatch: a job array of one task per trial that is not
    /// done, each on threads_per_trial CPUs (1 without it), on the shared filesystem
    #[arg(long, conflicts_with = "parallel")]
    pub slurm: bool,
    /// An sbatch option for the job array, passed through; repeat for several, e.g.
    /// --slurm-arg=--partition=short --slurm-arg=--time=0:30:00
    #[arg(
        long,
        value_name = "ARG",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    pub slurm_arg: Vec<String>,
    /// With --slurm: print the job script instead of submitting it
    #[arg(long, requires = "slurm")]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SweepReportArgs {
    /// The sweep's folder, e.g. artifacts/speedrun-lr-batch
    #[arg(long, value_name = "DIR")]
    pub sweep: PathBuf,
    /// Print the report as JSON: {"metric", "goal", "trials": [{"run", "parameters", "metric",
    /// "test_accuracy", "state", ...}]}, best first
    #[arg(long)]
    pub json: bool,
}

/// Parses a whole number of at least `min`, saying so in those words when the text is not one.
fn whole_number<T>(min: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |text| match text.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("expected a whole number >= {min}")),
    }
}

fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err("expected a positive number".to_string()),
    }
}

/// A backend by name. Every backend's name is accepted here, so that asking for one that is not
/// compiled in gets the library's message about the `--features` that would compile it.
fn device(text: &str) -> Result<BackendKind, String> {
    BackendKind::from_str(text, true).map_err(|_| {
        format!(
            "expected one of the devices compiled into this binary: {}",
            compiled_names()
        )
    })
}

fn compiled_names() -> String {
    BackendKind::compiled()
        .iter()
        .map(|b| b.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `--device` flag's help, ending with the devices this binary can use.
fn device_help(what: &str) -> String {
    format!("{what} [compiled in: {}]", compiled_names())
}

/// What to do with a finished run in `run_dir` next, as commands to copy.
pub fn next_steps(run_dir: &std::path::Path) -> String {
    format!(
        "Next: {0} eval --run {1}   |   {0} predict --run {1} image.png",
        invocation(),
        run_dir.display()
    )
}

/// A PNG name for each of `files`, after its stem (`digit.jpg` -> `digit.png`), numbered where
/// two files share a stem (`digit-2.png`).
pub fn png_names<'a>(files: impl Iterator<Item = &'a std::path::Path>) -> Vec<String> {
    let mut used = std::collections::HashSet::new();
    files
        .map(|file| {
            let stem = file
                .file_stem()
                .map_or("image".into(), |s| s.to_string_lossy().into_owned());
            (1..)
                .map(|n| match n {
                    1 => format!("{stem}.png"),
                    n => format!("{stem}-{n}.png"),
                })
                .find(|name| used.insert(name.clone()))
                .expect("some name is free")
        })
        .collect()
}

/// A clap error as one line: its message without the usage and the hint that follow.
pub fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let message = rendered
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    format!("{message} (see --help)")
}

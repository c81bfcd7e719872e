//! `lenet sweep`: the trials of a sweep file run here (N at a time, a line per trial as it
//! starts and ends, a bar for the whole), one trial in this process (`--trial N`, what each
//! SLURM array task runs), or submitted to SLURM; and `lenet sweep report`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use lenet::device::BackendKind;
use lenet::run::invocation;
use lenet::sweep::hyperband::rungs;
use lenet::sweep::local::{self, Event, LocalRun};
use lenet::sweep::plan::brief;
use lenet::sweep::report::figure;
use lenet::sweep::slurm::{self, SCRIPT_FILE};
use lenet::sweep::trial::{self, TrialStart};
use lenet::sweep::{SweepError, SweepPlan, SweepReport, Trial, TrialState, TrialStatus};

use super::error::Error;
use super::{SweepArgs, SweepCommand, SweepReportArgs, SweepRunArgs};

pub fn sweep_command(args: &SweepArgs) -> Result<ExitCode, Error> {
    match &args.command {
        Some(SweepCommand::Report(report)) => report_command(report),
        None => run_command(&args.run),
    }
}

fn run_command(args: &SweepRunArgs) -> Result<ExitCode, Error> {
    let file = args.config.as_deref().expect("clap requires --config");
    let plan = SweepPlan::load(file, args.artifact_dir.as_deref(), args.data_dir.as_deref())?;
    if let Some(number) = args.trial {
        return trial_command(&plan, number);
    }
    for warning in plan.warnings() {
        eprintln!("warning: {warning}");
    }
    if args.slurm {
        slurm_command(&plan, args, file)
    } else {
        local_command(&plan, args, file)
    }
}

/// `--trial N`: the trial trained in this process, as `lenet train` trains a run.
fn trial_command(plan: &SweepPlan, number: usize) -> Result<ExitCode, Error> {
    let trial = plan.trial(number)?;
    let (options, tracked) = super::train::options(true);
    let start = trial::start(plan, number, &options)?;
    println!(
        "Sweep {}, trial {number} of {}: {}",
        plan.spec.name,
        plan.trials.len(),
        values(plan, trial)
    );
    match start {
        TrialStart::Done { state, dir } => {
            println!(
                "Already {}, left as it is: {}",
                state.as_str(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        TrialStart::Ready { training, resumed } => {
            if resumed {
                println!("Resuming it from its newest checkpoint");
            }
            super::train::train(*training, &tracked)
        }
    }
}

/// The trial's values of the parameters that vary: `batch_size=64, optimizer.learning_rate=0.002`.
fn values(plan: &SweepPlan, trial: &Trial) -> String {
    let values = plan.varied_values(trial);
    if values.is_empty() {
        return "the base config".to_string();
    }
    values
        .iter()
        .map(|(key, value)| format!("{key}={}", brief(value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Trials at a time and threads each: as asked, else the cores shared out a thread each, or on
/// a GPU one trial at a time. On these 2 cores two speedrun trials of a thread each took 26.1 s
/// together, one of two threads 21.2 s alone: 1.6x the trials an hour.
fn shares(
    cores: usize,
    parallel: Option<usize>,
    threads: Option<usize>,
    gpu: bool,
) -> (usize, usize) {
    match (parallel, threads) {
        (Some(parallel), Some(threads)) => (parallel, threads),
        (Some(parallel), None) => (parallel, (cores / parallel).max(1)),
        (None, threads) if gpu => (1, threads.unwrap_or(cores)),
        (None, Some(threads)) => ((cores / threads).max(1), threads),
        (None, None) => (cores, 1),
    }
}

/// The sweep's arguments for a process that trains one trial.
fn trial_arguments(
    file: &Path,
    artifact_dir: Option<&Path>,
    data_dir: Option<&Path>,
) -> Vec<PathBuf> {
    let mut arguments: Vec<PathBuf> = vec!["sweep".into(), "--config".into(), file.into()];
    if let Some(dir) = artifact_dir {
        arguments.extend(["--artifact-dir".into(), dir.into()]);
    }
    if let Some(dir) = data_dir {
        arguments.extend(["--data-dir".into(), dir.into()]);
    }
    arguments
}

fn local_command(plan: &SweepPlan, args: &SweepRunArgs, file: &Path) -> Result<ExitCode, Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gpu = plan.trials.iter().any(|trial| {
        plan.config(trial).is_ok_and(|c| {
            matches!(
                c.device.unwrap_or_else(BackendKind::preferred),
                BackendKind::Wgpu | BackendKind::Vulkan
            )
        })
    });
    let (parallel, threads) = shares(cores, args.parallel, plan.spec.threads_per_trial, gpu);
    let count = plan.trials.len();
    // A folder holding another sweep is refused before anything is said of this one.
    lenet::sweep::folder::open(plan)?;
    println!("{}", header(plan));
    println!(
        "Running {} at a time, {threads} thread{} each, into {} (each trial a run \
         folder; its output in logs/)",
        parallel.min(count),
        if threads == 1 { "" } else { "s" },
        plan.dir.display()
    );
    let program = std::env::current_exe().map_err(|source| SweepError::Spawn {
        program: "lenet".to_string(),
        source,
    })?;
    let arguments = trial_arguments(file, args.artifact_dir.as_deref(), args.data_dir.as_deref());
    let command = |trial: &Trial| {
        let mut command = Command::new(&program);
        command
            .args(&arguments)
            .arg("--trial")
            .arg(trial.number.to_string());
        command
    };
    let stop = stop_on_ctrl_c();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} epochs  {elapsed_precise}")
            .expect("the template is valid"),
    );
    let tag = |trial: &Trial| {
        format!(
            "[{:>w$}/{count}]",
            trial.number,
            w = count.to_string().len()
        )
    };
    let metric = plan.spec.metric.name;
    let say = |line: String| bar.suspend(|| println!("{line}"));
    let outcome = local::run(
        &LocalRun {
            plan,
            parallel,
            threads,
            command: &command,
            stop: &stop,
        },
        &mut |event| match event {
            Event::Skipped { trial, status } => say(match status.state {
                TrialState::Training => format!(
                    "{} {}: training in another process; left to it",
                    tag(trial),
                    trial.name
                ),
                state => format!("{} {}: already {}", tag(trial), trial.name, state.as_str()),
            }),
            Event::Started {
                trial,
                resumed,
                log,
            } => say(format!(
                "{} {} {}  (log: {})",
                tag(trial),
                if resumed { "resumed" } else { "started" },
                trial.name,
                log.strip_prefix(&plan.dir).unwrap_or(log).display()
            )),
            Event::Ended {
                trial,
                status,
                seconds,
                log,
            } => say(ended(&tag(trial), trial, status, metric, seconds, log)),
            Event::Epochs { done, total } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            Event::Stopping { running } => say(format!(
                "Stopping {running} trial{} at the next batch, each with a checkpoint; Ctrl-C \
                 again quits at once",
                if running == 1 { "" } else { "s" }
            )),
        },
    )?;
    bar.finish_and_clear();
    println!();
    print!("{}", SweepReport::read(&plan.dir, false)?);
    let folder = plan.dir.display();
    if outcome.stopped {
        eprintln!(
            "Stopped: run the same command again to resume the stopped trials from their \
             checkpoints"
        );
        return Ok(ExitCode::from(130));
    }
    if !outcome.failed.is_empty() {
        let failed: Vec<String> = outcome.failed.iter().map(|n| n.to_string()).collect();
        eprintln!(
            "error: trial{} {} failed; {folder}/logs/ has what each printed",
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "Next: {0} sweep report --sweep {folder}   |   {0} serve --artifacts {1} (the sweep's page)",
        invocation(),
        plan.dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What the sweep is: its trials, what varies, its metric, its rungs.
fn header(plan: &SweepPlan) -> String {
    let spec = &plan.spec;
    let over = if plan.varied.is_empty() {
        String::new()
    } else {
        format!(" over {}", plan.varied.join(", "))
    };
    let mut text = format!(
        "Sweep {}: {} trial{} ({}{over}), ranked by {} ({})",
        spec.name,
        plan.trials.len(),
        if plan.trials.len() == 1 { "" } else { "s" },
        match spec.method {
            lenet::sweep::spec::Method::Grid => "grid",
            lenet::sweep::spec::Method::Random => "random",
        },
        spec.metric.name.as_str(),
        spec.metric.goal.as_str()
    );
    if let Some(rule) = &spec.early_terminate {
        let epochs = plan
            .trials
            .iter()
            .filter_map(|t| plan.config(t).ok().map(|c| c.epochs))
            .max()
            .unwrap_or(0);
        let rungs: Vec<String> = rungs(rule, epochs).iter().map(|r| r.to_string()).collect();
        text += &format!(
            "\nHyperband: trials judged at epoch{} {} (min_iter {}, eta {}); the best 1/{} go on",
            if rungs.len() == 1 { "" } else { "s" },
            if rungs.is_empty() {
                "none: every trial ends first".to_string()
            } else {
                rungs.join(", ")
            },
            rule.min_iter,
            rule.eta,
            rule.eta
        );
    }
    text
}

/// The line for a trial that ended.
fn ended(
    tag: &str,
    trial: &Trial,
    status: &TrialStatus,
    metric: lenet::sweep::MetricName,
    seconds: f64,
    log: &Path,
) -> String {
    let summary = status.summary.as_ref();
    let figures = || {
        format!(
            "{} {}, test accuracy {}",
            metric.as_str(),
            figure(metric, summary.and_then(|s| metric.of_summary(s))),
            lenet::report::percent(summary.map(|s| s.test_accuracy))
        )
    };
    let message = status.message.as_deref().unwrap_or("no reason given");
    match status.state {
        TrialState::Finished => format!(
            "{tag} finished {}: {}, {seconds:.1} s",
            trial.name,
            figures()
        ),
        TrialState::Terminated => format!(
            "{tag} terminated {} after epoch {}: {}; {}",
            trial.name,
            status.history.len(),
            summary
                .and_then(|s| s.stopped_by.clone())
                .unwrap_or_default(),
            figures()
        ),
        TrialState::Stopped => format!(
            "{tag} stopped {}: {message}; resumed when the sweep runs again ({})",
            trial.name,
            log.display()
        ),
        state => format!(
            "{tag} {} {}: {message} ({})",
            state.as_str(),
            trial.name,
            log.display()
        ),
    }
}

/// The first Ctrl-C stops every trial at its next batch with a checkpoint; the second quits
/// at once (each trial then quits too, its previous checkpoint intact).
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let presses = AtomicUsize::new(0);
    let installed = ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            flag.store(true, Ordering::SeqCst);
        } else {
            eprintln!("Quit; each stopped trial keeps its previous checkpoint.");
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will end the sweep without stopping its trials cleanly: {e}");
    }
    stop
}

fn slurm_command(plan: &SweepPlan, args: &SweepRunArgs, file: &Path) -> Result<ExitCode, Error> {
    let absolute = |path: &Path| {
        std::path::absolute(path).map_err(|e| SweepError::Usage {
            message: format!("{}: {e}", path.display()),
        })
    };
    let program = std::env::current_exe().map_err(|source| SweepError::Spawn {
        program: "lenet".to_string(),
        source,
    })?;
    let artifact_dir = absolute(plan.dir.parent().unwrap_or(Path::new(".")))?;
    let data_dir = match &args.data_dir {
        Some(dir) => Some(absolute(dir)?),
        None => None,
    };
    let mut command = vec![program.to_string_lossy().into_owned()];
    command.extend(
        trial_arguments(&absolute(file)?, Some(&artifact_dir), data_dir.as_deref())
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    let cpus = plan.spec.threads_per_trial.unwrap_or(1);
    let job = slurm::job_array(plan, &command, cpus, &args.slurm_arg)?;
    let folder = plan.dir.display();
    if args.dry_run && !job.trials.is_empty() {
        print!("{}", job.script);
        return Ok(ExitCode::SUCCESS);
    }
    if job.trials.is_empty() {
        println!(
            "Every trial of sweep {} is done or training: nothing to submit ({} sweep report \
             --sweep {folder})",
            plan.spec.name,
            invocation()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", header(plan));
    // Downloaded once here (MNIST, when no folder has it) rather than by every task at once.
    local::locate_data(plan)?;
    let id = slurm::submit(plan, &job)?;
    println!(
        "Submitted job {id}: {} array task{} for trials {}, {cpus} CPU{} each",
        job.trials.len(),
        if job.trials.len() == 1 { "" } else { "s" },
        slurm::ranges(&job.trials),
        if cpus == 1 { "" } else { "s" }
    );
    println!(
        "Script: {folder}/{SCRIPT_FILE}; each task's output: {folder}/logs/slurm-{id}_<trial>.log"
    );
    println!(
        "Watch: squeue -j {id}   |   {} sweep report --sweep {folder}",
        invocation()
    );
    Ok(ExitCode::SUCCESS)
}

fn report_command(args: &SweepReportArgs) -> Result<ExitCode, Error> {
    let report = SweepReport::read(&args.sweep, false)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serialises")
        );
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cores_are_shared_out_as_asked() {
        assert_eq!(shares(16, None, None, false), (16, 1));
        assert_eq!(shares(16, None, None, true), (1, 16));
        assert_eq!(shares(16, Some(4), None, false), (4, 4));
        assert_eq!(shares(16, None, Some(2), false), (8, 2));
        assert_eq!(shares(2, Some(4), None, false), (4, 1));
        assert_eq!(shares(2, Some(3), Some(2), true), (3, 2));
        assert_eq!(shares(16, None, Some(2), true), (1, 2));
    }
}

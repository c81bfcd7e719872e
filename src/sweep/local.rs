//! A sweep run on this machine: its trials `parallel` at a time, each in a process of its own
//! running `lenet sweep --trial N` (as a SLURM array task does) with its share of the cores,
//! its output in the sweep's `logs/`. Processes rather than threads because a process trains
//! one run at a time (Burn's random generator is the process's), and a trial that fails or is
//! killed takes nothing else with it.
//!
//! A stop (Ctrl-C) is passed to every trial once, as their own Ctrl-C: each stops at its next
//! batch with a checkpoint, which the next run of the sweep resumes. The trials run in process
//! groups of their own, so a terminal's Ctrl-C reaches them only through the sweep, once; and
//! should the sweep itself be killed, each trial is told to stop as if by Ctrl-C.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::error::SweepError;
use super::folder::{self, LOGS_DIR, TrialState, TrialStatus};
use super::plan::SweepPlan;
use super::record::Trial;
use crate::data::source::locate_dataset;
use crate::data::{DatasetKind, idx};
use crate::run::RunLock;

/// How the sweep is run here.
pub struct LocalRun<'a> {
    pub plan: &'a SweepPlan,
    /// Trials at a time.
    pub parallel: usize,
    /// Threads each trial computes with (`RAYON_NUM_THREADS`).
    pub threads: usize,
    /// The process that trains one trial: `lenet sweep ... --trial N`.
    pub command: &'a dyn Fn(&Trial) -> Command,
    /// Set (by Ctrl-C) to stop every trial at its next batch, with a checkpoint.
    pub stop: &'a AtomicBool,
}

/// What happens, as it happens, for the caller to show.
pub enum Event<'a> {
    /// The trial is left as it is: done, or trained by another process now.
    Skipped {
        trial: &'a Trial,
        status: &'a TrialStatus,
    },
    Started {
        trial: &'a Trial,
        resumed: bool,
        log: &'a Path,
    },
    Ended {
        trial: &'a Trial,
        status: &'a TrialStatus,
        seconds: f64,
        log: &'a Path,
    },
    /// Epochs done of all the trials', for a progress bar; the total shrinks as hyperband
    /// terminates trials.
    Epochs { done: usize, total: usize },
    /// The stop was passed to the trials; they are writing their checkpoints.
    Stopping { running: usize },
}

/// How the run ended.
#[derive(Debug, Default)]
pub struct LocalOutcome {
    /// Stopped before every trial was done.
    pub stopped: bool,
    /// The trials that failed in this run.
    pub failed: Vec<usize>,
}

struct Running<'a> {
    trial: &'a Trial,
    child: Child,
    started: Instant,
    log: PathBuf,
}

/// The trials running now. Any still running when it is dropped (the sweep ending on an error)
/// are stopped as by Ctrl-C and waited for: none outlives the sweep, or loses its checkpoint.
struct Trials<'a>(Vec<Running<'a>>);

impl<'a> std::ops::Deref for Trials<'a> {
    type Target = Vec<Running<'a>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Trials<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Trials<'_> {
    fn drop(&mut self) {
        for run in self.0.iter() {
            interrupt(&run.child);
        }
        for run in self.0.iter_mut() {
            let _ = run.child.wait();
        }
    }
}

/// How often the trials are looked at.
const POLL: Duration = Duration::from_millis(200);

/// Runs the sweep's trials that are not done, telling `on_event` how it goes.
pub fn run(
    local: &LocalRun<'_>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<LocalOutcome, SweepError> {
    let plan = local.plan;
    folder::open(plan)?;
    // One sweep process at a time in the folder (its trials lock their own folders).
    let _lock = RunLock::acquire(&plan.dir)?;
    let mut planned: Vec<usize> = Vec::new();
    let mut epochs: Vec<(usize, usize)> = Vec::new();
    let mut waiting: Vec<&Trial> = Vec::new();
    for trial in &plan.trials {
        let status = TrialStatus::read(&plan.trial_dir(trial));
        planned.push(plan.config(trial)?.epochs);
        epochs.push(epochs_of(&status, planned[planned.len() - 1]));
        if status.state.is_done() || status.state == TrialState::Training {
            on_event(Event::Skipped {
                trial,
                status: &status,
            });
        } else {
            waiting.push(trial);
        }
    }
    waiting.reverse();
    // Downloaded once here (MNIST, when no folder has it) rather than by every trial at once.
    locate_data(plan)?;
    let mut running = Trials(Vec::new());
    let mut outcome = LocalOutcome::default();
    let mut last_epochs = None;
    loop {
        if local.stop.load(Ordering::SeqCst) && !outcome.stopped {
            outcome.stopped = true;
            for run in running.iter() {
                interrupt(&run.child);
            }
            on_event(Event::Stopping {
                running: running.len(),
            });
        }
        while !outcome.stopped && running.len() < local.parallel {
            let Some(trial) = waiting.pop() else { break };
            let resumed = plan.trial_dir(trial).exists();
            let run = spawn(local, trial)?;
            on_event(Event::Started {
                trial,
                resumed,
                log: &run.log,
            });
            running.push(run);
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(POLL);
        let mut index = 0;
        while index < running.len() {
            let exited = running[index]
                .child
                .try_wait()
                .map_err(|source| spawn_error(local, source))?;
            if exited.is_none() {
                index += 1;
                continue;
            }
            let run = running.swap_remove(index);
            let status = TrialStatus::read(&plan.trial_dir(run.trial));
            let i = run.trial.number - 1;
            epochs[i] = epochs_of(&status, planned[i]);
            if status.state == TrialState::Failed || !status.state.is_done() && !outcome.stopped {
                outcome.failed.push(run.trial.number);
            }
            on_event(Event::Ended {
                trial: run.trial,
                status: &status,
                seconds: run.started.elapsed().as_secs_f64(),
                log: &run.log,
            });
        }
        for run in running.iter() {
            let i = run.trial.number - 1;
            epochs[i] = epochs_of(&TrialStatus::read(&plan.trial_dir(run.trial)), planned[i]);
        }
        let sum = epochs
            .iter()
            .fold((0, 0), |(done, total), (d, t)| (done + d, total + t));
        if last_epochs != Some(sum) {
            last_epochs = Some(sum);
            on_event(Event::Epochs {
                done: sum.0,
                total: sum.1,
            });
        }
    }
    outcome.stopped |= !waiting.is_empty();
    outcome.failed.sort_unstable();
    Ok(outcome)
}

/// A trial's epochs done and epochs to do: those it has, once it is finished or terminated.
fn epochs_of(status: &TrialStatus, planned: usize) -> (usize, usize) {
    let done = status.history.len();
    match status.state {
        TrialState::Finished | TrialState::Terminated => (done, done),
        _ => (done, planned),
    }
}

fn spawn<'a>(local: &LocalRun<'_>, trial: &'a Trial) -> Result<Running<'a>, SweepError> {
    let log = local
        .plan
        .dir
        .join(LOGS_DIR)
        .join(format!("{}.log", trial.name));
    let file = open_log(&log)?;
    let mut command = (local.command)(trial);
    command
        .env("RAYON_NUM_THREADS", local.threads.to_string())
        .stdin(Stdio::null())
        .stdout(
            file.try_clone()
                .map_err(crate::run::RunError::io(&log, "open"))?,
        )
        .stderr(file);
    detach(&mut command);
    let child = command
        .spawn()
        .map_err(|source| spawn_error(local, source))?;
    Ok(Running {
        trial,
        child,
        started: Instant::now(),
        log,
    })
}

fn spawn_error(local: &LocalRun<'_>, source: std::io::Error) -> SweepError {
    let program = (local.command)(&local.plan.trials[0])
        .get_program()
        .to_string_lossy()
        .into_owned();
    SweepError::Spawn { program, source }
}

/// The trial's log, added to: a resumed trial's output follows its first part.
fn open_log(path: &Path) -> Result<File, SweepError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(crate::run::RunError::io(dir, "create directory"))?;
    }
    Ok(OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(crate::run::RunError::io(path, "open"))?)
}

/// Where every trial's data is, found (and MNIST downloaded into the cache, if no folder holds
/// it) once for the sweep, so that trials started together do not each download it.
pub fn locate_data(plan: &SweepPlan) -> Result<(), SweepError> {
    let mut located: Vec<(DatasetKind, Option<PathBuf>)> = Vec::new();
    for trial in &plan.trials {
        let config = plan.config(trial)?;
        let key = (config.data.dataset, config.data.dir.clone());
        if !located.contains(&key) {
            locate_dataset(key.0, key.1.as_deref(), &idx::FILE_NAMES)?;
            located.push(key);
        }
    }
    Ok(())
}

/// A process group of the trial's own, and a Ctrl-C of its own should the sweep die first.
#[cfg(target_os = "linux")]
fn detach(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    // SAFETY: getpid, prctl and getppid are async-signal-safe; nothing else runs between fork
    // and exec.
    let sweep = unsafe { libc::getpid() };
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
            // The sweep died before the signal was asked for: the trial is not started.
            if libc::getppid() != sweep {
                return Err(std::io::Error::other("the sweep ended"));
            }
            Ok(())
        });
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn detach(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(not(unix))]
fn detach(_: &mut Command) {}

/// The trial's Ctrl-C: stop at the next batch, with a checkpoint.
#[cfg(unix)]
fn interrupt(child: &Child) {
    // SAFETY: signalling a child this process started and has not reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
}

#[cfg(not(unix))]
fn interrupt(_: &Child) {}

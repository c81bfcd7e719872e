//! A run killed or interrupted part-way and then resumed ends with exactly the weights of a run
//! that was never stopped, wherever the stop lands: real child processes killed or sent Ctrl-C,
//! and runs in this process stopped at each phase of an epoch through the progress hook. On real
//! MNIST (a few thousand images).

#![cfg(unix)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};

use burn::train::Interrupter;
use common::{lenet_process as lenet, real_mnist_dir, summary_of};
use lenet::config::{Ema, Overrides, TrainingConfig};
use lenet::data::loader::Position;
use lenet::inference::export::to_safetensors;
use lenet::run::FinishedRun;
use lenet::run::RunSummary;
use lenet::training::{Progress, StartMode, TrainOptions, TrainingError, train};

/// 2,000 training images in batches of 16: 125 steps per epoch, under a second each on flex
/// (CI runs these tests on ndarray too, about 8x slower).
const CONFIG: &str = r#"{
  "epochs": 3,
  "batch_size": 16,
  "seed": 11,
  "optimizer": { "type": "adam", "learning_rate": 0.001 },
  "lr_schedule": { "type": "cosine" },
  "data": { "validation_size": 300, "train_limit": 2000, "test_limit": 500 }
}"#;

struct Setup {
    _root: tempfile::TempDir,
    config: PathBuf,
    root: PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("resume.json");
        fs::write(&config, CONFIG).unwrap();
        Setup {
            config,
            root: root.path().to_path_buf(),
            _root: root,
        }
    })
}

fn train_args(run: &Path) -> Vec<String> {
    let setup = setup();
    vec![
        "--config".into(),
        setup.config.to_string_lossy().into_owned(),
        "--data-dir".into(),
        real_mnist_dir().to_string_lossy().into_owned(),
        "--artifact-dir".into(),
        run.to_string_lossy().into_owned(),
        "--no-tui".into(),
    ]
}

/// A training run in a child process, and the seconds its first epoch took, read from the
/// epoch line it prints.
struct Started {
    child: Child,
    first_epoch: Receiver<Duration>,
}

fn start(run: &Path) -> Started {
    start_with(train_args(run), Stdio::piped())
}

fn start_with(args: Vec<String>, stderr: Stdio) -> Started {
    let mut child = lenet()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let (sender, first_epoch) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    // Reads to the end, so that the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(seconds) = epoch_seconds(&line, 1) {
                let _ = sender.send(seconds);
            }
        }
    });
    Started { child, first_epoch }
}

/// The time at the end of the line `epoch <epoch>/N ... 0.3 s`.
fn epoch_seconds(line: &str, epoch: usize) -> Option<Duration> {
    let rest = line.strip_prefix("epoch ")?.trim_start();
    let (number, _) = rest.split_once('/')?;
    if number.parse::<usize>().ok()? != epoch {
        return None;
    }
    let seconds: f64 = line.strip_suffix(" s")?.rsplit(' ').next()?.parse().ok()?;
    Some(Duration::from_secs_f64(seconds))
}

/// The weights of a finished run, by name, as raw bytes.
fn weights(run: &Path) -> Vec<(String, Vec<u8>)> {
    let run = FinishedRun::load(run, None).unwrap();
    let bytes = to_safetensors(&run.model, &run.config.model.to_model_config()).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut weights: Vec<(String, Vec<u8>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect();
    weights.sort();
    weights
}

fn summary(run: &Path) -> RunSummary {
    summary_of(run)
}

/// The run nobody stopped, trained once and shared by the tests.
fn uninterrupted() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let run = setup().root.join("uninterrupted");
        let status = lenet().args(train_args(&run)).output().unwrap();
        assert!(status.status.success(), "{status:?}");
        run
    })
}

fn state_files(run: &Path) -> Vec<PathBuf> {
    fs::read_dir(run.join("checkpoints"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".state.ckpt"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits for the first checkpoint (the end of epoch 1), then a third of an epoch more, so that
/// the stop lands in the middle of epoch 2 however fast or loaded the machine is: a fixed wait
/// let a quick machine finish epoch 2 first.
fn wait_for_first_checkpoint(started: &mut Started, run: &Path) {
    let child = &mut started.child;
    let begun = Instant::now();
    let too_long = Duration::from_secs(300);
    let epoch = loop {
        match started.first_epoch.recv_timeout(Duration::from_millis(20)) {
            Ok(epoch) => break epoch,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => panic!("the run ended before its first epoch"),
        }
        assert!(begun.elapsed() < too_long, "no epoch line");
    };
    while state_files(run).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(begun.elapsed() < too_long, "no checkpoint");
        sleep(Duration::from_millis(5));
    }
    sleep(epoch / 3);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished before it could be stopped"
    );
}

fn resume(run: &Path) -> std::process::Output {
    let output = lenet()
        .args(["resume", "--run"])
        .arg(run)
        .arg("--no-tui")
        .output()
        .unwrap();
    assert!(output.status.success(), "resume failed: {output:?}");
    output
}

fn assert_same_as_uninterrupted(run: &Path) {
    assert_same_as_uninterrupted_except_resumed(run);
    assert!(summary(run).resumed);
}

fn assert_same_as_uninterrupted_except_resumed(run: &Path) {
    let reference = uninterrupted();
    assert!(
        weights(run) == weights(reference),
        "resumed weights differ from the uninterrupted run's"
    );
    let (resumed, whole) = (summary(run), summary(reference));
    assert_eq!(resumed.test_correct, whole.test_correct);
    assert_eq!(resumed.test_loss, whole.test_loss);
    assert!(!whole.resumed);
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_identical_weights() {
    let run = setup().root.join("killed");
    let mut started = start(&run);
    wait_for_first_checkpoint(&mut started, &run);
    let mut child = started.child;
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(!run.join("summary.json").exists());

    let output = resume(&run);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Resuming at epoch 2"), "{stdout}");
    assert_same_as_uninterrupted(&run);
}

#[test]
fn ctrl_c_checkpoints_at_a_batch_and_resumes_to_identical_weights() {
    let run = setup().root.join("interrupted");
    let mut started = start(&run);
    wait_for_first_checkpoint(&mut started, &run);
    let child = started.child;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("training stopped by Ctrl-C; checkpoint "),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "; to resume from its newest checkpoint: lenet resume --run {}",
            run.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(state_files(&run).len(), 2, "epoch 1's and the stop's");

    let output = resume(&run);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Resuming at epoch 2, after batch "),
        "{stdout}"
    );
    assert_same_as_uninterrupted(&run);
}

#[test]
fn a_damaged_newest_checkpoint_is_reported_and_the_previous_one_used() {
    let run = setup().root.join("damaged");
    let mut started = start(&run);
    wait_for_first_checkpoint(&mut started, &run);
    let mut child = started.child;
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));

    let mut states = state_files(&run);
    states.sort();
    let newest = states.last().unwrap().to_string_lossy().into_owned();
    let optim = PathBuf::from(newest.replace(".state.", ".optim."));
    let bytes = fs::read(&optim).unwrap();
    fs::write(&optim, &bytes[..bytes.len() / 2]).unwrap(); // as a crash mid-write would leave it

    let output = resume(&run);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("skipping a checkpoint that does not load")
            && stderr.contains(&*optim.to_string_lossy())
            && stderr.contains("truncated"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Resuming at epoch 2, after batch 0 of"),
        "{stdout}"
    );
    assert_same_as_uninterrupted(&run);
}

#[test]
fn resuming_with_a_different_config_is_refused() {
    let run = setup().root.join("changed");
    let mut started = start(&run);
    wait_for_first_checkpoint(&mut started, &run);
    let mut child = started.child;
    child.kill().unwrap();
    child.wait().unwrap();

    let output = lenet()
        .args(train_args(&run))
        .args(["--resume", "--learning-rate", "0.01"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("optimizer.learning_rate = 0.001, not 0.01"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

/// The epochs of a run as numbers that two identical runs share: loss and accuracy per split.
fn metrics(summary: &RunSummary) -> Vec<[Option<f64>; 4]> {
    summary
        .history
        .iter()
        .map(|e| {
            [
                e.train_loss,
                e.train_accuracy,
                e.valid_loss,
                e.valid_accuracy,
            ]
        })
        .collect()
}

/// The tests' config for a run in this process, writing to `run`.
fn config(run: &Path) -> TrainingConfig {
    let mut config = TrainingConfig::parse(Path::new("resume.json"), CONFIG).unwrap();
    config
        .apply(&Overrides {
            data_dir: Some(real_mnist_dir()),
            artifact_dir: Some(run.to_path_buf()),
            ..Overrides::default()
        })
        .unwrap();
    config
}

/// Trains in this process and asks for a stop the first time `at` says so, as Ctrl-C would;
/// then resumes, and checks the run against the one that was never stopped. `at` is told
/// the position of each batch, validation batch and epoch end.
fn stop_and_resume(name: &str, at: impl Fn(Progress) -> bool + Send + Sync + 'static) {
    let run = setup().root.join(name);
    let interrupter = Interrupter::new();
    let fired = Arc::new(AtomicBool::new(false));
    let hook = {
        let (interrupter, fired) = (interrupter.clone(), fired.clone());
        move |progress| {
            if !fired.load(Ordering::SeqCst) && at(progress) {
                fired.store(true, Ordering::SeqCst);
                interrupter.stop(Some("the test"));
            }
        }
    };
    let options = TrainOptions {
        dashboard: false,
        interrupter,
        on_progress: Some(Arc::new(hook)),
        ..TrainOptions::default()
    };
    let stopped = train(&config(&run), "resume", StartMode::New, &options);
    assert!(fired.load(Ordering::SeqCst), "{name}: the stop never came");
    match stopped {
        Err(error) => {
            assert!(
                matches!(error, TrainingError::Interrupted { .. }),
                "{name}: {error}"
            );
            assert!(
                error
                    .to_string()
                    .starts_with("training stopped by the test; checkpoint ")
            );
            let done = error.history().unwrap().len();
            let csv = fs::read_to_string(run.join("metrics.csv")).unwrap_or_default();
            assert_eq!(
                csv.lines().filter(|l| l.contains(",valid,")).count(),
                done,
                "{name}: metrics.csv has every epoch done, and only those:\n{csv}"
            );
            let resumed = TrainOptions {
                dashboard: false,
                ..TrainOptions::default()
            };
            train(&config(&run), "resume", StartMode::Resume, &resumed)
                .unwrap_or_else(|e| panic!("{name}: resume: {e}"));
        }
        // A stop during the final test evaluation comes too late to stop anything.
        Ok(summary) => assert!(!summary.resumed, "{name}"),
    }
    assert!(
        weights(&run) == weights(uninterrupted()),
        "{name}: resumed weights differ from the uninterrupted run's"
    );
    let (resumed, whole) = (summary(&run), summary(uninterrupted()));
    assert_eq!(resumed.test_correct, whole.test_correct, "{name}");
    assert_eq!(resumed.history.len(), 3, "{name}: {:?}", resumed.history);
    let csv = fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(!csv.contains("NaN"), "{name}: {csv}");
    // Validation sees the same model whatever happened, so its numbers agree to the bit; the
    // train numbers of an epoch that was cut in two cover the part after the resume only.
    let valid = |s: &RunSummary| metrics(s).iter().map(|m| [m[2], m[3]]).collect::<Vec<_>>();
    assert_eq!(valid(&resumed), valid(&whole), "{name}");
    assert!(
        !run.join("experiment.log").exists(),
        "{name}: Burn's empty log is gone"
    );
}

const BATCHES: usize = 125;

#[test]
fn a_stop_before_the_first_batch_resumes_exactly() {
    stop_and_resume("before-first-batch", |p| {
        matches!(p, Progress::Starting(Position::START))
    });
}

#[test]
fn a_stop_mid_epoch_resumes_exactly() {
    stop_and_resume("mid-epoch", |p| {
        p == Progress::Trained(Position {
            epoch: 2,
            batches_done: 40,
        })
    });
}

#[test]
fn a_stop_on_an_epochs_last_batch_resumes_exactly() {
    stop_and_resume("last-batch", |p| {
        p == Progress::Trained(Position {
            epoch: 2,
            batches_done: BATCHES,
        })
    });
}

#[test]
fn a_stop_during_validation_resumes_exactly() {
    stop_and_resume("validation", |p| {
        p == Progress::Validated {
            epoch: 2,
            batches: 3,
        }
    });
}

#[test]
fn a_stop_after_validation_resumes_exactly() {
    // 300 validation images in batches of 16: the 19th batch is the last.
    stop_and_resume("after-validation", |p| {
        p == Progress::Validated {
            epoch: 1,
            batches: 19,
        }
    });
}

#[test]
fn a_stop_between_epochs_resumes_exactly() {
    stop_and_resume("between-epochs", |p| p == Progress::EpochEnded(2));
}

#[test]
fn a_stop_during_the_test_evaluation_lets_the_run_finish() {
    stop_and_resume("testing", |p| p == Progress::Testing);
}

/// SIGKILLs a run that checkpoints after nearly every batch, several times over, so that the
/// kills land while checkpoints are being written; each time the run goes on from its newest
/// whole checkpoint and ends with the weights of a run that was never stopped.
#[test]
fn kills_while_checkpoints_are_written_lose_nothing() {
    let run = setup().root.join("killed-while-writing");
    let config = setup().root.join("frequent-checkpoints.json");
    fs::write(
        &config,
        CONFIG.replacen('{', r#"{ "checkpoint_every_seconds": 0.001,"#, 1),
    )
    .unwrap();
    let mut args = train_args(&run);
    args[1] = config.to_string_lossy().into_owned();
    let mut started = start_with(args, Stdio::null());
    wait_for_first_checkpoint(&mut started, &run);
    let mut child = started.child;
    for delay_ms in [130, 370, 90] {
        sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!state_files(&run).is_empty());
        child = lenet()
            .args(["resume", "--run"])
            .arg(&run)
            .arg("--no-tui")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert_same_as_uninterrupted(&run);
}

/// Checkpoints come every `checkpoint_every_seconds` of training, not only at epoch ends, so a
/// kill loses at most that much work.
#[test]
fn time_based_checkpoints_come_mid_epoch() {
    let run = setup().root.join("timed");
    let interrupter = Interrupter::new();
    let hook = {
        let interrupter = interrupter.clone();
        move |p| {
            if p == Progress::Trained(Position {
                epoch: 1,
                batches_done: 100,
            }) {
                interrupter.stop(Some("the test"));
            }
        }
    };
    let mut config = config(&run);
    config.checkpoint_every_seconds = 0.05;
    let options = TrainOptions {
        dashboard: false,
        interrupter,
        on_progress: Some(Arc::new(hook)),
        ..TrainOptions::default()
    };
    train(&config, "resume", StartMode::New, &options).unwrap_err();
    let mut steps: Vec<String> = state_files(&run)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy()[5..13].to_string())
        .collect();
    steps.sort();
    // The stop's checkpoint at step 100, and the newest timed one before it: only two are kept.
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[1], "00000100");
    let timed: usize = steps[0].parse().unwrap();
    assert!(timed > 0 && timed < 100, "{steps:?}");
}

/// One process at a time in a run folder: a second one, resuming or starting over, is refused
/// with the folder and the process that holds it, and leaves the first one's run alone.
#[test]
fn a_second_process_cannot_train_in_a_busy_run_folder() {
    let run = setup().root.join("busy");
    let mut started = start(&run);
    wait_for_first_checkpoint(&mut started, &run);
    let mut child = started.child;
    // Paused while the others try, so that it cannot finish first on a fast machine; a
    // paused process still holds its lock.
    // SAFETY: sending signals to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
    for extra in [&["--resume"][..], &["--overwrite"][..]] {
        let output = lenet().args(train_args(&run)).args(extra).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("in use by process {}", child.id()))
                && stderr.contains(&*run.to_string_lossy()),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    let output = lenet()
        .args(["resume", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
    assert!(
        child.wait().unwrap().success(),
        "the first run finishes undisturbed"
    );
    assert_same_as_uninterrupted_except_resumed(&run);
}

/// The payload of a checkpoint file: what follows its seal's header (magic, length, SHA-256).
fn sealed_payload(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap()[8 + 8 + 32..].to_vec()
}

/// The newest checkpoint's file of `kind`.
fn newest_checkpoint(run: &Path, kind: &str) -> PathBuf {
    let mut files: Vec<PathBuf> = fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(&format!(".{kind}.ckpt")))
        .collect();
    files.sort();
    files.pop().unwrap()
}

/// With `ema`, the model a run validates, keeps and saves is the average of the weights, which
/// the checkpoints carry beside the trained weights: a run stopped mid-epoch resumes to the
/// same average, and the same validation, as one never stopped.
#[test]
fn an_averaged_run_saves_its_average_and_resumes_to_it_exactly() {
    let averaged = |run: &Path| {
        let mut config = config(run);
        config.epochs = 2;
        config.ema = Some(Ema { decay: 0.99 });
        config
    };
    let quiet = || TrainOptions {
        dashboard: false,
        ..TrainOptions::default()
    };
    let whole = setup().root.join("averaged-whole");
    train(&averaged(&whole), "resume", StartMode::New, &quiet()).unwrap();
    let saved = fs::read(whole.join("model.bpk")).unwrap();
    assert_eq!(
        sealed_payload(&newest_checkpoint(&whole, "average")),
        saved,
        "model.bpk is the average"
    );
    assert_ne!(
        sealed_payload(&newest_checkpoint(&whole, "model")),
        saved,
        "the trained weights are not"
    );

    let run = setup().root.join("averaged-stopped");
    let interrupter = Interrupter::new();
    let stop = interrupter.clone();
    let options = TrainOptions {
        interrupter,
        on_progress: Some(Arc::new(move |progress| {
            if progress
                == Progress::Trained(Position {
                    epoch: 2,
                    batches_done: 40,
                })
            {
                stop.stop(Some("the test"));
            }
        })),
        ..quiet()
    };
    let stopped = train(&averaged(&run), "resume", StartMode::New, &options);
    assert!(matches!(stopped, Err(TrainingError::Interrupted { .. })));
    train(&averaged(&run), "resume", StartMode::Resume, &quiet()).unwrap();
    assert!(weights(&run) == weights(&whole), "resumed average differs");
    let valid = |s: &RunSummary| metrics(s).iter().map(|m| [m[2], m[3]]).collect::<Vec<_>>();
    assert_eq!(valid(&summary(&run)), valid(&summary(&whole)));
}

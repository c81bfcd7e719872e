//! A run killed or interrupted part-way and then resumed ends with exactly the weights of a run
//! that was never stopped. Real child processes on real MNIST (a few thousand images).

#![cfg(unix)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{lenet_process as lenet, real_mnist_dir, summary_of};
use lenet::inference::export::to_safetensors;
use lenet::run::FinishedRun;
use lenet::run::RunSummary;

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

fn start(run: &Path) -> Child {
    lenet()
        .args(train_args(run))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
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

/// Waits for the first checkpoint (the end of epoch 1), then a little more, so that the stop
/// lands in the middle of epoch 2.
fn wait_for_first_checkpoint(child: &mut Child, run: &Path) {
    let started = Instant::now();
    while state_files(run).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint"
        );
        sleep(Duration::from_millis(20));
    }
    sleep(Duration::from_millis(300));
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
    let reference = uninterrupted();
    assert!(
        weights(run) == weights(reference),
        "resumed weights differ from the uninterrupted run's"
    );
    let (resumed, whole) = (summary(run), summary(reference));
    assert_eq!(resumed.test_correct, whole.test_correct);
    assert_eq!(resumed.test_loss, whole.test_loss);
    assert!(resumed.resumed && !whole.resumed);
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_identical_weights() {
    let run = setup().root.join("killed");
    let mut child = start(&run);
    wait_for_first_checkpoint(&mut child, &run);
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
    let mut child = start(&run);
    wait_for_first_checkpoint(&mut child, &run);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("training stopped (interrupted with Ctrl-C)"),
        "{stderr}"
    );
    assert!(stderr.contains("resume --run"), "{stderr}");
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
    let mut child = start(&run);
    wait_for_first_checkpoint(&mut child, &run);
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
    let mut child = start(&run);
    wait_for_first_checkpoint(&mut child, &run);
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

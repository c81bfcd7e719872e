//! The `lenet` binary end to end: the smoke config on real MNIST, and every way a user can get
//! the input wrong, each answered by one line naming the problem and a non-zero exit.

mod common;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use common::{real_mnist_dir, write_synthetic_mnist};
use lenet::training::RunSummary;
use predicates::prelude::*;

fn lenet() -> Command {
    let mut cmd = Command::cargo_bin("lenet").unwrap();
    // Tests must not depend on the user's environment or fill their cache.
    cmd.env_remove("MNIST_DIR")
        .env_remove("LENET_MNIST_MIRROR")
        .env("XDG_CACHE_HOME", "/nonexistent/lenet-test-cache");
    cmd
}

fn project_file(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn smoke_config_trains_on_real_mnist() {
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("smoke");
    lenet()
        .args(["--config", &project_file("configs/smoke.json")])
        .arg("--data-dir")
        .arg(real_mnist_dir())
        .arg("--artifact-dir")
        .arg(&run)
        .assert()
        .success()
        .stdout(predicate::str::contains("epoch 1/2  train loss"))
        .stdout(predicate::str::contains("epoch 2/2  train loss"))
        .stdout(predicate::str::contains("Test accuracy: "))
        // Piped output gets one line per epoch, never Burn's per-batch debug lines.
        .stdout(predicate::str::contains("Progress").not());

    let summary: RunSummary =
        serde_json::from_slice(&fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary.test_images, 10_000);
    assert_eq!(summary.epochs, 2);
    assert!(summary.test_accuracy >= 0.90, "{}", summary.test_accuracy);
    assert!(run.join("model.bpk").is_file());
}

#[test]
fn help_documents_every_flag() {
    let assert = lenet().arg("--help").assert().success();
    let help = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    for flag in [
        "--config",
        "--epochs",
        "--batch-size",
        "--learning-rate",
        "--seed",
        "--device",
        "--data-dir",
        "--artifact-dir",
        "--no-tui",
        "--overwrite",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

/// Runs lenet with `args` and checks the exit code and that stderr is one line holding `expected`.
fn fails_with(args: &[&str], code: i32, expected: &str) {
    let assert = lenet().args(args).assert().code(code);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains(expected),
        "{args:?}: stderr `{stderr}` lacks `{expected}`"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn config_errors_exit_2_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let cases = [
        (
            write("syntax.json", "{\"epochs\": 3,"),
            "syntax.json: not valid JSON",
        ),
        (write("empty.json", ""), "empty.json: not valid JSON"),
        (
            write("unknown.json", r#"{"epochz": 3}"#),
            "unknown.json: epochz: unknown field",
        ),
        (
            write("type.json", r#"{"batch_size": "64"}"#),
            "type.json: batch_size: invalid type",
        ),
        (
            write(
                "lr.json",
                r#"{"optimizer": {"type": "adam", "learning_rate": -1}}"#,
            ),
            "lr.json: optimizer.learning_rate: must be a positive number",
        ),
        (
            write("batch.json", r#"{"batch_size": 0}"#),
            "batch.json: batch_size: must be at least 1",
        ),
        (
            write("epochs.json", r#"{"epochs": 0}"#),
            "epochs.json: epochs: must be at least 1",
        ),
        (
            write("act.json", r#"{"model": {"activation": "gelu"}}"#),
            "act.json: model.activation: unknown variant `gelu`",
        ),
        (
            write("pool.json", r#"{"model": {"pooling": "sum"}}"#),
            "pool.json: model.pooling: unknown variant `sum`",
        ),
        (
            write("optim.json", r#"{"optimizer": {"type": "lbfgs"}}"#),
            "optim.json: optimizer.type: unknown type \"lbfgs\"",
        ),
    ];
    for (path, expected) in &cases {
        fails_with(&["--config", path], 2, expected);
    }
    fails_with(
        &[
            "--config",
            &dir.path().join("absent.json").to_string_lossy(),
        ],
        2,
        "absent.json: cannot read config",
    );
}

#[test]
fn flag_values_are_checked_too() {
    let smoke = project_file("configs/smoke.json");
    fails_with(
        &["--config", &smoke, "--batch-size", "0"],
        2,
        "batch_size: must be at least 1",
    );
    fails_with(
        &["--config", &smoke, "--learning-rate", "0"],
        2,
        "optimizer.learning_rate",
    );
    // Values clap rejects get clap's usage message, which lists what is accepted.
    lenet()
        .args(["--config", &smoke, "--device", "cuda"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid value 'cuda' for '--device <NAME>'",
        ))
        .stderr(predicate::str::contains(
            "possible values: flex, ndarray, wgpu, vulkan",
        ));
    lenet()
        .args(["--config", &smoke, "--epochs", "many"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid value 'many' for '--epochs <N>'",
        ));
}

#[test]
fn a_device_that_is_not_compiled_in_names_its_feature() {
    let smoke = project_file("configs/smoke.json");
    let compiled = |name: &str| match name {
        "ndarray" => cfg!(feature = "ndarray"),
        "wgpu" => cfg!(feature = "wgpu"),
        _ => cfg!(feature = "vulkan"),
    };
    for name in ["ndarray", "wgpu", "vulkan"]
        .into_iter()
        .filter(|n| !compiled(n))
    {
        fails_with(
            &["--config", &smoke, "--device", name],
            2,
            &format!("device '{name}' is not compiled into this binary"),
        );
    }
}

#[test]
fn missing_data_is_reported_with_what_to_do() {
    let smoke = project_file("configs/smoke.json");
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_string_lossy().into_owned();
    fails_with(
        &["--config", &smoke, "--data-dir", &dir],
        1,
        "MNIST files missing (train-images-idx3-ubyte, train-labels-idx1-ubyte, \
         t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, named by --data-dir / data.dir)",
    );

    let partial = tempfile::tempdir().unwrap();
    write_synthetic_mnist(partial.path(), 20, 10, true);
    fs::remove_file(partial.path().join("train-labels-idx1-ubyte.gz")).unwrap();
    let assert = lenet()
        .args(["--config", &smoke])
        .env("MNIST_DIR", partial.path())
        .assert()
        .code(1);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("MNIST files missing (train-labels-idx1-ubyte, named by MNIST_DIR)"),
        "{stderr}"
    );
}

#[test]
fn offline_without_data_says_which_files_to_put_where() {
    let cache = tempfile::tempdir().unwrap();
    let assert = lenet()
        .args(["--config", &project_file("configs/smoke.json")])
        .env("XDG_CACHE_HOME", cache.path())
        // A mirror nothing listens on, as a machine without internet sees every mirror.
        .env("LENET_MNIST_MIRROR", "http://127.0.0.1:9/")
        .assert()
        .code(1);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    let cache_dir = cache.path().join("lenet/mnist");
    let last = stderr.trim_end().lines().last().unwrap();
    assert!(last.starts_with("error: MNIST is not in"), "{stderr}");
    assert!(last.contains("could not be downloaded"), "{stderr}");
    assert!(last.contains("put the four files"), "{stderr}");
    assert!(last.contains(&cache_dir.display().to_string()), "{stderr}");
    assert!(last.contains("t10k-labels-idx1-ubyte"), "{stderr}");
    let left: Vec<_> = fs::read_dir(&cache_dir).unwrap().collect();
    assert!(
        left.is_empty(),
        "a failed download leaves nothing behind: {left:?}"
    );
}

#[test]
fn bad_data_files_are_reported_by_name() {
    let smoke = project_file("configs/smoke.json");
    let data = tempfile::tempdir().unwrap();
    write_synthetic_mnist(data.path(), 20, 10, false);
    fs::write(
        data.path().join("t10k-images-idx3-ubyte"),
        b"not an idx file",
    )
    .unwrap();
    fails_with(
        &[
            "--config",
            &smoke,
            "--data-dir",
            &data.path().to_string_lossy(),
        ],
        1,
        "t10k-images-idx3-ubyte: wrong IDX magic number",
    );
}

#[test]
fn validation_larger_than_the_training_set_is_a_config_error() {
    let data = tempfile::tempdir().unwrap();
    write_synthetic_mnist(data.path(), 20, 10, true);
    let config = data.path().join("big-valid.json");
    fs::write(&config, r#"{"data": {"validation_size": 20}}"#).unwrap();
    fails_with(
        &[
            "--config",
            &config.to_string_lossy(),
            "--data-dir",
            &data.path().to_string_lossy(),
        ],
        2,
        "data.validation_size (20) must be smaller than the training set (20 images)",
    );
}

#[test]
fn an_existing_run_is_not_overwritten_unless_asked() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    write_synthetic_mnist(&data, 60, 20, true);
    let config = root.path().join("tiny.json");
    fs::write(
        &config,
        r#"{"epochs": 1, "batch_size": 20, "data": {"validation_size": 20}}"#,
    )
    .unwrap();
    let run = root.path().join("run");
    let args = |extra: &[&str]| {
        let mut args = vec![
            "--config".to_string(),
            config.to_string_lossy().into_owned(),
            "--data-dir".to_string(),
            data.to_string_lossy().into_owned(),
            "--artifact-dir".to_string(),
            run.to_string_lossy().into_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    lenet().args(args(&[])).assert().success();
    let first = fs::read(run.join("summary.json")).unwrap();

    let assert = lenet().args(args(&[])).assert().code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("already holds a run; pass --resume to continue it, --overwrite"),
        "{stderr}"
    );
    let assert = lenet().args(args(&["--resume"])).assert().code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("the run already finished"), "{stderr}");
    assert_eq!(
        fs::read(run.join("summary.json")).unwrap(),
        first,
        "refusals change nothing"
    );

    lenet()
        .args(args(&["--overwrite", "--seed", "7"]))
        .assert()
        .success();
    assert!(run.join("summary.json").is_file());
}

#[test]
fn an_artifact_dir_that_is_a_file_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    write_synthetic_mnist(&data, 60, 20, true);
    let file = root.path().join("occupied");
    fs::write(&file, "x").unwrap();
    let config = root.path().join("tiny.json");
    fs::write(&config, r#"{"data": {"validation_size": 20}}"#).unwrap();
    fails_with(
        &[
            "--config",
            &config.to_string_lossy(),
            "--data-dir",
            &data.to_string_lossy(),
            "--artifact-dir",
            &file.to_string_lossy(),
        ],
        1,
        "occupied: exists and is not a directory",
    );
}

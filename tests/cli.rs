//! The `lenet` binary end to end: the smoke config on real MNIST, help, flags, the messages
//! that say what to do, and the overwrite policy. Bad input of every kind is in bad_input.rs.

mod common;

use std::fs;

use common::{lenet, project_file, real_mnist_dir, write_synthetic_mnist};
use lenet::run::RunSummary;
use predicates::prelude::*;

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
        "--resume",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

/// Runs lenet with `args` and checks the exit code and that stderr is one line holding `expected`,
/// with no panic.
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
fn flag_values_are_checked_too() {
    let smoke = project_file("configs/smoke.json");
    fails_with(
        &["--config", &smoke, "--batch-size", "0"],
        2,
        "'--batch-size <N>': expected a whole number >= 1",
    );
    fails_with(
        &["--config", &smoke, "--learning-rate", "0"],
        2,
        "'--learning-rate <LR>': expected a positive number",
    );
    // Values the command line itself rejects get one line too, in words, not Rust's types.
    let compiled: Vec<&str> = lenet::device::BackendKind::compiled()
        .iter()
        .map(|b| b.name())
        .collect();
    fails_with(
        &["--config", &smoke, "--device", "cuda"],
        2,
        &format!(
            "invalid value 'cuda' for '--device <NAME>': expected one of the devices compiled \
             into this binary: {}",
            compiled.join(", ")
        ),
    );
    fails_with(
        &["--config", &smoke, "--epochs", "many"],
        2,
        "invalid value 'many' for '--epochs <N>': expected a whole number >= 1",
    );
    fails_with(
        &["--config", &smoke, "--batch-size=-3"],
        2,
        "expected a whole number >= 1",
    );
    fails_with(
        &["--config"],
        2,
        "a value is required for '--config <FILE>'",
    );
    let bad = tempfile::tempdir().unwrap();
    let config = bad.path().join("typed.json");
    fs::write(&config, r#"{"epochs": "3"}"#).unwrap();
    fails_with(
        &["--config", &config.to_string_lossy()],
        2,
        "epochs: invalid type: string \"3\", expected a whole number >= 1",
    );
}

/// Every numeric flag read back as the type its command uses (a mismatch is only found when a
/// value is there to read).
#[test]
fn numeric_flags_are_read() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // smoke.json holds out 1,000 for validation: 200 are left to train on, 4 batches of 50.
    write_synthetic_mnist(&data, 1200, 100, true);
    let smoke = project_file("configs/smoke.json");
    let data = data.to_string_lossy().into_owned();
    let run = root.path().join("run").to_string_lossy().into_owned();
    lenet()
        .args([
            "--config",
            &smoke,
            "--data-dir",
            &data,
            "--artifact-dir",
            &run,
        ])
        .args([
            "--epochs",
            "1",
            "--batch-size",
            "50",
            "--learning-rate",
            "0.002",
        ])
        .args(["--seed", "3", "--no-tui"])
        .assert()
        .success()
        .stdout(predicate::str::contains("1 epoch of 4 batches of 50"));
    lenet()
        .args([
            "bench",
            "--data-dir",
            &data,
            "--epochs",
            "1",
            "--batch-size",
            "100",
        ])
        .args([
            "--batch-size",
            "50",
            "--warmup-batches",
            "0",
            "--eval-batch-size",
            "100",
        ])
        .args(["--predict-samples", "2", "--device", "flex"])
        .assert()
        .success()
        .stdout(predicate::str::contains("flex (").count(2));
}

#[test]
fn plain_lenet_shows_the_commands() {
    let assert = lenet().assert().code(2);
    let output = assert.get_output();
    let shown = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    for command in ["train", "resume", "eval", "predict", "export", "--config"] {
        assert!(shown.contains(command), "{shown}");
    }
}

#[test]
fn help_lists_only_the_devices_compiled_in() {
    let assert = lenet().args(["train", "--help"]).assert().success();
    let help = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let compiled = lenet::device::BackendKind::compiled();
    let listed = help
        .split("[compiled in: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("{help}"));
    // Help wraps long lines, so a list of several may span two.
    let names: Vec<&str> = listed.split(',').map(str::trim).collect();
    assert_eq!(
        names,
        compiled.iter().map(|b| b.name()).collect::<Vec<_>>(),
        "{help}"
    );
}

#[test]
fn commands_on_runs_say_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let nowhere = root.path().join("nowhere");
    fails_with(
        &["eval", "--run", &nowhere.to_string_lossy()],
        2,
        &format!("{}: no such folder", nowhere.display()),
    );

    // A run that stopped before its end points to `lenet resume`.
    let data = root.path().join("data");
    write_synthetic_mnist(&data, 200, 40, true);
    let config = root.path().join("tiny.json");
    fs::write(
        &config,
        r#"{"epochs": 1, "batch_size": 20, "data": {"validation_size": 20}}"#,
    )
    .unwrap();
    let run = root.path().join("run");
    let train = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "--config",
            &config.to_string_lossy(),
            "--data-dir",
            &data.to_string_lossy(),
            "--artifact-dir",
            &run.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        lenet().args(args).assert()
    };
    // SGD with a huge rate: the loss is not finite at the first batch, before any checkpoint.
    train(&["--learning-rate", "1e30"]).code(1);
    fs::write(run.join("config.json"), fs::read(&config).unwrap()).unwrap_or_default();
    fails_with(
        &["eval", "--run", &run.to_string_lossy()],
        1,
        &format!("continue it with `lenet resume --run {}`", run.display()),
    );
    // Such a run left nothing to keep: training again needs no --overwrite.
    train(&[]).success();
    let resume = lenet()
        .args(["resume", "--run", &run.to_string_lossy()])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&resume.get_output().stderr).into_owned();
    assert!(stderr.contains("the run already finished"), "{stderr}");
    assert!(
        !stderr.contains("--overwrite"),
        "`lenet resume` has no --overwrite: {stderr}"
    );

    // Evaluating needs only the test set's two files.
    let test_only = root.path().join("test-only");
    fs::create_dir(&test_only).unwrap();
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        fs::copy(data.join(name), test_only.join(name)).unwrap();
    }
    lenet()
        .args(["eval", "--run", &run.to_string_lossy(), "--data-dir"])
        .arg(&test_only)
        .assert()
        .success();
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
         t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, named by --data-dir / data.dir), each \
         expected raw or .gz",
    );
    let nowhere = empty.path().join("nowhere").to_string_lossy().into_owned();
    let assert = lenet()
        .args(["--config", &smoke, "--data-dir", &nowhere])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("nowhere: no such folder (named by --data-dir / data.dir); it should hold"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("t10k-labels-idx1-ubyte").count(),
        1,
        "each file once: {stderr}"
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

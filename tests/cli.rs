//! The `lenet` binary end to end: the smoke config on real MNIST, and every way a user can get
//! the input wrong, each answered by one line naming the problem and a non-zero exit.

mod common;

use std::fs;
use std::path::Path;

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
    fails_with(
        &["--config", &smoke, "--device", "cuda"],
        2,
        "invalid value 'cuda' for '--device <NAME>': expected one of the devices compiled into \
         this binary: flex",
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
        .stdout(predicate::str::contains("1 epochs of 4 batches of 50"));
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
    let names: Vec<&str> = listed.split(", ").collect();
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

/// One way to get the input wrong: what the case sets up in its folder (the config file, the
/// data folder, the run folder), the exit code and what the one-line error must say.
struct BadInput {
    what: &'static str,
    config: &'static str,
    /// Damages the (otherwise good) data folder.
    data: fn(&Path),
    /// Extra arguments; `{root}` stands for the case's folder.
    args: &'static [&'static str],
    /// The run folder (`--artifact-dir`).
    artifact: &'static str,
    code: i32,
    expected: &'static str,
}

const GOOD_CONFIG: &str = r#"{"epochs": 1, "batch_size": 20, "data": {"validation_size": 10}}"#;

/// Stands for a config file that does not exist.
const NO_CONFIG_FILE: &str = "";

fn keep(_: &Path) {}

fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for v in [count, rows, cols] {
        bytes.extend(v.to_be_bytes());
    }
    bytes.resize(bytes.len() + (count * rows * cols) as usize, 0);
    bytes
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).unwrap();
}

const BAD_INPUTS: &[BadInput] = &[
    BadInput {
        what: "config not found",
        config: NO_CONFIG_FILE,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: cannot read config",
    },
    BadInput {
        what: "config not JSON",
        config: "{\"epochs\": 3,",
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: not valid JSON",
    },
    BadInput {
        what: "config empty",
        config: " ",
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: not valid JSON",
    },
    BadInput {
        what: "unknown key",
        config: r#"{"epochz": 3}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: epochz: unknown field",
    },
    BadInput {
        what: "unknown nested key",
        config: r#"{"data": {"validation": 3}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: data.validation: unknown field",
    },
    BadInput {
        what: "wrong type",
        config: r#"{"batch_size": "64"}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: batch_size: invalid type",
    },
    BadInput {
        what: "learning rate 0",
        config: r#"{"optimizer": {"type": "adam", "learning_rate": 0}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: optimizer.learning_rate: must be a positive number",
    },
    BadInput {
        what: "learning rate < 0",
        config: r#"{"optimizer": {"type": "sgd", "learning_rate": -1}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: optimizer.learning_rate: must be a positive number",
    },
    BadInput {
        what: "batch 0",
        config: r#"{"batch_size": 0}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: batch_size: must be at least 1",
    },
    BadInput {
        what: "epochs 0",
        config: r#"{"epochs": 0}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: epochs: must be at least 1",
    },
    BadInput {
        what: "validation larger than training",
        config: r#"{"data": {"validation_size": 40}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "data.validation_size (40) must be smaller than the training set (40 images)",
    },
    BadInput {
        what: "unknown activation",
        config: r#"{"model": {"activation": "gelu"}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: model.activation: unknown variant `gelu`",
    },
    BadInput {
        what: "unknown pooling",
        config: r#"{"model": {"pooling": "sum"}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: model.pooling: unknown variant `sum`",
    },
    BadInput {
        what: "unknown optimizer",
        config: r#"{"optimizer": {"type": "lbfgs"}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: optimizer.type: unknown type \"lbfgs\"",
    },
    BadInput {
        what: "data dir missing a file",
        config: GOOD_CONFIG,
        data: |d| fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap(),
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "MNIST files missing (t10k-labels-idx1-ubyte, named by --data-dir / data.dir)",
    },
    BadInput {
        what: "Fashion-MNIST missing a file",
        config: r#"{"epochs": 1, "data": {"dataset": "fashion-mnist", "validation_size": 10}}"#,
        data: |d| fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap(),
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "Fashion-MNIST files missing (t10k-labels-idx1-ubyte): install Debian's package",
    },
    BadInput {
        what: "unknown dataset",
        config: r#"{"data": {"dataset": "cifar10"}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "config.json: data.dataset: unknown variant `cifar10`",
    },
    BadInput {
        what: "wrong IDX magic",
        config: GOOD_CONFIG,
        data: |d| write(d, "t10k-images-idx3-ubyte", b"not an idx file"),
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "t10k-images-idx3-ubyte: wrong IDX magic number",
    },
    BadInput {
        what: "images not 28x28",
        config: GOOD_CONFIG,
        data: |d| write(d, "train-images-idx3-ubyte", &idx_images(40, 27, 27)),
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "train-images-idx3-ubyte: images are 27x27, expected 28x28",
    },
    BadInput {
        what: "image and label counts disagree",
        config: GOOD_CONFIG,
        data: |d| {
            write(
                d,
                "train-labels-idx1-ubyte",
                &lenet::data::idx::encode_labels(&[1; 39]),
            )
        },
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "train-images-idx3-ubyte holds 40 images but",
    },
    BadInput {
        what: "label > 9",
        config: GOOD_CONFIG,
        data: |d| {
            write(
                d,
                "t10k-labels-idx1-ubyte",
                &lenet::data::idx::encode_labels(&[[3; 19].as_slice(), &[12]].concat()),
            )
        },
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "t10k-labels-idx1-ubyte: label 12 at index 19 is not a class 0-9",
    },
    BadInput {
        what: "truncated file",
        config: GOOD_CONFIG,
        data: |d| {
            let p = d.join("train-images-idx3-ubyte");
            let b = fs::read(&p).unwrap();
            fs::write(&p, &b[..b.len() - 100]).unwrap()
        },
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "train-images-idx3-ubyte: truncated",
    },
    BadInput {
        what: ".gz that is not gzip",
        config: GOOD_CONFIG,
        data: |d| {
            fs::remove_file(d.join("train-labels-idx1-ubyte")).unwrap();
            write(
                d,
                "train-labels-idx1-ubyte.gz",
                &[0x1f, 0x8b, 8, 0, 1, 2, 3],
            )
        },
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "train-labels-idx1-ubyte.gz: not a valid gzip file",
    },
    BadInput {
        what: "empty data file",
        config: GOOD_CONFIG,
        data: |d| write(d, "t10k-images-idx3-ubyte", b""),
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "t10k-images-idx3-ubyte: file is empty",
    },
    BadInput {
        what: "artifact dir is a file",
        config: GOOD_CONFIG,
        data: keep,
        args: &[],
        artifact: "{root}/occupied",
        code: 1,
        expected: "occupied: exists and is not a directory",
    },
    BadInput {
        what: "artifact dir not writable",
        config: GOOD_CONFIG,
        data: keep,
        args: &[],
        artifact: "/sys/lenet-test-run",
        code: 1,
        expected: "/sys/lenet-test-run: cannot create directory",
    },
];

#[test]
fn every_bad_input_gets_one_line_and_writes_nothing() {
    let mut cases: Vec<(&str, Vec<String>, i32, String)> = Vec::new();
    let root = tempfile::tempdir().unwrap();
    for (i, case) in BAD_INPUTS.iter().enumerate() {
        let dir = root.path().join(i.to_string());
        let data = dir.join("data");
        write_synthetic_mnist(&data, 40, 20, false);
        (case.data)(&data);
        if case.config != NO_CONFIG_FILE {
            fs::write(dir.join("config.json"), case.config).unwrap();
        }
        if case.artifact.ends_with("occupied") {
            fs::write(dir.join("occupied"), "keep me").unwrap();
        }
        let mut args: Vec<String> = [
            "--config",
            "{root}/config.json",
            "--data-dir",
            "{root}/data",
            "--artifact-dir",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([case.artifact.to_string()])
        .collect();
        args.extend(case.args.iter().map(|a| a.to_string()));
        let args = args
            .iter()
            .map(|a| a.replace("{root}", &dir.to_string_lossy()))
            .collect();
        cases.push((case.what, args, case.code, case.expected.to_string()));
    }
    // A device that is not compiled into this binary.
    let not_compiled = ["ndarray", "wgpu", "vulkan"]
        .into_iter()
        .find(|name| match *name {
            "ndarray" => !cfg!(feature = "ndarray"),
            "wgpu" => !cfg!(feature = "wgpu"),
            _ => !cfg!(feature = "vulkan"),
        });
    if let Some(name) = not_compiled {
        let dir = root.path().join("device");
        write_synthetic_mnist(&dir.join("data"), 40, 20, false);
        fs::write(dir.join("config.json"), GOOD_CONFIG).unwrap();
        let args = [
            "--config",
            "config.json",
            "--data-dir",
            "data",
            "--artifact-dir",
            "run",
            "--device",
            name,
        ];
        cases.push((
            "device not compiled in",
            args.iter()
                .map(|a| match *a {
                    "config.json" | "data" | "run" => dir.join(a).to_string_lossy().into_owned(),
                    _ => a.to_string(),
                })
                .collect(),
            2,
            format!("device '{name}' is not compiled into this binary"),
        ));
    }

    for (what, args, code, expected) in &cases {
        let assert = lenet().args(args).assert();
        let output = assert.get_output();
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Shown with --nocapture: the whole table of inputs and answers, for reading.
        println!(
            "{what} -> exit {:?}: {}",
            output.status.code(),
            stderr.trim_end()
        );
        assert_eq!(output.status.code(), Some(*code), "{what}: {stderr}");
        assert!(
            stderr.contains(expected.as_str()),
            "{what}: `{stderr}` lacks `{expected}`"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{what}: not one line: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        // The last --artifact-dir is the one that counts.
        let artifact =
            Path::new(&args[args.iter().rposition(|a| a == "--artifact-dir").unwrap() + 1]);
        if artifact.is_file() {
            assert_eq!(fs::read(artifact).unwrap(), b"keep me", "{what}");
        } else {
            assert!(!artifact.exists(), "{what}: wrote {}", artifact.display());
        }
    }
}

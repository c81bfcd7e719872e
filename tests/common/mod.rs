//! Helpers shared by the integration tests: the `lenet` binary cut off from the user's
//! environment, small synthetic MNIST-format datasets, the path of the real one, and reading a
//! run's outputs back.

#![allow(dead_code)] // each test crate uses its own subset of these helpers

pub mod photos;
pub mod server;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use lenet::data::idx::{encode_images, encode_labels};
use lenet::input::{IMAGE_PIXELS, IMAGE_SIDE};
use lenet::run::RunSummary;

/// Runs `check` on every case of a table test, then fails naming every case that failed, not
/// only the first: a case's assertions panic as anywhere else, and the panic is caught here.
pub fn every_case<C>(
    cases: impl IntoIterator<Item = C>,
    name: impl Fn(&C) -> String,
    mut check: impl FnMut(C),
) {
    let mut failures = Vec::new();
    let mut count = 0;
    for case in cases {
        count += 1;
        let what = name(&case);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(case)));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{what}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A check that needs an outside tool which is missing: it fails when `required` (an
/// environment variable CI sets) is set, and otherwise says why it is skipped, so that no check
/// passes by skipping where the tool is meant to be.
pub fn skip_unless_required(required: &str, what: &str, why: &str) {
    assert!(
        std::env::var_os(required).is_none(),
        "{required} is set, but {what} cannot run: {why}"
    );
    eprintln!("skipped {what}: {why} (set {required} to make this a failure)");
}

/// The interpreter with onnx, onnxruntime, numpy and pillow; `None` (after saying why) when
/// there is none and `LENET_REQUIRE_ONNX` is not set.
pub fn onnx_python(what: &str) -> Option<String> {
    let modules = ["onnx", "onnxruntime", "numpy", "PIL"];
    python_with(
        &modules,
        "onnx onnxruntime numpy pillow",
        "LENET_REQUIRE_ONNX",
        what,
    )
}

/// The interpreter with TensorBoard (its event reader and HParams messages); `None` (after
/// saying why) when there is none and `LENET_REQUIRE_TENSORBOARD` is not set.
pub fn tensorboard_python(what: &str) -> Option<String> {
    python_with(
        &["tensorboard"],
        "tensorboard",
        "LENET_REQUIRE_TENSORBOARD",
        what,
    )
}

/// The interpreter with MLflow, whose `mlflow server` the tracking tests start; `None` (after
/// saying why) when there is none and `LENET_REQUIRE_MLFLOW` is not set.
pub fn mlflow_python(what: &str) -> Option<String> {
    python_with(&["mlflow"], "mlflow", "LENET_REQUIRE_MLFLOW", what)
}

/// `LENET_PYTHON` (else `python3`) if it imports every one of `modules` (`pip install` names
/// their packages); otherwise `None` after saying why, or a failure when `required` is set.
fn python_with(modules: &[&str], pip: &str, required: &str, what: &str) -> Option<String> {
    let python = std::env::var("LENET_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let check = std::process::Command::new(&python)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output();
    let why = match check {
        Ok(output) if output.status.success() => return Some(python),
        Ok(output) => format!(
            "{python} lacks one of {modules:?} ({}); `pip install {pip}`, or set LENET_PYTHON \
             to an interpreter that has them",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => format!("cannot run {python}: {e}"),
    };
    skip_unless_required(required, what, &why);
    None
}

/// The `lenet` binary as a process that may use at most `bytes` of address space: what it asks
/// for beyond that fails, as on a machine without the memory.
#[cfg(unix)]
pub fn lenet_limited(bytes: u64) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut command = lenet_process();
    // glibc gives threads that meet on its allocator arenas of their own, each reserving 64 MB
    // of address space it may never use: how many depends on how busy the machine is, and a
    // training's threads on a loaded machine could run out of address space, not of memory.
    command.env("MALLOC_ARENA_MAX", "2");
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// The `lenet` binary as a process, independent of the user's environment: no `MNIST_DIR`, no
/// mirror, and a cache folder that does not exist, so no test reads or fills the user's cache.
pub fn lenet_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lenet"));
    // Without CARGO (which `cargo test` sets), the commands lenet prints back name `lenet`, as
    // for an installed binary.
    cmd.env_remove("CARGO")
        .env_remove("MNIST_DIR")
        .env_remove("LENET_MNIST_MIRROR")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .env("XDG_CACHE_HOME", "/nonexistent/lenet-test-cache");
    cmd
}

/// The rest of a process's output, read on in the background so that it never blocks on a
/// full pipe; joined for the lines.
pub type Rest = std::thread::JoinHandle<Vec<String>>;

/// A training process started with `args`, once it has printed a line containing `after`;
/// with the rest of its output to come.
pub fn train_until(args: &[String], after: &str) -> (std::process::Child, Rest) {
    let mut child = lenet_process()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "no line with {after:?}: {lines:?}"
        );
        lines.push(line.trim_end().to_string());
        if line.contains(after) {
            break;
        }
    }
    let rest = std::thread::spawn(move || reader.lines().map_while(Result::ok).collect());
    (child, rest)
}

/// A training process started with `args` and stopped with SIGINT (Ctrl-C) once it has
/// printed a line containing `after`; it must end as a stopped run does, with 130.
#[cfg(unix)]
pub fn interrupt_after(args: &[String], after: &str) {
    let (mut child, _) = train_until(args, after);
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(
        child.wait().unwrap().code(),
        Some(130),
        "stopped after {after:?}"
    );
}

/// The arguments of a `configs/smoke.json` run of `epochs` epochs into `run` on real MNIST,
/// one line per epoch, with `extra` after them.
pub fn smoke_args(run: &Path, epochs: usize, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--config",
        &project_file("configs/smoke.json"),
        "--no-tui",
        "--epochs",
        &epochs.to_string(),
        "--data-dir",
        &real_mnist_dir().to_string_lossy(),
        "--artifact-dir",
        &run.to_string_lossy(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// `lenet runs --json` on the artifacts folder `artifacts`.
pub fn runs_json(artifacts: &Path) -> serde_json::Value {
    let output = lenet()
        .args(["runs", "--json", "--artifacts"])
        .arg(artifacts)
        .output()
        .unwrap();
    assert!(output.status.success(), "lenet runs --json");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `lenet sweep report --json` on the sweep folder `sweep`.
pub fn sweep_report_json(sweep: &Path) -> serde_json::Value {
    let output = lenet()
        .args(["sweep", "report", "--json", "--sweep"])
        .arg(sweep)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// [`lenet_process`] with assert_cmd's assertions.
pub fn lenet() -> assert_cmd::Command {
    assert_cmd::Command::from_std(lenet_process())
}

/// A file of the project, by its path from the project's root, as a command-line argument.
pub fn project_file(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .to_string_lossy()
        .into_owned()
}

/// Trains `configs/smoke.json` on real MNIST into the run folder `run`, with extra `args`.
pub fn train_smoke(run: &Path, args: &[&str]) {
    lenet()
        .arg("--config")
        .arg(project_file("configs/smoke.json"))
        .arg("--data-dir")
        .arg(real_mnist_dir())
        .arg("--artifact-dir")
        .arg(run)
        .args(args)
        .assert()
        .success();
}

/// A small run of each network in `root`: `modern` (configs/smoke.json) and `lecun98` (the
/// 1998 network, one epoch of 6,000 images), both on real MNIST; returns their folders.
pub fn train_both_networks(root: &Path) -> (PathBuf, PathBuf) {
    let lecun98 = root.join("lecun98.json");
    fs::write(
        &lecun98,
        r#"{"model": {"variant": "lecun98"}, "epochs": 1, "batch_size": 64,
            "optimizer": {"type": "adam", "learning_rate": 0.002},
            "data": {"validation_size": 1000, "train_limit": 6000}}"#,
    )
    .unwrap();
    let train = |config: &str, name: &str| {
        let run = root.join(name);
        lenet()
            .args(["--config", config, "--no-tui", "--artifact-dir"])
            .arg(&run)
            .arg("--data-dir")
            .arg(real_mnist_dir())
            .assert()
            .success();
        run
    };
    let modern = train(&project_file("configs/smoke.json"), "modern");
    let lecun98 = train(&lecun98.to_string_lossy(), "lecun98");
    (modern, lecun98)
}

/// The `summary.json` of a finished run.
pub fn summary_of(run: &Path) -> RunSummary {
    let path = run.join("summary.json");
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The real MNIST: `$MNIST_DIR`, else `../shared/data/mnist` beside the project, else the
/// cache a first training run downloads it into.
pub fn real_mnist_dir() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("MNIST_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")])
        .chain(lenet::data::source::cache_dir())
        .collect();
    candidates
        .iter()
        .find(|dir| lenet::data::idx::missing_files(dir, &lenet::data::idx::FILE_NAMES).is_empty())
        .cloned()
        .unwrap_or_else(|| {
            panic!("real MNIST not found in any of {candidates:?}: set MNIST_DIR to a folder holding it")
        })
}

/// A digit-like image for `label`: a bright bar whose row depends on the label, plus a column
/// that depends on `variant`, so images of one class differ but stay easy to tell apart.
pub fn synthetic_image(label: u8, variant: usize) -> [u8; IMAGE_PIXELS] {
    let mut image = [0u8; IMAGE_PIXELS];
    let row = 3 + 2 * label as usize;
    for col in 4..24 {
        image[row * IMAGE_SIDE + col] = 255;
        image[(row + 1) * IMAGE_SIDE + col] = 200;
    }
    let col = 4 + variant % 20;
    for r in 2..26 {
        image[r * IMAGE_SIDE + col] = image[r * IMAGE_SIDE + col].max(90);
    }
    image
}

/// `count` synthetic digits, labels cycling through 0-9.
pub fn synthetic_digits(count: usize) -> (Vec<[u8; IMAGE_PIXELS]>, Vec<u8>) {
    let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
    let images = labels
        .iter()
        .enumerate()
        .map(|(i, &label)| synthetic_image(label, i * 7))
        .collect();
    (images, labels)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes the four MNIST files for a synthetic dataset into `dir` (gzipped or raw).
pub fn write_synthetic_mnist(dir: &Path, train: usize, test: usize, gz: bool) {
    fs::create_dir_all(dir).unwrap();
    let (train_images, train_labels) = synthetic_digits(train);
    let (test_images, test_labels) = synthetic_digits(test);
    let files = [
        ("train-images-idx3-ubyte", encode_images(&train_images)),
        ("train-labels-idx1-ubyte", encode_labels(&train_labels)),
        ("t10k-images-idx3-ubyte", encode_images(&test_images)),
        ("t10k-labels-idx1-ubyte", encode_labels(&test_labels)),
    ];
    for (name, bytes) in files {
        if gz {
            fs::write(dir.join(format!("{name}.gz")), gzip(&bytes)).unwrap();
        } else {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

//! `lenet export --format onnx` proven by a real runtime: ONNX Runtime (Python's `onnxruntime`)
//! runs the exported file on the 10,000 MNIST test images and must give Burn's logits within
//! 1e-5 and exactly `lenet eval`'s number of correct answers, for both networks; `onnx.checker`
//! must pass the file; and the Python snippet of docs/cli.md must read a digit with it. Also
//! `lenet import`, the way back from PyTorch-layout weights.
//!
//! The Python side needs `onnx`, `onnxruntime`, `numpy` and `pillow`: `.ci/run` installs them in
//! a virtual environment and names its interpreter in `LENET_PYTHON`. Without them the ONNX
//! Runtime checks say why and are skipped, unless `LENET_REQUIRE_ONNX` is set, as CI sets it:
//! then they fail.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{lenet, onnx_python, project_file, real_mnist_dir, train_both_networks};
use lenet::data::batcher::images_tensor;
use lenet::data::idx::Part;
use lenet::data::split::ImageSplit;
use lenet::run::FinishedRun;

/// A small run of each network, trained once for all the tests here.
fn runs() -> &'static (tempfile::TempDir, PathBuf, PathBuf) {
    static RUNS: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    RUNS.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let (modern, paper) = train_both_networks(root.path());
        (root, modern, paper)
    })
}

/// Burn's logits for the 10,000 test images, as little-endian f32.
fn burn_logits(run: &Path) -> Vec<u8> {
    let run = FinishedRun::load(run, None).unwrap();
    let test = ImageSplit::read_idx(&real_mnist_dir(), Part::Test, 10).unwrap();
    let model = run.model.clone();
    (0..10)
        .flat_map(|batch| {
            let images: Vec<&[u8]> = (batch * 1000..(batch + 1) * 1000)
                .map(|i| test.image(i))
                .collect();
            let logits = model.forward(images_tensor(images.into_iter(), &run.device));
            logits.into_data().iter::<f32>().collect::<Vec<_>>()
        })
        .flat_map(f32::to_le_bytes)
        .collect()
}

/// How many test images `lenet eval` gets right for `run`.
fn eval_correct(run: &Path) -> u64 {
    let output = lenet()
        .args(["eval", "--json", "--run"])
        .arg(run)
        .arg("--data-dir")
        .arg(real_mnist_dir())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&output).unwrap();
    report["correct"].as_u64().unwrap()
}

fn export_onnx(run: &Path, out: &Path) {
    lenet()
        .args(["export", "--format", "onnx", "--probabilities", "--run"])
        .arg(run)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

fn check_in_onnx_runtime(run: &Path, name: &str) {
    let Some(python) = onnx_python(&format!("the ONNX Runtime check of {name}")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join(format!("{name}.onnx"));
    export_onnx(run, &model);
    let logits = dir.path().join("logits.f32");
    fs::write(&logits, burn_logits(run)).unwrap();
    let output = Command::new(python)
        .arg(project_file("tests/onnx_check.py"))
        .arg(&model)
        .arg(&logits)
        .arg(real_mnist_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{name}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    println!("{name}: {result}");
    assert_eq!(result["checker"], "passed");
    assert_eq!(
        result["outputs"],
        serde_json::json!(["logits", "probabilities"])
    );
    let difference = result["max_logit_difference"].as_f64().unwrap();
    assert!(difference <= 1e-5, "{name}: logits differ by {difference}");
    assert_eq!(
        result["correct"].as_u64().unwrap(),
        eval_correct(run),
        "{name}"
    );
    assert!(result["probability_sum_error"].as_f64().unwrap() < 1e-5);
    assert_eq!(result["classes"].as_array().unwrap().len(), 10);
}

#[test]
fn the_modern_network_runs_in_onnx_runtime_as_in_burn() {
    check_in_onnx_runtime(&runs().1, "modern");
}

#[test]
fn the_1998_network_runs_in_onnx_runtime_as_in_burn() {
    check_in_onnx_runtime(&runs().2, "lecun98");
}

/// The snippet of docs/cli.md, which reads a 28x28 PNG and prints the digit, run as written.
#[test]
fn the_docs_onnx_snippet_reads_a_digit() {
    let Some(python) = onnx_python("the docs' ONNX snippet") else {
        return;
    };
    let page = fs::read_to_string(project_file("docs/cli.md")).unwrap();
    let export = &page[page.find("### Export").expect("an Export section")..];
    let snippet = export
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a python snippet in the Export section");
    assert!(snippet.lines().count() <= 10, "{snippet}");

    let dir = tempfile::tempdir().unwrap();
    export_onnx(&runs().1, &dir.path().join("lenet.onnx"));
    // A test digit as `lenet predict --save-input` writes what the model sees: digit.png.
    let test = ImageSplit::read_idx(&real_mnist_dir(), Part::Test, 10).unwrap();
    let seven = (0..100).find(|&i| test.label(i) == 7).unwrap();
    image::GrayImage::from_raw(28, 28, test.image(seven).to_vec())
        .unwrap()
        .save(dir.path().join("digit.png"))
        .unwrap();
    let output = Command::new(python)
        .args(["-c", snippet])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "7", "{stdout}");
}

/// Weights in PyTorch's layout become a run that eval, predict and export use like any other;
/// the round trip through `export` and `import` keeps every answer.
#[test]
fn import_makes_a_run_from_exported_weights() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("lenet.safetensors");
    let modern = &runs().1;
    lenet()
        .args(["export", "--run"])
        .arg(modern)
        .arg("--out")
        .arg(&weights)
        .assert()
        .success();
    let imported = dir.path().join("imported");
    lenet()
        .args(["import", "--weights"])
        .arg(&weights)
        .args(["--config", &project_file("configs/smoke.json"), "--out"])
        .arg(&imported)
        .assert()
        .success();
    assert!(imported.join("model.bpk").is_file() && imported.join("config.json").is_file());
    assert_eq!(eval_correct(&imported), eval_correct(modern));
    assert!(
        burn_logits(&imported) == burn_logits(modern),
        "identical logits"
    );

    // Weights that do not fit the config: each problem named, in one line, nothing written.
    let tanh = dir.path().join("wrong.json");
    fs::write(&tanh, r#"{"model": {"variant": "lecun98"}}"#).unwrap();
    let refused = dir.path().join("refused");
    let assert = lenet()
        .args(["import", "--weights"])
        .arg(&weights)
        .arg("--config")
        .arg(&tanh)
        .arg("--out")
        .arg(&refused)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("PyTorch has no layer for"), "{stderr}");
    assert!(!refused.exists());

    let mut bytes = fs::read(&weights).unwrap();
    let header = String::from_utf8_lossy(&bytes[8..400]).into_owned();
    assert!(header.contains("\"c3.weight\""), "{header}");
    // Rename one tensor: the model misses it and the file has one it does not know.
    let at = bytes
        .windows(11)
        .position(|w| w == b"\"c3.weight\"")
        .unwrap();
    bytes[at + 1..at + 3].copy_from_slice(b"cX");
    let renamed = dir.path().join("renamed.safetensors");
    fs::write(&renamed, &bytes).unwrap();
    let assert = lenet()
        .args(["import", "--weights"])
        .arg(&renamed)
        .args(["--config", &project_file("configs/smoke.json"), "--out"])
        .arg(&refused)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("c3.weight is missing") && stderr.contains("cX.weight is not a tensor"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!refused.exists());
}

#[test]
fn export_refuses_an_unfinished_run_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let unfinished = dir.path().join("unfinished");
    fs::create_dir(&unfinished).unwrap();
    fs::copy(runs().1.join("config.json"), unfinished.join("config.json")).unwrap();
    let out = dir.path().join("model.onnx");
    let assert = lenet()
        .args(["export", "--format", "onnx", "--run"])
        .arg(&unfinished)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("no final model"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!out.exists());
}

//! `lenet explain` on both networks: every layer's output for an image, in the model's order and
//! shapes, from the model's own forward pass (recomputed outside Burn by NumPy and ONNX Runtime,
//! with `LENET_PYTHON` as `tests/onnx.rs` uses it); a saliency that is the answer's gradient; the
//! figures and the filters; and the refusals.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{lenet, onnx_python, project_file, real_mnist_dir, train_both_networks};
use lenet::data::batcher::images_tensor;
use lenet::data::idx::Part;
use lenet::data::image::Prepared;
use lenet::data::split::ImageSplit;
use lenet::inference::explain::{explain_files, explain_prepared};
use lenet::inference::predict::Reading;
use lenet::run::{FinishedRun, ModelChoice};
use serde_json::Value;

/// A small run of each network and a few MNIST test digits as PNG files, made once.
struct Setup {
    _root: tempfile::TempDir,
    modern: PathBuf,
    lecun98: PathBuf,
    /// Test digits 0 to 3 as 28x28 PNGs, light ink on black.
    digits: Vec<PathBuf>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let (modern, lecun98) = train_both_networks(root.path());
        let test = ImageSplit::read_idx(&real_mnist_dir(), Part::Test, 10).unwrap();
        let digits = (0..4)
            .map(|i| {
                let path = root.path().join(format!("digit{i}.png"));
                image::GrayImage::from_raw(28, 28, test.image(i).to_vec())
                    .unwrap()
                    .save(&path)
                    .unwrap();
                path
            })
            .collect();
        Setup {
            _root: root,
            modern,
            lecun98,
            digits,
        }
    })
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `lenet explain --json` on `images`, parsed.
fn explain_json(run: &Path, images: &[&Path]) -> Vec<Value> {
    let output = lenet()
        .args(["explain", "--json", "--run", path(run)])
        .args(images.iter().map(|p| path(p)))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice::<Value>(&output.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn softmax(values: &[f64]) -> Vec<f64> {
    let top = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = values.iter().map(|v| (v - top).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[test]
fn every_layer_of_both_networks_in_order_with_its_shape() {
    let setup = setup();
    for run in [&setup.modern, &setup.lecun98] {
        let lecun98 = run == &setup.lecun98;
        let digit = &setup.digits[0];
        let explained = explain_json(run, &[digit]);
        assert_eq!(explained.len(), 1);
        let e = &explained[0];
        assert_eq!(e["file"], path(digit));
        let layers = e["layers"].as_array().unwrap();
        let shapes: Vec<(String, Vec<u64>)> = layers
            .iter()
            .map(|l| {
                let shape = l["shape"].as_array().unwrap();
                (
                    l["name"].as_str().unwrap().to_string(),
                    shape.iter().map(|d| d.as_u64().unwrap()).collect(),
                )
            })
            .collect();
        let expected: Vec<(String, Vec<u64>)> = [
            ("c1", vec![6, 28, 28]),
            ("s2", vec![6, 14, 14]),
            ("c3", vec![16, 10, 10]),
            ("s4", vec![16, 5, 5]),
            ("c5", vec![120, 1, 1]),
            ("f6", vec![84]),
            ("f7", vec![10]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        assert_eq!(shapes, expected, "{}", run.display());
        for layer in layers {
            let size: u64 = layer["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .product();
            assert_eq!(layer["values"].as_array().unwrap().len() as u64, size);
        }
        let input = floats(&e["input"]);
        assert_eq!(input.len(), 784);
        assert!(input.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(input.iter().any(|&v| v > 0.5), "the digit's ink is there");

        // The answer is the output layer's: softmax of the logits (the 1998 network's logits
        // are minus its RBF distances over 32), and `lenet predict`'s answer to the same file.
        let f7 = floats(&layers[6]["values"]);
        let logits: Vec<f64> = if lecun98 {
            assert!(f7.iter().all(|&d| d >= 0.0), "distances: {f7:?}");
            f7.iter().map(|d| -d / 32.0).collect()
        } else {
            f7
        };
        let probabilities = floats(&e["probabilities"]);
        for (a, b) in softmax(&logits).iter().zip(&probabilities) {
            assert!((a - b).abs() < 1e-5, "{a} against {b}");
        }
        let predicted = lenet()
            .args(["predict", "--json", "--run", path(run), path(digit)])
            .output()
            .unwrap();
        let predicted: Value = serde_json::from_slice(&predicted.stdout).unwrap();
        assert_eq!(e["class"], predicted[0]["class"]);
        assert_eq!(e["name"], predicted[0]["name"]);
        let (p, q) = (
            e["probability"].as_f64().unwrap(),
            predicted[0]["probability"].as_f64().unwrap(),
        );
        assert!((p - q).abs() < 1e-6, "explain {p}, predict {q}");

        let saliency = floats(&e["saliency"]);
        assert_eq!(saliency.len(), 784);
        assert!(saliency.iter().all(|s| s.is_finite()));
        assert!(
            saliency.iter().any(|&s| s.abs() > 1e-6),
            "{}",
            run.display()
        );
    }
}

#[test]
fn the_saliency_is_the_gradient_of_the_answers_logit() {
    // A small step on the pixels the answer is most sensitive to moves the logit by about the
    // saliency times the step: the network is piecewise linear around the image.
    let setup = setup();
    let run = FinishedRun::load(&setup.modern, None).unwrap();
    let test = ImageSplit::read_idx(&real_mnist_dir(), Part::Test, 10).unwrap();
    let pixels = test.image(0).to_vec();
    let prepared = Prepared {
        pixels: pixels.clone(),
        other_marks: 0,
    };
    let classes = run.config.data.class_names();
    let explained = explain_prepared(
        &run.model,
        &[(Path::new("d"), &prepared)],
        &run.device,
        &classes,
    )
    .pop()
    .unwrap();
    let answer = explained.class as usize;
    let logit = |pixels: &[u8]| -> f32 {
        let logits = run
            .model
            .forward(images_tensor([pixels].into_iter(), &run.device));
        logits.into_data().iter::<f32>().nth(answer).unwrap()
    };
    let before = logit(&pixels);
    let mut ranked: Vec<usize> = (0..784).collect();
    ranked.sort_by(|&a, &b| {
        explained.saliency[b]
            .abs()
            .total_cmp(&explained.saliency[a].abs())
    });
    let mut checked = 0;
    for &i in ranked.iter().take(40) {
        let step: i16 = if pixels[i] < 128 { 4 } else { -4 };
        let mut moved = pixels.clone();
        moved[i] = (pixels[i] as i16 + step) as u8;
        let change = logit(&moved) - before;
        let expected = explained.saliency[i] * step as f32 / 255.0;
        // A ReLU that switches inside the step bends the line; most pixels do not cross one.
        if (change - expected).abs() <= 0.1 * expected.abs() + 1e-5 {
            checked += 1;
        }
    }
    assert!(
        checked >= 30,
        "only {checked} of 40 pixels moved the logit as the saliency says"
    );
}

#[test]
fn figures_come_one_per_image_and_the_filters_in_one() {
    let setup = setup();
    let out = tempfile::tempdir().unwrap();
    let other = out.path().join("elsewhere");
    fs::create_dir(&other).unwrap();
    // Two files of one name: the figures are numbered, not overwritten.
    let again = other.join("digit0.png");
    fs::copy(&setup.digits[0], &again).unwrap();
    let figures = out.path().join("figures");
    let output = lenet()
        .args([
            "explain",
            "--run",
            path(&setup.modern),
            "--out",
            path(&figures),
        ])
        .args([path(&setup.digits[0]), path(&again), path(&setup.digits[1])])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("{}: ", setup.digits[1].display())),
        "{stdout}"
    );
    assert!(stdout.contains("c3"), "a line per layer: {stdout}");
    for name in ["digit0.png", "digit0-2.png", "digit1.png"] {
        let figure = image::open(figures.join(name)).unwrap();
        assert_eq!(figure.width(), 1240, "{name}");
        assert!(figure.height() > 800, "{name}");
    }
    for run in [&setup.modern, &setup.lecun98] {
        let out = tempfile::tempdir().unwrap();
        lenet()
            .args(["explain", "--filters", "--run", path(run), "--out"])
            .arg(out.path())
            .assert()
            .success();
        let figure = image::open(out.path().join("filters.png")).unwrap();
        assert_eq!(figure.width(), 1240);
    }
}

#[test]
fn the_filters_are_the_models_weights() {
    let setup = setup();
    for run in [&setup.modern, &setup.lecun98] {
        let lecun98 = run == &setup.lecun98;
        let output = lenet()
            .args(["explain", "--filters", "--json", "--run", path(run)])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let json: Value = serde_json::from_slice(&output.stdout).unwrap();
        let layers = json["layers"].as_array().unwrap();
        let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
        if lecun98 {
            assert_eq!(names, ["c1", "c3", "c3_table", "f7_prototypes"]);
        } else {
            assert_eq!(names, ["c1", "c3"]);
        }
        let model = FinishedRun::load(run, None).unwrap().model;
        let weights: Vec<f32> = model.c1.weight.val().into_data().iter::<f32>().collect();
        assert_eq!(layers[0]["shape"], serde_json::json!([6, 1, 5, 5]));
        let given: Vec<f32> = floats(&layers[0]["values"])
            .iter()
            .map(|&v| v as f32)
            .collect();
        assert_eq!(given, weights, "each weight, to the bit");
        assert_eq!(layers[1]["shape"], serde_json::json!([16, 6, 5, 5]));
        if lecun98 {
            let table = floats(&layers[2]["values"]);
            assert_eq!(layers[2]["shape"], serde_json::json!([16, 6]));
            assert_eq!(table.iter().filter(|&&v| v == 1.0).count(), 60, "Table I");
            let c3 = floats(&layers[1]["values"]);
            for (connection, &connected) in table.iter().enumerate() {
                let kernel = &c3[connection * 25..(connection + 1) * 25];
                assert_eq!(
                    connected == 0.0,
                    kernel.iter().all(|&w| w == 0.0),
                    "C3 weights where Table I connects map {} to S2 map {}",
                    connection / 6,
                    connection % 6
                );
            }
            assert_eq!(layers[3]["shape"], serde_json::json!([10, 12, 7]));
            assert!(floats(&layers[3]["values"]).iter().all(|v| v.abs() == 1.0));
        }
    }
}

#[test]
fn the_layers_match_the_model_outside_burn() {
    let Some(python) = onnx_python("the check of explain outside Burn") else {
        return;
    };
    let setup = setup();
    for (run, variant, activation) in [
        (&setup.modern, "modern", "relu"),
        (&setup.lecun98, "lecun98", "scaled_tanh"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.onnx");
        lenet()
            .args(["export", "--format", "onnx", "--run", path(run), "--out"])
            .arg(&model)
            .assert()
            .success();
        let explained = dir.path().join("explained.json");
        let output = lenet()
            .args([
                "explain",
                "--json",
                "--run",
                path(run),
                path(&setup.digits[2]),
            ])
            .output()
            .unwrap();
        fs::write(&explained, &output.stdout).unwrap();
        let output = Command::new(&python)
            .arg(project_file("tests/explain_check.py"))
            .args([path(&model), path(&explained), variant, activation])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{variant}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: Value = serde_json::from_str(stdout.trim()).unwrap();
        println!("{variant}: {result}");
        for key in ["c1_difference", "logit_difference"] {
            let difference = result[key].as_f64().unwrap();
            assert!(difference <= 1e-4, "{variant}: {key} {difference}");
        }
    }
}

#[test]
fn what_cannot_be_explained_is_said_in_one_line() {
    let setup = setup();
    let run = path(&setup.modern);
    let config_file = format!("{run}/config.json");
    let cases: [(&[&str], i32, &str); 4] = [
        (&["explain", "--run", run], 2, "IMAGE"),
        (
            &["explain", "--run", &config_file, "--filters"],
            1,
            "config.json: exists and is not a directory",
        ),
        (
            &["explain", "--run", run, "/nowhere/digit.png"],
            1,
            "no such file",
        ),
        (
            &["explain", "--run", "/nowhere/run", "--filters"],
            2,
            "/nowhere/run",
        ),
    ];
    common::every_case(
        cases,
        |(args, _, _)| format!("{args:?}"),
        |(args, code, expected)| {
            let output = lenet().args(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(code), "{stderr}");
            assert!(stderr.contains(expected), "{stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        },
    );
}

/// `lenet serve`'s explanation and filters of each network are `lenet explain`'s, value for
/// value; and `--model best` explains with the best epoch's weights.
#[test]
fn the_api_and_the_best_model_explain_as_the_command_does() {
    let setup = setup();
    let artifacts = setup.modern.parent().unwrap();
    assert_eq!(setup.lecun98.parent(), Some(artifacts));
    let server = common::server::Server::start(artifacts);
    let digit = &setup.digits[1];
    for run in [&setup.modern, &setup.lecun98] {
        let name = run.file_name().unwrap().to_str().unwrap();
        let expected = &explain_json(run, &[digit])[0];
        let mut response = common::server::http()
            .post(&format!("{}/api/runs/{name}/explain", server.url))
            .header("Content-Type", "image/png")
            .send(&fs::read(digit).unwrap()[..])
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{name}");
        let answer = common::server::read_json(&mut response);
        for key in [
            "class",
            "probabilities",
            "output",
            "input",
            "layers",
            "saliency",
        ] {
            assert_eq!(answer[key], expected[key], "{name}: {key}");
        }
        let mut response = common::server::http()
            .get(&format!("{}/api/runs/{name}/filters", server.url))
            .call()
            .unwrap();
        let filters = lenet()
            .args(["explain", "--filters", "--json", "--run", path(run)])
            .output()
            .unwrap();
        assert_eq!(
            common::server::read_json(&mut response),
            serde_json::from_slice::<Value>(&filters.stdout).unwrap(),
            "{name}: filters"
        );
    }
    let best = FinishedRun::load_model(&setup.modern, None, ModelChoice::Best).unwrap();
    let classes = best.config.data.class_names();
    let reading = Reading {
        decoding: best.config.data.decoding(),
        classes: &classes,
    };
    let library = explain_files(
        &best.model,
        std::slice::from_ref(digit),
        &best.device,
        reading,
    );
    let output = lenet()
        .args([
            "explain",
            "--json",
            "--model",
            "best",
            "--run",
            path(&setup.modern),
        ])
        .arg(digit)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        serde_json::from_slice::<Value>(&output.stdout).unwrap()[0],
        // Through text, as the command prints it: f32 values parse back as their shortest form.
        serde_json::from_str::<Value>(
            &serde_json::to_string(library[0].as_ref().unwrap()).unwrap()
        )
        .unwrap()
    );
}

//! Every way a user can get the input wrong (config, data files, run folder, device), each
//! answered by the binary with one line naming the problem, the right exit code, and nothing
//! written.

mod common;

use std::fs;
use std::path::Path;

use common::{lenet, write_synthetic_mnist};

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

/// Image folders `DIR/<split>/<class>/` with a few small PNGs in each class.
fn image_folders(dir: &Path, split: &str, classes: &[&str]) {
    for class in classes {
        let folder = dir.join(split).join(class);
        fs::create_dir_all(&folder).unwrap();
        for i in 0..3u8 {
            let image = image::GrayImage::from_fn(12, 12, |x, y| {
                image::Luma([if (x + y + i as u32).is_multiple_of(5) {
                    255
                } else {
                    0
                }])
            });
            image.save(folder.join(format!("{i}.png"))).unwrap();
        }
    }
}

fn two_classes(dir: &Path) {
    image_folders(dir, "train", &["cat", "dog"]);
}

const FOLDER_CONFIG: &str =
    r#"{"epochs": 1, "batch_size": 2, "data": {"dataset": "folder", "validation_size": 1}}"#;

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
        expected: "data.validation_size (40) must be smaller than the 40 images it is taken from; a \
                   fraction such as 0.1 takes that share of them",
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
        what: "folder data set without train/",
        config: FOLDER_CONFIG,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "no train/ folder; a \"folder\" data set holds train/<class>/<images>",
    },
    BadInput {
        what: "an empty class folder",
        config: FOLDER_CONFIG,
        data: |dir| {
            two_classes(dir);
            fs::create_dir_all(dir.join("train/empty")).unwrap();
        },
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "train/empty: holds no images (png, jpg",
    },
    BadInput {
        what: "one class folder",
        config: FOLDER_CONFIG,
        data: |dir| image_folders(dir, "train", &["cat"]),
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "train: only one class folder (cat); a classifier needs at least two classes",
    },
    BadInput {
        what: "an unreadable image",
        config: FOLDER_CONFIG,
        data: |dir| {
            two_classes(dir);
            fs::write(dir.join("train/dog/broken.png"), b"not an image").unwrap();
        },
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "train/dog/broken.png: not a PNG, JPEG, BMP, WebP, TIFF or GIF image (set \
                   data.unreadable_images to \"skip\"",
    },
    BadInput {
        what: "test/ with other classes than train/",
        config: FOLDER_CONFIG,
        data: |dir| {
            two_classes(dir);
            image_folders(dir, "test", &["cat", "cow"]);
        },
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "test: its class folders differ from train/'s: it lacks dog; it has cow that \
                   train/ has not",
    },
    BadInput {
        what: "a test share that leaves nothing to train on",
        config: r#"{"epochs": 1, "data": {"dataset": "folder", "test_size": 0.99}}"#,
        data: two_classes,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "train: data.test_size holds out 6 of its 6 images, leaving none to train on",
    },
    BadInput {
        what: "image folders named as MNIST",
        config: r#"{"epochs": 1}"#,
        data: |dir| {
            for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
                fs::remove_file(dir.join(name)).unwrap();
            }
            two_classes(dir);
        },
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "it holds a train/ folder: for image folders, set data.dataset to \"folder\"",
    },
    BadInput {
        what: "RBF outputs for other than ten classes",
        config: r#"{"epochs": 1, "model": {"variant": "lecun98"},
                    "data": {"dataset": "folder", "validation_size": 1}}"#,
        data: two_classes,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "model.output: \"rbf\" is the 1998 paper's output units",
    },
    BadInput {
        what: "an IDX label beyond the classes named",
        config: r#"{"epochs": 1, "data": {"dataset": "idx", "validation_size": 10}}"#,
        data: |dir| fs::write(dir.join("classes.txt"), "zero\none\ntwo\n").unwrap(),
        args: &[],
        artifact: "{root}/run",
        code: 1,
        expected: "train-labels-idx1-ubyte: label 3 at index 3 is not a class 0-2",
    },
    BadInput {
        what: "a class named twice",
        config: r#"{"data": {"dataset": "idx", "classes": ["a", "b", "a"]}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "data.classes: names the class \"a\" twice",
    },
    BadInput {
        what: "a validation size that is neither a count nor a fraction",
        config: r#"{"data": {"validation_size": 1.5}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "data.validation_size: expected a number of images (a whole number) or a \
                   fraction in (0, 1), got 1.5",
    },
    BadInput {
        what: "init_from_skip naming no layer",
        config: r#"{"init_from": "x", "init_from_skip": ["f8"]}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "init_from_skip: \"f8\" is not a layer; the layers are c1, s2, c3, s4, c5, f6, f7",
    },
    BadInput {
        what: "init_from naming no run",
        config: r#"{"epochs": 1, "init_from": "/nowhere/run", "data": {"validation_size": 10}}"#,
        data: keep,
        args: &[],
        artifact: "{root}/run",
        code: 2,
        expected: "/nowhere/run: no such folder",
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

    // Every case runs, and every one that fails is reported, not only the first.
    let mut failures = Vec::new();
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
        let mut problems = Vec::new();
        if output.status.code() != Some(*code) {
            problems.push(format!("exit {:?}, not {code}", output.status.code()));
        }
        if !stderr.contains(expected.as_str()) {
            problems.push(format!("lacks `{expected}`"));
        }
        if stderr.trim_end().lines().count() != 1 {
            problems.push("not one line".to_string());
        }
        if stderr.contains("panicked") {
            problems.push("panicked".to_string());
        }
        // The last --artifact-dir is the one that counts.
        let artifact =
            Path::new(&args[args.iter().rposition(|a| a == "--artifact-dir").unwrap() + 1]);
        if artifact.is_file() {
            if fs::read(artifact).unwrap() != b"keep me" {
                problems.push(format!("changed {}", artifact.display()));
            }
        } else if artifact.exists() {
            problems.push(format!("wrote {}", artifact.display()));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{what}: {}: {}",
                problems.join("; "),
                stderr.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs were not refused as they should be:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

//! Training on data other than MNIST's files: image folders made here from MNIST digits (PNG
//! and JPEG, of mixed sizes and colour modes), an IDX set of 26 classes, early stopping and
//! the best model, continuing a finished run, and starting from another run's weights.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::Dataset;
use burn::train::Interrupter;
use common::{lenet, real_mnist_dir, summary_of};
use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage, imageops};
use lenet::config::TrainingConfig;
use lenet::data::idx::Part;
use lenet::data::idx::{encode_images, encode_labels};
use lenet::data::split::ImageSplit;
use lenet::inference::export::to_safetensors;
use lenet::input::{IMAGE_PIXELS, IMAGE_SIDE};
use lenet::run::history::best_epoch;
use lenet::run::{FinishedRun, ModelChoice};
use lenet::training::{Progress, StartMode, TrainOptions, train};

/// The digits each folder class is made of, and its name.
const CLASSES: [(u16, &str); 3] = [(0, "circle"), (1, "stroke"), (7, "seven")];

/// MNIST's images of `digit`, from the training or the test file, at most `count`.
fn digits_of(digit: u16, test: bool, count: usize) -> Vec<Vec<u8>> {
    let part = if test { Part::Test } else { Part::Train };
    let split = ImageSplit::read_idx(&real_mnist_dir(), part, 10).unwrap();
    (0..split.len())
        .filter(|&i| split.label(i) == digit)
        .take(count)
        .map(|i| split.image(i).to_vec())
        .collect()
}

/// A 28x28 digit as a picture: each kind another size, colour mode, polarity and format.
fn picture(pixels: &[u8], kind: usize) -> (DynamicImage, &'static str) {
    let grey = GrayImage::from_raw(28, 28, pixels.to_vec()).unwrap();
    match kind % 4 {
        0 => (DynamicImage::ImageLuma8(grey), "png"),
        // Dark ink on white paper, larger, in colour, as a JPEG.
        1 => {
            let big = imageops::resize(&grey, 84, 84, imageops::FilterType::Triangle);
            let rgb = RgbImage::from_fn(84, 84, |x, y| {
                let ink = big.get_pixel(x, y)[0];
                Rgb([255 - ink, 255 - ink, 250 - ink.min(250)])
            });
            (DynamicImage::ImageRgb8(rgb), "jpg")
        }
        // Transparent background, ink in the alpha channel.
        2 => {
            let rgba = RgbaImage::from_fn(28, 28, |x, y| Rgba([0, 0, 0, grey.get_pixel(x, y)[0]]));
            (DynamicImage::ImageRgba8(rgba), "png")
        }
        // Off-centre on a wider canvas.
        _ => {
            let mut canvas = GrayImage::from_pixel(60, 40, Luma([0]));
            imageops::overlay(&mut canvas, &grey, 3, 6);
            (DynamicImage::ImageLuma8(canvas), "png")
        }
    }
}

/// Writes `DIR/<split>/<class>/` image folders of MNIST digits.
fn write_folders(dir: &Path, per_class: usize, with_test: bool) {
    for (digit, name) in CLASSES {
        let mut splits = vec![("train", false, per_class)];
        if with_test {
            splits.push(("test", true, per_class / 4));
        }
        for (split, test, count) in splits {
            let folder = dir.join(split).join(name);
            fs::create_dir_all(&folder).unwrap();
            for (i, pixels) in digits_of(digit, test, count).iter().enumerate() {
                let (image, ending) = picture(pixels, i);
                image.save(folder.join(format!("{i:04}.{ending}"))).unwrap();
            }
        }
    }
}

/// A config file in `dir` for image folders in `data`, trained `epochs` with `optimizer`; `data`
/// and `extra` add keys to the data section and the top level.
fn folder_config(
    dir: &Path,
    data: &Path,
    epochs: usize,
    optimizer: &str,
    extra: (&str, &str),
) -> PathBuf {
    let path = dir.join(format!("folders-{epochs}-{}.json", extra.1.len()));
    let (data_extra, extra) = extra;
    let text = format!(
        r#"{{"epochs": {epochs}, "batch_size": 32, "seed": 5, "checkpoint_every_seconds": 0,
            "optimizer": {optimizer},
            "data": {{"dataset": "folder", "dir": {data:?}{data_extra}}}{extra}}}"#
    );
    fs::write(&path, text).unwrap();
    path
}

const ADAM: &str = r#"{"type": "adam", "learning_rate": 0.002}"#;

/// The final weights of a run, as safetensors bytes (burnpack files also hold parameter ids,
/// which differ between processes).
fn weights_bytes(run: &Path) -> Vec<u8> {
    let run = FinishedRun::load(run, None).unwrap();
    to_safetensors(&run.model, &run.config.model_config()).unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let output = lenet().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Trains `config` on the data in `data` into `run`, with `extra` flags; returns what it printed.
fn train_into(config: &Path, data: &Path, run: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "--config",
        path(config),
        "--data-dir",
        path(data),
        "--artifact-dir",
        path(run),
        "--no-tui",
    ];
    args.extend_from_slice(extra);
    run_ok(&args)
}

/// Runs `args`, which must be refused as a usage error (exit 2) saying `expected`.
fn refused(args: &[&str], expected: &str) {
    let output = lenet().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}

/// Trains `config` in-process into `run`, optionally stopped once it has trained
/// `stop_after` batches, then resumed from its checkpoint.
fn train_in_process(config: &Path, run: &Path, stop_after: Option<usize>) {
    let mut config = TrainingConfig::load(config).unwrap();
    config.artifact_dir = Some(run.to_path_buf());
    let mut options = TrainOptions {
        dashboard: false,
        ..TrainOptions::default()
    };
    let mut mode = StartMode::New;
    if let Some(stop_after) = stop_after {
        let interrupter = Interrupter::new();
        let handle = interrupter.clone();
        let trained = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        options.interrupter = interrupter;
        options.on_progress = Some(Arc::new(move |progress| {
            if let Progress::Trained(_) = progress
                && trained.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == stop_after
            {
                handle.stop(Some("the test"));
            }
        }));
        assert!(
            train(&config, "folders", mode, &options).is_err(),
            "the run was stopped"
        );
        options = TrainOptions {
            dashboard: false,
            ..TrainOptions::default()
        };
        mode = StartMode::Resume;
    }
    train(&config, "folders", mode, &options).unwrap();
}

#[test]
fn image_folders_train_resume_exactly_and_answer_by_class_name() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("shapes");
    write_folders(&data, 160, true);
    let config = folder_config(
        root.path(),
        &data,
        3,
        ADAM,
        (r#", "validation_size": 0.1"#, ""),
    );

    let whole = root.path().join("whole");
    train_in_process(&config, &whole, None);
    let summary = summary_of(&whole);
    assert_eq!(summary.classes, ["circle", "seven", "stroke"]);
    assert_eq!(summary.test_images, 120);
    assert!(
        summary.test_accuracy >= 0.95,
        "3 classes of digits: {:.3}",
        summary.test_accuracy
    );

    // Stopped in epoch 2 and resumed: the same weights as the run nobody stopped.
    let resumed = root.path().join("resumed");
    train_in_process(&config, &resumed, Some(20));
    assert!(summary_of(&resumed).resumed);
    assert!(
        weights_bytes(&resumed) == weights_bytes(&whole),
        "a resumed folder run has the weights of an uninterrupted one"
    );

    let table = run_ok(&["eval", "--run", path(&whole)]);
    assert!(table.contains("\ncircle      40  "), "{table}");
    assert!(table.contains("\n seven      40  "), "{table}");
    let answers = fs::read_to_string(whole.join("eval/predictions.csv")).unwrap();
    let first = answers.lines().nth(1).unwrap();
    let file = data.join("test/circle/0000.png");
    let cells: Vec<&str> = first.split(',').collect();
    assert_eq!(cells[4], "circle", "the label's name: {first}");
    assert_eq!(
        cells[6],
        file.display().to_string(),
        "the image's file: {first}"
    );
    let csv = fs::read_to_string(whole.join("eval/confusion.csv")).unwrap();
    assert!(
        csv.starts_with("true\\predicted,circle,seven,stroke\n"),
        "{csv}"
    );

    // predict reads a new picture the way training read the folder, and answers by name.
    let seven = &digits_of(7, true, 300)[299];
    let file = root.path().join("seven.jpg");
    picture(seven, 1).0.save(&file).unwrap();
    let json = run_ok(&["predict", "--json", "--run", path(&whole), path(&file)]);
    let answers: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(answers[0]["name"], "seven", "{answers}");
    assert_eq!(answers[0]["class"], 1);
    assert_eq!(answers[0]["top3"][0]["name"], "seven");
}

#[test]
fn without_a_test_folder_a_seeded_share_is_held_out_and_unreadable_files_can_be_skipped() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("shapes");
    write_folders(&data, 40, false);
    let broken = data.join("train/seven/broken.png");
    fs::write(&broken, b"not an image").unwrap();
    let config = folder_config(
        root.path(),
        &data,
        1,
        ADAM,
        (
            r#", "test_size": 0.25, "validation_size": 6, "unreadable_images": "skip""#,
            "",
        ),
    );
    let run = root.path().join("run");
    let output = lenet()
        .args([
            "--config",
            path(&config),
            "--no-tui",
            "--artifact-dir",
            path(&run),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("warning: skipped {}: not a PNG", broken.display())),
        "{stderr}"
    );
    let summary = summary_of(&run);
    assert!(
        (29..=31).contains(&summary.test_images),
        "a quarter of 121 files: {}",
        summary.test_images
    );
    assert_eq!(
        summary.test_images + summary.train_images + summary.valid_images,
        120
    );
    // eval finds the same held-out images from the run's seed.
    let report = run_ok(&["eval", "--json", "--run", path(&run)]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["images"], summary.test_images);
    assert_eq!(report["correct"], summary.test_correct);
}

/// A data set of 26 classes in IDX files: each digit as it is (classes a-j), mirrored (k-t),
/// and digits 0-5 turned a quarter (u-z), named by a classes.txt.
fn write_letters(dir: &Path, train: usize, test: usize) {
    let read = |part| ImageSplit::read_idx(&real_mnist_dir(), part, 10).unwrap();
    fs::create_dir_all(dir).unwrap();
    for (split, count, images_name, labels_name) in [
        (
            &read(Part::Train),
            train,
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
        ),
        (
            &read(Part::Test),
            test,
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ),
    ] {
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for i in 0..count {
            let digit = split.label(i) as u8;
            let pixels = split.image(i);
            let form = i % 3;
            let (image, label) = match form {
                1 => (transformed(pixels, |x, y| (27 - x, y)), digit + 10),
                2 if digit <= 5 => (transformed(pixels, |x, y| (y, 27 - x)), digit + 20),
                _ => (pixels.try_into().unwrap(), digit),
            };
            images.push(image);
            labels.push(label);
        }
        fs::write(dir.join(images_name), encode_images(&images)).unwrap();
        fs::write(dir.join(labels_name), encode_labels(&labels)).unwrap();
    }
    let letters: Vec<String> = ('a'..='z').map(String::from).collect();
    fs::write(dir.join("classes.txt"), letters.join("\n")).unwrap();
}

fn transformed(pixels: &[u8], from: impl Fn(usize, usize) -> (usize, usize)) -> [u8; IMAGE_PIXELS] {
    let mut out = [0u8; IMAGE_PIXELS];
    for y in 0..IMAGE_SIDE {
        for x in 0..IMAGE_SIDE {
            let (sx, sy) = from(x, y);
            out[y * IMAGE_SIDE + x] = pixels[sy * IMAGE_SIDE + sx];
        }
    }
    out
}

#[test]
fn an_idx_set_of_26_classes_trains_with_its_class_names() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("letters");
    write_letters(&data, 9_000, 1_500);
    let config = root.path().join("letters.json");
    fs::write(
        &config,
        r#"{"epochs": 3, "batch_size": 64, "checkpoint_every_seconds": 0,
            "data": {"dataset": "idx", "validation_size": 500}}"#,
    )
    .unwrap();
    let run = root.path().join("run");
    let out = train_into(&config, &data, &run, &[]);
    assert!(out.contains("26 classes (a, b, c"), "{out}");
    let summary = summary_of(&run);
    assert_eq!(summary.classes.len(), 26);
    assert_eq!(summary.classes[25], "z");
    assert!(summary.test_accuracy > 0.85, "{}", summary.test_accuracy);
    assert_eq!(summary.parameters, 61_706 - 850 + 84 * 26 + 26);

    // `lenet summary` sizes the output layer from the data, as training does.
    let with_dir = root.path().join("letters-here.json");
    fs::write(
        &with_dir,
        format!(r#"{{"data": {{"dataset": "idx", "dir": {data:?}}}}}"#),
    )
    .unwrap();
    let layers = run_ok(&["summary", "--config", path(&with_dir)]);
    assert!(layers.contains("dense 84->26"), "{layers}");

    let table = run_ok(&["eval", "--run", path(&run)]);
    assert!(table.contains("\n    z  "), "{table}");
    assert!(
        table.contains("Confusion matrix: 26 x 26 classes"),
        "{table}"
    );
    let onnx = root.path().join("letters.onnx");
    run_ok(&[
        "export",
        "--format",
        "onnx",
        "--run",
        path(&run),
        "--out",
        path(&onnx),
    ]);
    let bytes = fs::read(&onnx).unwrap();
    let needle = br#"["a","b","c","#;
    assert!(
        bytes.windows(needle.len()).any(|w| w == needle),
        "the class names are in the ONNX metadata"
    );
}

#[test]
fn early_stopping_stops_patience_epochs_after_the_best_and_keeps_it() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("overfit.json");
    // 64 training digits and a high learning rate: validation loss soon rises.
    fs::write(
        &config,
        r#"{"epochs": 40, "batch_size": 16, "checkpoint_every_seconds": 0,
            "optimizer": {"type": "adam", "learning_rate": 0.004},
            "data": {"validation_size": 1000, "train_limit": 64, "test_limit": 500},
            "early_stopping": {"metric": "valid_loss", "patience": 3}}"#,
    )
    .unwrap();
    let run = root.path().join("run");
    let data = real_mnist_dir();
    train_into(&config, &data, &run, &[]);
    let summary = summary_of(&run);
    let best = best_epoch(&summary.history, lenet::config::StopMetric::ValidLoss, 0.0).unwrap();
    let last = summary.history.len();
    assert_eq!(summary.stopped_early_at, Some(last), "{summary:?}");
    assert!(last < 40, "stopped early");
    assert_eq!(last, best + 3, "patience epochs after the best");
    assert_eq!(summary.best.as_ref().unwrap().epoch, best);
    let best_model = FinishedRun::load_model(&run, None, ModelChoice::Best).unwrap();
    let best_weights = to_safetensors(&best_model.model, &best_model.config.model_config());
    assert!(
        best_weights.unwrap() != weights_bytes(&run),
        "best and last differ"
    );
    let best_report = run_ok(&["eval", "--json", "--model", "best", "--run", path(&run)]);
    let best_report: serde_json::Value = serde_json::from_str(&best_report).unwrap();
    let best_accuracy = summary.best.as_ref().unwrap().test_accuracy;
    assert!((best_report["accuracy"].as_f64().unwrap() - best_accuracy).abs() < 1e-12);
    assert!(run.join("eval-best/confusion.png").is_file());
    let runs = run_ok(&["runs", "--artifacts", path(root.path())]);
    assert!(
        runs.contains(&format!("finished, stopped early after epoch {last}")),
        "{runs}"
    );

    // A run early stopping ended cannot simply be extended: it would stop again at once.
    refused(
        &["resume", "--no-tui", "--epochs", "50", "--run", path(&run)],
        "early stopping ended the run",
    );
}

#[test]
fn resume_with_more_epochs_continues_a_finished_run_exactly() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("constant.json");
    // A constant learning rate: two epochs and then two more are exactly four epochs.
    fs::write(
        &config,
        r#"{"epochs": 2, "batch_size": 50, "checkpoint_every_seconds": 0,
            "data": {"validation_size": 200, "train_limit": 1000, "test_limit": 500}}"#,
    )
    .unwrap();
    let data = real_mnist_dir();
    let train_for =
        |run: &Path, epochs: &str| train_into(&config, &data, run, &["--epochs", epochs]);
    let four = root.path().join("four");
    train_for(&four, "4");
    let extended = root.path().join("extended");
    train_for(&extended, "2");
    refused(
        &[
            "resume",
            "--no-tui",
            "--epochs",
            "2",
            "--run",
            path(&extended),
        ],
        "has done 2 epochs already",
    );

    run_ok(&[
        "resume",
        "--no-tui",
        "--epochs",
        "4",
        "--run",
        path(&extended),
    ]);
    let summary = summary_of(&extended);
    assert_eq!((summary.epochs, summary.history.len()), (4, 4));
    assert!(
        weights_bytes(&extended) == weights_bytes(&four),
        "2 epochs continued to 4 are 4 epochs"
    );
    let config: TrainingConfig =
        serde_json::from_slice(&fs::read(extended.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config.epochs, 4,
        "the run's config says how far it now goes"
    );

    // Without a checkpoint there is nothing to continue from: refused, the run left as it was.
    fs::remove_dir_all(four.join("checkpoints")).unwrap();
    refused(
        &["resume", "--no-tui", "--epochs", "6", "--run", path(&four)],
        "no checkpoint that loads",
    );
    assert_eq!(summary_of(&four).epochs, 4);
}

#[test]
fn init_from_starts_from_another_runs_weights() {
    let root = tempfile::tempdir().unwrap();
    let digits = root.path().join("digits");
    let data = real_mnist_dir();
    let source_config = root.path().join("source.json");
    fs::write(
        &source_config,
        r#"{"epochs": 1, "batch_size": 50, "checkpoint_every_seconds": 0,
            "data": {"validation_size": 200, "train_limit": 2000, "test_limit": 500}}"#,
    )
    .unwrap();
    train_into(&source_config, &data, &digits, &[]);

    let shapes = root.path().join("shapes");
    write_folders(&shapes, 40, true);
    let start_from = |run: &str, extra: &str| {
        let extra = format!(r#", "init_from": {digits:?}{extra}"#);
        let config = folder_config(
            root.path(),
            &shapes,
            1,
            r#"{"type": "sgd", "learning_rate": 1e-9}"#,
            (r#", "validation_size": 0.1"#, &extra),
        );
        lenet()
            .args(["--config", path(&config), "--no-tui", "--artifact-dir"])
            .arg(root.path().join(run))
            .output()
            .unwrap()
    };
    // Ten classes there, three here: the output layer cannot carry over.
    let refused = start_from("refused", "");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("add \"init_from_skip\": [\"f7\"]"),
        "{stderr}"
    );

    let started = start_from("started", r#", "init_from_skip": ["f7"]"#);
    assert!(started.status.success(), "{started:?}");
    let run = root.path().join("started");
    let theirs = FinishedRun::load(&digits, None).unwrap().model;
    let ours = FinishedRun::load(&run, None).unwrap().model;
    let values = |t: burn::tensor::Tensor<4>| t.into_data().iter::<f32>().collect::<Vec<_>>();
    let (a, b) = (values(theirs.c1.weight.val()), values(ours.c1.weight.val()));
    let largest = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(largest < 1e-6, "c1 came from the other run: {largest}");
    assert_eq!(
        ours.f7.unwrap().weight.dims(),
        [84, 3],
        "a fresh output layer"
    );
}

#[test]
fn a_test_set_read_from_a_run_counts_what_it_was_tested_on() {
    // The test set helper eval and serve share reads a folder run's test set from its config.
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("shapes");
    write_folders(&data, 20, true);
    let mut config = TrainingConfig::default();
    config.data.dataset = lenet::data::DatasetKind::Folder;
    config.data.dir = Some(data.clone());
    let test = lenet::inference::eval::run_test_set(&config, None).unwrap();
    assert_eq!(test.len(), 15);
    let labels: Vec<u16> = (0..test.len())
        .map(|i| test.get(i).unwrap().label)
        .collect();
    assert_eq!(
        labels,
        [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2],
        "the classes interleaved, so that a limit takes some of each"
    );
}

//! `lenet eval`, `predict`, `summary` and `export` driven through the binary, on a model trained
//! once (configs/smoke.json on real MNIST) and shared by the tests.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{lenet, real_mnist_dir, summary_of, train_smoke};
use image::{DynamicImage, GrayImage, Luma, RgbImage};
use lenet::data::idx::Part;
use lenet::data::image::{Decoding, MAX_PIXELS, Preprocess};
use lenet::data::split::ImageSplit;
use lenet::inference::classify;
use lenet::inference::export::from_safetensors;
use lenet::report::EvalReport;
use lenet::run::FinishedRun;
use lenet::run::RunSummary;
use predicates::prelude::*;

/// Images read as the default config reads them.
const DIGITS: Decoding = Decoding {
    preprocess: Preprocess::Digit,
    max_pixels: MAX_PIXELS,
};

/// The run every test here uses, trained on first use.
fn trained_run() -> &'static Path {
    static RUN: OnceLock<tempfile::TempDir> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        train_smoke(&dir.path().join("run"), &[]);
        dir
    })
    .path()
    .join("run")
    .leak()
}

fn summary() -> RunSummary {
    summary_of(trained_run())
}

fn png_size(path: &Path) -> (u32, u32) {
    let image = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (image.width(), image.height())
}

#[test]
fn training_writes_metrics_csv_and_plots() {
    let run = trained_run();
    let csv = fs::read_to_string(run.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,split,loss,accuracy,learning_rate,seconds");
    assert_eq!(
        lines.len(),
        1 + 2 * 2,
        "train and valid rows for 2 epochs: {csv}"
    );
    assert!(lines[1].starts_with("1,train,"));
    assert!(lines[4].starts_with("2,valid,"));
    for png in ["plots/loss.png", "plots/accuracy.png"] {
        assert_eq!(png_size(&run.join(png)), (800, 500));
    }
}

#[test]
fn eval_matches_the_training_summary_to_the_image() {
    let run = trained_run();
    let output = lenet()
        .args(["eval", "--run"])
        .arg(run)
        .assert()
        .success()
        .stdout(predicate::str::contains("Confusion matrix"))
        .stdout(predicate::str::contains("class  images  precision  recall"))
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    let summary = summary();
    let expected = format!(
        "Accuracy: {:.2}% ({} of 10,000 images)",
        summary.test_accuracy * 100.0,
        lenet::report::thousands(summary.test_correct)
    );
    assert!(text.starts_with(&expected), "{text}");

    let report: EvalReport =
        serde_json::from_slice(&fs::read(run.join("eval/report.json")).unwrap()).unwrap();
    assert_eq!(report.correct, summary.test_correct);
    assert_eq!(report.images, 10_000);
    let diagonal: usize = (0..10).map(|d| report.confusion[d][d]).sum();
    assert_eq!(diagonal, report.correct);
    let supports: Vec<usize> = report.classes.iter().map(|c| c.support).collect();
    assert_eq!(
        supports,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );

    let csv = fs::read_to_string(run.join("eval/confusion.csv")).unwrap();
    assert_eq!(csv.lines().count(), 11);
    let (w, h) = png_size(&run.join("eval/confusion.png"));
    assert!(w > 500 && h > 500, "{w}x{h}");
    let (w, _) = png_size(&run.join("eval/mistakes.png"));
    assert!(w > 800, "{w}");
}

#[test]
fn eval_json_is_the_report() {
    let output = lenet()
        .args(["eval", "--json", "--run"])
        .arg(trained_run())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: EvalReport = serde_json::from_slice(&output).unwrap();
    assert_eq!(report.correct, summary().test_correct);
}

#[test]
fn eval_of_a_folder_that_is_not_a_run_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    lenet()
        .args(["eval", "--run"])
        .arg(empty.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "not a run directory (no config.json)",
        ));
}

/// An MNIST test digit the model gets right, with its label.
fn known_digits(count: usize) -> Vec<(Vec<u8>, u16)> {
    let run = FinishedRun::load(trained_run(), None).unwrap();
    let test = ImageSplit::read_idx(&real_mnist_dir(), Part::Test, 10)
        .unwrap()
        .limit(Some(200));
    let items: Vec<_> = (0..200)
        .map(|i| burn::data::dataset::Dataset::get(&test, i).unwrap())
        .collect();
    let images: Vec<&[u8]> = items.iter().map(|i| i.pixels.as_slice()).collect();
    let probabilities = classify(&run.model, &images, &run.device);
    items
        .iter()
        .zip(probabilities)
        .filter(|(item, p)| p[item.label as usize] > 0.95)
        .map(|(item, _)| (item.pixels.clone(), item.label))
        .take(count)
        .collect()
}

/// Scales a 28x28 digit up, optionally inverts it (dark ink on paper), and places it off-centre
/// on a larger canvas.
fn restage(
    pixels: &[u8],
    scale: u32,
    invert: bool,
    canvas: (u32, u32),
    at: (u32, u32),
) -> GrayImage {
    let digit = GrayImage::from_raw(28, 28, pixels.to_vec()).unwrap();
    let big = image::imageops::resize(
        &digit,
        28 * scale,
        28 * scale,
        image::imageops::FilterType::Triangle,
    );
    let background = if invert { 250 } else { 5 };
    let mut out = GrayImage::from_pixel(canvas.0, canvas.1, Luma([background]));
    for (x, y, p) in big.enumerate_pixels() {
        let v = if invert { 255 - p[0] } else { p[0] };
        out.put_pixel(at.0 + x, at.1 + y, Luma([v]));
    }
    out
}

/// A digit the test draws itself: `0` as a ring, `1` as a slanted stroke, dark ink on paper.
fn drawn(digit: u8, size: (u32, u32)) -> RgbImage {
    let (w, h) = size;
    let mut img = RgbImage::from_pixel(w, h, image::Rgb([245, 240, 230]));
    let ink = image::Rgb([20, 20, 60]);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let thickness = w.min(h) as f32 / 14.0;
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 - cx, y as f32 - cy);
            let on = match digit {
                0 => {
                    let (rx, ry) = (w as f32 * 0.28, h as f32 * 0.38);
                    let r = ((fx / rx).powi(2) + (fy / ry).powi(2)).sqrt();
                    (r - 1.0).abs() * rx.min(ry) < thickness
                }
                _ => fy.abs() < h as f32 * 0.38 && (fx + fy * 0.15).abs() < thickness,
            };
            if on {
                img.put_pixel(x, y, ink);
            }
        }
    }
    img
}

#[test]
fn predict_reads_digits_of_any_size_polarity_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(PathBuf, u16)> = Vec::new();
    for (n, (pixels, label)) in known_digits(4).into_iter().enumerate() {
        let variants = [
            ("plain.png", restage(&pixels, 1, false, (28, 28), (0, 0))),
            (
                "inverted-large.png",
                restage(&pixels, 9, true, (400, 300), (20, 30)),
            ),
            (
                "off-centre.bmp",
                restage(&pixels, 3, false, (200, 150), (110, 5)),
            ),
        ];
        for (name, image) in variants {
            let path = dir.path().join(format!("{n}-{name}"));
            image.save(&path).unwrap();
            files.push((path, label));
        }
    }
    for (digit, size) in [(0, (120, 160)), (1, (61, 97)), (0, (300, 300))] {
        let path = dir
            .path()
            .join(format!("drawn-{digit}-{}x{}.jpg", size.0, size.1));
        DynamicImage::ImageRgb8(drawn(digit, size))
            .save(&path)
            .unwrap();
        files.push((path, digit.into()));
    }

    let output = lenet()
        .args(["predict", "--json", "--run"])
        .arg(trained_run())
        .args(files.iter().map(|(p, _)| p))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let predictions: Vec<serde_json::Value> = serde_json::from_slice(&output).unwrap();
    assert_eq!(predictions.len(), files.len());
    for ((path, label), prediction) in files.iter().zip(&predictions) {
        assert_eq!(prediction["file"], path.to_string_lossy().as_ref());
        assert_eq!(
            prediction["class"],
            *label,
            "{}: {prediction}",
            path.display()
        );
        assert_eq!(prediction["top3"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn predict_reports_bad_files_by_name_and_still_classifies_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("one.png");
    DynamicImage::ImageRgb8(drawn(1, (80, 120)))
        .save(&good)
        .unwrap();
    let text = dir.path().join("notes.png");
    fs::write(&text, "this is not an image").unwrap();
    let truncated = dir.path().join("cut.png");
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(drawn(1, (80, 120)))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    let blank = dir.path().join("blank.png");
    GrayImage::from_pixel(30, 30, Luma([255]))
        .save(&blank)
        .unwrap();
    let missing = dir.path().join("missing.png");

    let assert = lenet()
        .args(["predict", "--run"])
        .arg(trained_run())
        .args([&good, &text, &truncated, &blank, &missing])
        .assert()
        .code(1);
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stdout.contains("one.png: 1 ("), "{stdout}");
    assert!(stdout.contains("top 3: 1 "), "{stdout}");
    assert!(
        stderr.contains("notes.png: not a PNG, JPEG, BMP, WebP, TIFF or GIF image"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cut.png: cannot decode the image"),
        "{stderr}"
    );
    assert!(
        stderr.contains("blank.png: nothing to read: the image is blank"),
        "{stderr}"
    );
    assert!(
        stderr.contains("missing.png: no such file or folder"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 4, "one line per bad file: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let output = lenet()
        .args(["predict", "--json", "--run"])
        .arg(trained_run())
        .args([&good, &text])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&output).unwrap();
    assert_eq!(entries[0]["class"], 1);
    assert_eq!(entries[1]["file"], text.to_string_lossy().as_ref());
    assert!(
        entries[1]["error"]
            .as_str()
            .unwrap()
            .contains("not a PNG, JPEG, BMP, WebP, TIFF or GIF image")
    );
}

#[test]
fn predict_reads_folders_patterns_and_more_formats_and_shows_what_it_saw() {
    let dir = tempfile::tempdir().unwrap();
    let digits = known_digits(3);
    let folder = dir.path().join("digits");
    fs::create_dir(&folder).unwrap();
    let formats = [
        ("webp", image::ImageFormat::WebP),
        ("tiff", image::ImageFormat::Tiff),
        ("gif", image::ImageFormat::Gif),
    ];
    for ((pixels, label), (ending, format)) in digits.iter().zip(formats) {
        let picture = DynamicImage::ImageLuma8(restage(pixels, 4, true, (150, 140), (20, 10)));
        let picture = match format {
            // GIF and WebP hold colour; the digit is the same in any.
            image::ImageFormat::Tiff => picture,
            _ => DynamicImage::ImageRgba8(picture.to_rgba8()),
        };
        picture
            .save_with_format(folder.join(format!("{label}.{ending}")), format)
            .unwrap();
    }
    let saw = dir.path().join("saw");
    let output = lenet()
        .args(["predict", "--json", "--save-input"])
        .arg(&saw)
        .arg("--run")
        .arg(trained_run())
        .arg(&folder)
        .arg(folder.join("*.webp"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let answers: Vec<serde_json::Value> = serde_json::from_slice(&output).unwrap();
    // The folder in name order (gif, tiff, webp), then the pattern's one match.
    assert_eq!(answers.len(), 4, "{answers:?}");
    for answer in &answers {
        let file = answer["file"].as_str().unwrap();
        let label: u64 = Path::new(file)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(answer["class"], label, "{answer}");
        let probabilities = answer["probabilities"].as_array().unwrap();
        assert_eq!(probabilities.len(), 10);
        let sum: f64 = probabilities.iter().map(|p| p.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-3, "{sum}");
        assert!(
            answer["warnings"].as_array().unwrap().is_empty(),
            "{answer}"
        );
    }
    let mut saved: Vec<String> = fs::read_dir(&saw)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    saved.sort();
    assert_eq!(saved.len(), 4, "{saved:?}");
    assert_eq!(png_size(&saw.join(&saved[0])), (28, 28));
}

#[test]
fn predict_warns_about_other_marks() {
    let dir = tempfile::tempdir().unwrap();
    let digits = known_digits(2);
    // Two digits side by side, far apart: the larger is read, the other is a mark to warn of.
    let mut page = GrayImage::from_pixel(400, 160, Luma([240]));
    for (n, (pixels, _)) in digits.iter().enumerate() {
        let digit = restage(pixels, 4, true, (112, 112), (0, 0));
        image::imageops::overlay(&mut page, &digit, 20 + 250 * n as i64, 20);
    }
    let two = dir.path().join("two.png");
    page.save(&two).unwrap();
    let output = lenet()
        .args(["predict", "--run"])
        .arg(trained_run())
        .arg(&two)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8_lossy(&output);
    assert!(
        stdout.contains("warning: the image holds 1 other mark besides the largest"),
        "{stdout}"
    );
}

#[test]
fn summary_prints_the_designs_table() {
    lenet()
        .arg("summary")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "c1     conv 5x5, 1->6, padding 2, relu",
        ))
        .stdout(predicate::str::contains("156"))
        .stdout(predicate::str::contains("2,416"))
        .stdout(predicate::str::contains("48,120"))
        .stdout(predicate::str::contains("10,164"))
        .stdout(predicate::str::contains("850"))
        .stdout(predicate::str::is_match(r"total\s+61,706").unwrap());

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("avg.json");
    fs::write(
        &config,
        r#"{"model": {"activation": "tanh", "pooling": "avg"}}"#,
    )
    .unwrap();
    lenet()
        .args(["summary", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(predicate::str::contains("s2     avg pool 2x2"))
        .stdout(predicate::str::contains("dense 120->84, tanh"));
}

#[test]
fn export_round_trips_to_identical_logits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lenet.safetensors");
    lenet()
        .args(["export", "--run"])
        .arg(trained_run())
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("lenet.safetensors"));

    let run = FinishedRun::load(trained_run(), None).unwrap();
    let imported = from_safetensors(&fs::read(&out).unwrap(), &run.device).unwrap();
    let digits: Vec<Vec<u8>> = known_digits(8).into_iter().map(|(p, _)| p).collect();
    let images: Vec<&[u8]> = digits.iter().map(Vec::as_slice).collect();
    assert_eq!(
        classify(&run.model, &images, &run.device),
        classify(&imported, &images, &run.device)
    );

    // PyTorch names and layout: Linear weights are [out, in].
    let bytes = fs::read(&out).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names,
        [
            "c1.bias",
            "c1.weight",
            "c3.bias",
            "c3.weight",
            "c5.bias",
            "c5.weight",
            "f6.bias",
            "f6.weight",
            "f7.bias",
            "f7.weight"
        ]
    );
    assert_eq!(file.tensor("c1.weight").unwrap().shape(), [6, 1, 5, 5]);
    assert_eq!(file.tensor("f6.weight").unwrap().shape(), [84, 120]);
    assert_eq!(file.tensor("f7.weight").unwrap().shape(), [10, 84]);

    // Same weights, same bytes: the metadata's order once changed from export to export (one
    // random order of four keys per process, so a few exports all but surely caught it).
    let again = dir.path().join("again.safetensors");
    for _ in 0..4 {
        lenet()
            .args(["export", "--run"])
            .arg(trained_run())
            .arg("--out")
            .arg(&again)
            .assert()
            .success();
        assert!(fs::read(&again).unwrap() == bytes, "two exports differ");
    }
}

/// The answers of the smoke run's model on 28x28 images, in batches.
fn answers(images: &[Vec<u8>]) -> Vec<u16> {
    let run = FinishedRun::load(trained_run(), None).unwrap();
    images
        .chunks(1000)
        .flat_map(|chunk| {
            let chunk: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            classify(&run.model, &chunk, &run.device)
        })
        .map(|p| lenet::inference::argmax(&p))
        .collect()
}

/// The MNIST test digits, as read by the IDX reader.
fn test_digits(count: usize) -> Vec<Vec<u8>> {
    let test = ImageSplit::read_idx(&real_mnist_dir(), Part::Test, 10)
        .unwrap()
        .limit(Some(count));
    (0..burn::data::dataset::Dataset::len(&test))
        .map(|i| burn::data::dataset::Dataset::get(&test, i).unwrap().pixels)
        .collect()
}

fn agreement(a: &[u16], b: &[u16]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// A test digit saved as a PNG and given to `lenet predict` gets the model's answer on the
/// digit itself: the way in neither moves nor blurs an image that is already MNIST's form.
#[test]
fn predict_reads_mnist_digits_saved_as_png_as_the_model_reads_them() {
    let digits = test_digits(10_000);
    let read: Vec<Vec<u8>> = digits
        .iter()
        .enumerate()
        .map(|(i, digit)| {
            let png = common::photos::picture("clean", digit, i);
            lenet::data::image::decode_image(&png, Path::new("digit.png"), DIGITS)
                .unwrap()
                .pixels
        })
        .collect();
    let same = agreement(&answers(&digits), &answers(&read));
    println!(
        "predict agrees with the raw test digits on {:.2}%",
        same * 100.0
    );
    assert!(same >= 0.999, "{same}");
}

/// Phone photos of test digits (12-megapixel JPEGs, tests/common/photos.rs) are read as the
/// digits are, though decoded and prepared at a sixteenth of their size; one taken sideways is
/// turned upright.
#[test]
fn phone_photos_of_digits_are_read_as_the_model_reads_the_digits() {
    let digits = test_digits(10);
    let read: Vec<Vec<u8>> = digits
        .iter()
        .map(|digit| {
            let photo = common::photos::phone_photo(digit);
            lenet::data::image::decode_image(&photo, Path::new("photo.jpg"), DIGITS)
                .unwrap()
                .pixels
        })
        .collect();
    let same = agreement(&answers(&digits), &answers(&read));
    println!("phone photos: {:.0}% as on the raw digits", same * 100.0);
    assert!(same >= 0.9, "{same}");
    // Taken sideways: decoded small all the same, and turned upright as its EXIF says.
    let sideways =
        common::photos::with_exif_orientation(&common::photos::phone_photo(&digits[0]), 6);
    let upright =
        lenet::data::image::decode(&sideways, Path::new("photo.jpg"), 50_000_000).unwrap();
    assert_eq!((upright.width(), upright.height()), (189, 252));
}

/// Photo-like pictures of test digits (tests/common/photos.rs) are read as the digits are:
/// paper, lighting, noise, blur, JPEG, a small digit on a page, EXIF rotation, pen marks.
#[test]
fn photo_like_digits_are_read_as_the_model_reads_the_digits() {
    let digits = test_digits(150);
    let raw = answers(&digits);
    let mut all = Vec::new();
    for kind in common::photos::KINDS {
        let read: Vec<Vec<u8>> = digits
            .iter()
            .enumerate()
            .map(|(i, digit)| {
                let picture = common::photos::picture(kind, digit, i);
                lenet::data::image::decode_image(&picture, Path::new(kind), DIGITS)
                    .map(|d| d.pixels)
                    .unwrap_or_else(|e| panic!("{kind} {i}: {e}"))
            })
            .collect();
        let same = agreement(&raw, &answers(&read));
        println!("{kind}: {:.1}% as on the raw digits", same * 100.0);
        let least = if kind == "clean" { 1.0 } else { 0.93 };
        assert!(same >= least, "{kind}: {same}");
        all.push(same);
    }
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    assert!(mean >= 0.96, "{mean}");
}

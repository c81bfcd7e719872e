//! Digits drawn from fonts (`data.synthetic`): drawn in MNIST's form, each class in turn, the
//! same for a seed; a run given them reads digits of fonts it never saw better than the same
//! run without them; a font that cannot be used stops the run before training, named.

mod common;

use std::path::{Path, PathBuf};

use lenet::data::synthetic::Synthetic;
use lenet::input::IMAGE_PIXELS;
use serde_json::{Value, json};

/// Fonts of Debian's fonts-dejavu-core, trained on, and of fonts-liberation, kept out.
const TRAINED: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
];
const HELD_OUT: [&str; 3] = [
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
];

/// The font files, or `None` (after saying why) when one is missing outside CI.
fn fonts(paths: &[&str], what: &str) -> Option<Vec<PathBuf>> {
    let missing: Vec<&&str> = paths.iter().filter(|p| !Path::new(p).is_file()).collect();
    if missing.is_empty() {
        return Some(paths.iter().map(PathBuf::from).collect());
    }
    common::skip_unless_required(
        "LENET_REQUIRE_FONTS",
        what,
        &format!("{missing:?} missing (apt-get install fonts-dejavu-core fonts-liberation)"),
    );
    None
}

#[test]
fn drawn_digits_are_mnist_digits_each_class_in_turn() {
    let Some(fonts) = fonts(&TRAINED, "drawing digits") else {
        return;
    };
    let synthetic = Synthetic { fonts, images: 30 };
    let (pixels, labels) = synthetic.draw(7).unwrap();
    assert_eq!(labels, (0..30).map(|i| i % 10).collect::<Vec<u16>>());
    assert_eq!(pixels.len(), 30 * IMAGE_PIXELS);
    for image in pixels.chunks(IMAGE_PIXELS) {
        // MNIST's form: light ink on black, a black border, strong ink, a digit's worth of it.
        assert_eq!(image[0], 0);
        assert_eq!(image[IMAGE_PIXELS - 1], 0);
        assert!(image.iter().any(|&p| p > 200));
        let inked = image.iter().filter(|&&p| p > 0).count();
        assert!((30..500).contains(&inked), "{inked} inked pixels");
    }
    assert_eq!((pixels.clone(), labels), synthetic.draw(7).unwrap());
    assert_ne!(
        pixels,
        synthetic.draw(8).unwrap().0,
        "another seed draws others"
    );
}

/// `configs/smoke.json` with `data` changed as `data` says, written into `dir`.
fn smoke_config(dir: &Path, name: &str, data: Value) -> PathBuf {
    let text = std::fs::read_to_string(common::project_file("configs/smoke.json")).unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    for (key, value) in data.as_object().unwrap() {
        config["data"][key] = value.clone();
    }
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

fn train(config: &Path, run: &Path) {
    common::lenet()
        .arg("--config")
        .arg(config)
        .args(["--no-tui", "--epochs", "2", "--data-dir"])
        .arg(common::real_mnist_dir())
        .arg("--artifact-dir")
        .arg(run)
        .assert()
        .success();
}

/// The share of the images in `folder` (named `<index>-<label>.png`) `run` reads right.
fn accuracy(run: &Path, folder: &Path) -> f64 {
    let output = common::lenet()
        .args(["predict", "--json", "--run"])
        .arg(run)
        .arg(folder)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let right = answers
        .iter()
        .filter(|a| {
            let file = a["file"].as_str().unwrap();
            let label = file.trim_end_matches(".png").rsplit('-').next().unwrap();
            a["name"] == label
        })
        .count();
    right as f64 / answers.len() as f64
}

#[test]
fn a_run_with_drawn_digits_reads_fonts_it_never_saw() {
    let (Some(trained), Some(held_out)) = (
        fonts(&TRAINED, "training on drawn digits"),
        fonts(&HELD_OUT, "training on drawn digits"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Digits of the held-out fonts as a user's files: white paper, dark ink, 28x28.
    let digits = dir.path().join("held-out");
    std::fs::create_dir(&digits).unwrap();
    let (pixels, labels) = Synthetic {
        fonts: held_out,
        images: 300,
    }
    .draw(99)
    .unwrap();
    for (index, (image, label)) in pixels.chunks(IMAGE_PIXELS).zip(labels).enumerate() {
        let paper: Vec<u8> = image.iter().map(|p| 255 - p).collect();
        image::GrayImage::from_raw(28, 28, paper)
            .unwrap()
            .save(digits.join(format!("{index}-{label}.png")))
            .unwrap();
    }
    let plain = smoke_config(dir.path(), "plain", json!({}));
    let drawn = smoke_config(
        dir.path(),
        "drawn",
        json!({"synthetic": {"fonts": trained, "images": 3000}}),
    );
    train(&plain, &dir.path().join("plain"));
    train(&drawn, &dir.path().join("drawn"));
    let without = accuracy(&dir.path().join("plain"), &digits);
    let with = accuracy(&dir.path().join("drawn"), &digits);
    eprintln!("held-out fonts read {with:.3} with drawn digits, {without:.3} without");
    assert!(
        with >= 0.90 && with > without + 0.10,
        "held-out fonts read {with:.3} with drawn digits, {without:.3} without"
    );
}

#[test]
fn a_font_that_cannot_be_used_stops_the_run_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_font = dir.path().join("notes.ttf");
    std::fs::write(&not_a_font, "not a font").unwrap();
    for (font, says) in [
        (dir.path().join("missing.ttf"), "cannot read"),
        (not_a_font, "not a TrueType or OpenType font"),
    ] {
        let config = smoke_config(
            dir.path(),
            "bad-font",
            json!({"synthetic": {"fonts": [font], "images": 10}}),
        );
        let output = common::lenet()
            .arg("--config")
            .arg(&config)
            .args(["--no-tui", "--data-dir"])
            .arg(common::real_mnist_dir())
            .arg("--artifact-dir")
            .arg(dir.path().join("run"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let line = format!("data.synthetic.fonts: {}: {says}", font.to_string_lossy());
        assert!(stderr.contains(&line), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn drawn_digits_need_a_data_set_of_the_ten_digits() {
    let Some(fonts) = fonts(&TRAINED, "drawn digits on other classes") else {
        return;
    };
    // Two classes of image files: a drawn 7 would be labelled as a class it is not.
    let dir = tempfile::tempdir().unwrap();
    for class in ["cat", "dog"] {
        let folder = dir.path().join("data/train").join(class);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..5 {
            let mut image = image::GrayImage::new(28, 28);
            for y in 8..20 {
                image.put_pixel(10 + i, y, image::Luma([255]));
            }
            image.save(folder.join(format!("{i}.png"))).unwrap();
        }
    }
    let config = dir.path().join("pets.json");
    let text = json!({"epochs": 1, "data": {"dataset": "folder", "dir": dir.path().join("data"),
        "validation_size": 2, "synthetic": {"fonts": fonts, "images": 10}}});
    std::fs::write(&config, text.to_string()).unwrap();
    let output = common::lenet()
        .arg("--config")
        .arg(&config)
        .args(["--no-tui", "--artifact-dir"])
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "data.synthetic draws the digits 0-9, but this data set's classes are cat, dog"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!dir.path().join("run/model.bpk").exists());
}

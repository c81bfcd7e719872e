//! What the fuzz targets check of one input, shared by them (`fuzz_targets/`) and by
//! `tests/fuzz_cases.rs`, which runs the inputs kept in `cases/` in every `cargo test`.

use std::path::Path;
use std::sync::LazyLock;

use burn::prelude::Device;
use lenet::config::TrainingConfig;
use lenet::data::image::{Decoding, Preprocess, decode_image};
use lenet::device::BackendKind;
use lenet::inference::classify;
use lenet::model::{LeNet5, LeNet5Config};

/// The pixel limit fuzzed images are read within: low enough that every input takes
/// milliseconds, as the real limit keeps every real one within its bounds.
const MAX_PIXELS: u64 = 4_000_000;

/// A model to answer the images that decode (its weights need not have been trained).
static MODEL: LazyLock<(LeNet5, Device)> = LazyLock::new(|| {
    let device = BackendKind::preferred()
        .device()
        .expect("a compiled backend");
    (LeNet5Config::new().init(&device), device)
});

/// Any bytes as an uploaded image: decoded within the limits and prepared both ways; what
/// decodes is an image in the model's form, which the model answers; what does not is an
/// error of one line. Nothing panics.
pub fn check_image(data: &[u8]) {
    for preprocess in [Preprocess::Digit, Preprocess::Resize] {
        let decoding = Decoding {
            preprocess,
            max_pixels: MAX_PIXELS,
        };
        match decode_image(data, Path::new("fuzz"), decoding) {
            Ok(prepared) => {
                assert_eq!(prepared.pixels.len(), 28 * 28);
                let (model, device) = &*MODEL;
                let answers = classify(model, &[&prepared.pixels], device);
                let sum: f32 = answers[0].iter().sum();
                assert!(
                    answers[0].iter().all(|p| p.is_finite()) && (sum - 1.0).abs() < 1e-3,
                    "{answers:?}"
                );
            }
            Err(error) => {
                let line = error.to_string();
                assert!(line.starts_with("fuzz: ") && !line.contains('\n'), "{line}");
            }
        }
    }
}

/// Any text as a config file: read and checked (a model can be made from it), or refused in one
/// line naming the file and the key. Nothing panics.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As `TrainingConfig::load` reads a file: parsed, then every value checked.
    let path = Path::new("fuzz.json");
    let checked = TrainingConfig::parse(path, text).and_then(|config| {
        config
            .validate()
            .map(|()| config)
            .map_err(|e| e.in_file(path))
    });
    match checked {
        Ok(config) => {
            let _ = config.model_config();
        }
        Err(error) => {
            let line = error.to_string();
            assert!(
                line.starts_with("fuzz.json: ") && !line.contains('\n'),
                "{line}"
            );
        }
    }
}

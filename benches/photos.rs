//! How well `lenet predict` reads photo-like pictures of digits: MNIST test digits made into
//! pictures of each kind in tests/common/photos.rs (paper, lighting, noise, blur, JPEG, small
//! on a page, sideways with EXIF, pen marks, all at once), read the way `lenet predict` reads
//! files, and classified by a run's model.
//!
//!     cargo bench --bench photos -- --run artifacts/lenet [--count 1000] [--save DIR]
//!         [--answers FILE]
//!
//! Prints, per kind, the accuracy, how often the answer equals the model's on the raw test
//! digit, and the time to decode one picture and to prepare it (lighting, ink, centring); then
//! the same two times for a digit drawn on a 224x224 canvas and for a 12-megapixel phone
//! photo. `--save DIR` writes the first pictures of each kind there, to look at; `--answers
//! FILE` writes every picture's answer and a hash of the 28x28 image it was prepared into
//! (`kind,index,answer,hash`), to compare two versions of the preparation picture by picture.

#[path = "../tests/common/photos.rs"]
mod photos;

// The allocator of the lenet binary (src/main.rs), so that the times are the ones lenet has:
// with the system's, preparing a drawing took 1.5 times as long.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};

use burn::data::dataset::Dataset;
use lenet::data::idx::Part;
use lenet::data::image::{MAX_PIXELS, Preprocess, decode, prepare};
use lenet::data::split::ImageSplit;
use lenet::inference::{argmax, classify};
use lenet::run::FinishedRun;

struct Settings {
    run: PathBuf,
    count: usize,
    save: Option<PathBuf>,
    answers: Option<PathBuf>,
}

fn settings() -> Settings {
    let mut settings = Settings {
        run: PathBuf::from("artifacts/lenet"),
        count: 1000,
        save: None,
        answers: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--run" => settings.run = value().into(),
            "--count" => settings.count = value().parse().expect("--count N"),
            "--save" => settings.save = Some(value().into()),
            "--answers" => settings.answers = Some(value().into()),
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    settings
}

fn main() {
    let settings = settings();
    let run = FinishedRun::load(&settings.run, None)
        .unwrap_or_else(|e| panic!("{e} (pass --run with a finished run)"));
    let data_dir = run.config.data.dir.clone().expect("a run names its data");
    let test = ImageSplit::read_idx(&data_dir, Part::Test, 10).expect("the run's test set");
    let count = settings.count.min(test.len());
    let items: Vec<_> = (0..count).map(|i| test.get(i).unwrap()).collect();
    let raw: Vec<&[u8]> = items.iter().map(|i| i.pixels.as_slice()).collect();
    let raw_answers: Vec<u16> = classify(&run.model, &raw, &run.device)
        .iter()
        .map(|p| argmax(p))
        .collect();
    let right = |answers: &[u16]| {
        answers
            .iter()
            .zip(&items)
            .filter(|(a, i)| **a == i.label)
            .count() as f64
            / count as f64
    };
    println!(
        "{} on {count} MNIST test digits; raw digits: {:.2}% right",
        settings.run.display(),
        right(&raw_answers) * 100.0
    );
    println!(
        "{:<10} {:>9} {:>17} {:>10} {:>11}",
        "kind", "accuracy", "same as on raw", "decode ms", "prepare ms"
    );
    let mut all = Vec::new();
    let mut record = String::new();
    for kind in photos::KINDS {
        let (answers, prepared, [decoding, preparing]) =
            read_kind(&run, kind, &items, settings.save.as_deref());
        let same = answers
            .iter()
            .zip(&raw_answers)
            .filter(|(a, b)| a == b)
            .count();
        println!(
            "{kind:<10} {:>8.2}% {:>16.2}% {:>10.3} {:>11.3}",
            right(&answers) * 100.0,
            same as f64 / count as f64 * 100.0,
            decoding * 1e3 / count as f64,
            preparing * 1e3 / count as f64
        );
        for (index, (answer, pixels)) in answers.iter().zip(&prepared).enumerate() {
            record += &format!("{kind},{index},{answer},{:016x}\n", fnv(pixels));
        }
        if kind != "clean" {
            all.extend(answers);
        }
    }
    if let Some(path) = &settings.answers {
        std::fs::write(path, record).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let photo_kinds = photos::KINDS.len() - 1;
    let all_right = all.chunks(count).map(right).sum::<f64>() / photo_kinds as f64;
    println!("{:<10} {:>8.2}%", "all photos", all_right * 100.0);
    for (what, bytes, times) in [
        (
            "a digit drawn on a 224x224 canvas (PNG)",
            photos::drawn_four(),
            500,
        ),
        (
            "a 12-megapixel phone photo (4032x3024 JPEG)",
            photos::phone_photo(raw[0]),
            5,
        ),
    ] {
        let [decoding, preparing] = timed(&bytes, times);
        println!(
            "{what}: decode {:.3} ms, prepare {:.3} ms (mean of {times})",
            decoding * 1e3 / times as f64,
            preparing * 1e3 / times as f64
        );
    }
}

/// `bytes` decoded and prepared as `lenet predict` reads a file, `times` over: the seconds
/// decoding took in all, and preparing.
fn timed(bytes: &[u8], times: usize) -> [f64; 2] {
    let mut seconds = [0.0; 2];
    for _ in 0..times {
        read(bytes, Path::new("timed"), &mut seconds);
    }
    seconds
}

/// One picture read as `lenet predict` reads a file (the default config's preparation), the
/// seconds it took added to `seconds` (decoding, preparing); a picture that cannot be read
/// is blank.
fn read(bytes: &[u8], name: &Path, seconds: &mut [f64; 2]) -> Vec<u8> {
    let started = std::time::Instant::now();
    let image = decode(bytes, name, MAX_PIXELS);
    let decoded = std::time::Instant::now();
    let prepared = image
        .ok()
        .and_then(|image| prepare(image, Preprocess::Digit))
        .map_or_else(|| vec![0; 784], |p| p.pixels);
    seconds[0] += (decoded - started).as_secs_f64();
    seconds[1] += decoded.elapsed().as_secs_f64();
    prepared
}

/// FNV-1a, a hash of a prepared image for telling two preparations of it apart.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The model's answers on the pictures of one kind, read as `lenet predict` reads files; the
/// 28x28 images they were prepared into; the seconds decoding and preparing took in all.
fn read_kind(
    run: &FinishedRun,
    kind: &str,
    items: &[lenet::data::split::ImageItem],
    save: Option<&Path>,
) -> (Vec<u16>, Vec<Vec<u8>>, [f64; 2]) {
    let pictures: Vec<Vec<u8>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| photos::picture(kind, &item.pixels, index))
        .collect();
    let mut seconds = [0.0; 2];
    let prepared: Vec<Vec<u8>> = pictures
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            if let Some(dir) = save.filter(|_| index < 8) {
                std::fs::create_dir_all(dir).unwrap();
                let ending = if bytes.starts_with(&[0xff, 0xd8]) {
                    "jpg"
                } else {
                    "png"
                };
                std::fs::write(dir.join(format!("{kind}-{index}.{ending}")), bytes).unwrap();
            }
            read(bytes, Path::new(kind), &mut seconds)
        })
        .collect();
    let images: Vec<&[u8]> = prepared.iter().map(Vec::as_slice).collect();
    let answers = classify(&run.model, &images, &run.device)
        .iter()
        .map(|p| argmax(p))
        .collect();
    (answers, prepared, seconds)
}

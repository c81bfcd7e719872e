//! The inputs kept from fuzzing (`tests/fuzz/cases/`: the seeds the fuzzers started from and
//! every input that ever made one fail), run through the same checks as the fuzz targets. CI
//! runs these; the fuzzing itself is run by hand (tests/fuzz/README.md).

#[path = "fuzz/checks.rs"]
mod checks;
mod common;

use std::fs;
use std::path::{Path, PathBuf};

fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/cases")
        .join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{}: the kept cases are missing",
        dir.display()
    );
    files
}

#[test]
fn every_kept_image_is_read_or_refused_in_one_line() {
    common::every_case(
        cases("image"),
        |file| file.display().to_string(),
        |file| checks::check_image(&fs::read(&file).unwrap()),
    );
}

#[test]
fn every_kept_config_is_read_or_refused_in_one_line() {
    common::every_case(
        cases("config"),
        |file| file.display().to_string(),
        |file| checks::check_config(&fs::read(&file).unwrap()),
    );
}

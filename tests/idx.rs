//! The IDX reader and the MNIST folder reader on small files made here.

mod common;

use std::fs;
use std::path::Path;

use common::{gzip, synthetic_digits, write_synthetic_mnist};
use lenet::data::idx::Part;
use lenet::data::idx::{FILE_NAMES, missing_files};
use lenet::data::idx::{encode_images, encode_labels, read_images, read_labels};
use lenet::data::split::ImageSplit;

#[test]
fn raw_and_gzipped_files_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = synthetic_digits(12);
    let image_bytes = encode_images(&images);
    fs::write(dir.path().join("images"), &image_bytes).unwrap();
    fs::write(dir.path().join("images.gz"), gzip(&image_bytes)).unwrap();
    fs::write(dir.path().join("labels.gz"), gzip(&encode_labels(&labels))).unwrap();

    let raw = read_images(&dir.path().join("images")).unwrap();
    let gz = read_images(&dir.path().join("images.gz")).unwrap();
    assert_eq!(raw, gz);
    assert_eq!(raw.count, 12);
    assert_eq!(raw.image(5), &images[5][..]);
    assert_eq!(
        read_labels(&dir.path().join("labels.gz"), 10).unwrap(),
        labels
    );
}

/// Writes `bytes` as a file named `name`, reads it with `reader` and returns the error, which
/// must name the file.
fn read_error<T: std::fmt::Debug, E: std::fmt::Display>(
    reader: impl Fn(&Path) -> Result<T, E>,
    name: &str,
    bytes: &[u8],
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, bytes).unwrap();
    let err = reader(&path).unwrap_err().to_string();
    assert!(err.contains(name), "the error names the file: {err}");
    err
}

fn images_error(name: &str, bytes: &[u8]) -> String {
    read_error(read_images, name, bytes)
}

fn labels_error(name: &str, bytes: &[u8]) -> String {
    read_error(|p| read_labels(p, 10), name, bytes)
}

#[test]
fn malformed_image_files_are_rejected_with_the_reason() {
    let (images, labels) = synthetic_digits(3);
    let good = encode_images(&images);

    assert!(images_error("empty", b"").contains("file is empty"));
    assert!(images_error("labels-as-images", &encode_labels(&labels)).contains("wrong IDX magic"));
    assert!(images_error("short", &good[..2]).contains("truncated"));
    assert!(images_error("header-only", &good[..10]).contains("truncated"));
    let err = images_error("cut", &good[..good.len() - 100]);
    assert!(
        err.contains("truncated") && err.contains("3 items"),
        "{err}"
    );
    let mut long = good.clone();
    long.push(0);
    assert!(images_error("long", &long).contains("1 bytes after the last item"));

    let mut wide = good.clone();
    wide[15] = 32; // columns: 32 instead of 28
    assert!(images_error("wide", &wide).contains("images are 28x32, expected 28x28"));

    assert!(images_error("not-gzip.gz", &good).contains("not a valid gzip file"));
    let mut broken = gzip(&good);
    broken.truncate(broken.len() / 2);
    assert!(images_error("broken.gz", &broken).contains("not a valid gzip file"));
}

#[test]
fn malformed_label_files_are_rejected_with_the_reason() {
    let (images, mut labels) = synthetic_digits(4);
    assert!(labels_error("images-as-labels", &encode_images(&images)).contains("wrong IDX magic"));
    labels[2] = 10;
    let err = labels_error("bad-label", &encode_labels(&labels));
    assert!(
        err.contains("label 10 at index 2 is not a class 0-9"),
        "{err}"
    );
}

#[test]
fn a_folder_of_gzipped_or_raw_files_reads_as_mnist() {
    for gz in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic_mnist(dir.path(), 30, 10, gz);
        assert!(missing_files(dir.path(), &FILE_NAMES).is_empty());
        let train = ImageSplit::read_idx(dir.path(), Part::Train, 10).unwrap();
        let test = ImageSplit::read_idx(dir.path(), Part::Test, 10).unwrap();
        assert_eq!((train.len(), test.len()), (30, 10));
    }
}

#[test]
fn images_and_labels_must_agree_in_number() {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic_mnist(dir.path(), 30, 10, false);
    let (_, labels) = synthetic_digits(29);
    fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        encode_labels(&labels),
    )
    .unwrap();
    let err = ImageSplit::read_idx(dir.path(), Part::Train, 10)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds 30 images but") && err.contains("holds 29 labels"),
        "{err}"
    );
}

#[test]
fn missing_files_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic_mnist(dir.path(), 10, 10, true);
    fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(
        missing_files(dir.path(), &FILE_NAMES),
        vec!["t10k-labels-idx1-ubyte"]
    );
    assert_eq!(
        missing_files(Path::new("/no/such/dir"), &FILE_NAMES).len(),
        4
    );
}

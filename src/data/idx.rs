//! Reader for the IDX files MNIST (and Fashion-MNIST) ship in, raw or gzip-compressed, and the
//! folder of four such files a data set comes as.
//!
//! The format is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
//! one big-endian `u32` per dimension, then the data. We only need unsigned bytes: images are
//! `[count, rows, cols]`, labels `[count]`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use thiserror::Error;

use crate::input::{IMAGE_PIXELS, IMAGE_SIDE};

/// Type code of unsigned-byte data, the only one MNIST uses.
const UNSIGNED_BYTE: u8 = 0x08;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The four files of a data set by their standard names; each may also be present with `.gz`
/// appended.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
pub const FILE_NAMES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];
/// The two files of the test set, all that evaluating a trained model needs.
pub const TEST_FILES: [&str; 2] = [TEST_IMAGES, TEST_LABELS];

/// The two splits of an IDX data set, each an images file and a labels file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

impl Part {
    /// The names of the part's images file and labels file.
    pub fn files(self) -> (&'static str, &'static str) {
        match self {
            Part::Train => (TRAIN_IMAGES, TRAIN_LABELS),
            Part::Test => (TEST_IMAGES, TEST_LABELS),
        }
    }
}

/// The path of `name` in `dir`, raw or gzipped, if either exists.
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// The file `name` in `dir` as [`find_file`] finds it, else its raw name there, so that reading
/// a file that vanished reports it by name.
pub fn file_in(dir: &Path, name: &str) -> PathBuf {
    find_file(dir, name).unwrap_or_else(|| dir.join(name))
}

/// The names of `needed` that `dir` lacks.
pub fn missing_files(dir: &Path, needed: &[&'static str]) -> Vec<&'static str> {
    needed
        .iter()
        .copied()
        .filter(|name| find_file(dir, name).is_none())
        .collect()
}

/// What can be wrong with an IDX file. Every variant names the file.
#[derive(Debug, Error)]
pub enum IdxError {
    #[error("{}: cannot read: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a valid gzip file: {source}", path.display())]
    Gzip { path: PathBuf, source: io::Error },
    #[error("{}: file is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{}: truncated: {detail}", path.display())]
    Truncated { path: PathBuf, detail: String },
    #[error(
        "{}: wrong IDX magic number {found:#010x} (expected {expected:#010x}: {what})",
        path.display()
    )]
    Magic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error("{}: images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}", path.display())]
    ImageSize {
        path: PathBuf,
        rows: usize,
        cols: usize,
    },
    #[error("{}: {extra} bytes after the last item", path.display())]
    TrailingBytes { path: PathBuf, extra: usize },
    #[error("{}: label {label} at index {index} is not a class 0-{}", path.display(), classes - 1)]
    Label {
        path: PathBuf,
        index: usize,
        label: u8,
        classes: usize,
    },
}

/// Images of one IDX file: `count` greyscale 28x28 images, row-major, one byte per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// The pixels of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.pixels[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]
    }
}

/// Reads an IDX image file (magic `0x00000803`) of 28x28 images.
pub fn read_images(path: &Path) -> Result<IdxImages, IdxError> {
    let bytes = read_maybe_gzip(path)?;
    let (dims, data) = parse_header(path, &bytes, 3, "unsigned-byte images")?;
    let [count, rows, cols] = [dims[0], dims[1], dims[2]];
    if rows != IMAGE_SIDE || cols != IMAGE_SIDE {
        return Err(IdxError::ImageSize {
            path: path.to_path_buf(),
            rows,
            cols,
        });
    }
    let pixels = exact_payload(path, data, count, IMAGE_PIXELS)?;
    Ok(IdxImages {
        count,
        pixels: pixels.to_vec(),
    })
}

/// Reads an IDX label file (magic `0x00000801`); every label must be below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>, IdxError> {
    let bytes = read_maybe_gzip(path)?;
    let (dims, data) = parse_header(path, &bytes, 1, "unsigned-byte labels")?;
    let labels = exact_payload(path, data, dims[0], 1)?;
    if let Some(index) = labels.iter().position(|&l| l as usize >= classes) {
        return Err(IdxError::Label {
            path: path.to_path_buf(),
            index,
            label: labels[index],
            classes,
        });
    }
    Ok(labels.to_vec())
}

/// Reads the whole file, decompressing it when it starts with the gzip magic bytes (whatever
/// its name says, so a renamed file still works).
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>, IdxError> {
    let io_err = |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|f| BufReader::new(f).read_to_end(&mut raw))
        .map_err(io_err)?;
    if raw.is_empty() {
        return Err(IdxError::Empty {
            path: path.to_path_buf(),
        });
    }
    let looks_gzip = raw.starts_with(&GZIP_MAGIC);
    let named_gzip = path.extension().is_some_and(|e| e == "gz");
    if !looks_gzip {
        if named_gzip {
            return Err(IdxError::Gzip {
                path: path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidData, "missing gzip header"),
            });
        }
        return Ok(raw);
    }
    let mut decoded = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut decoded)
        .map_err(|source| IdxError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    if decoded.is_empty() {
        return Err(IdxError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(decoded)
}

/// Checks the magic number and returns the dimensions and the bytes after the header.
fn parse_header<'a>(
    path: &Path,
    bytes: &'a [u8],
    num_dims: usize,
    what: &'static str,
) -> Result<(Vec<usize>, &'a [u8]), IdxError> {
    let header_len = 4 + 4 * num_dims;
    let expected = u32::from_be_bytes([0, 0, UNSIGNED_BYTE, num_dims as u8]);
    if bytes.len() < 4 {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            detail: format!("{} bytes, too short for an IDX header", bytes.len()),
        });
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != expected {
        return Err(IdxError::Magic {
            path: path.to_path_buf(),
            found,
            expected,
            what,
        });
    }
    if bytes.len() < header_len {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            detail: format!("{} bytes, the header alone needs {header_len}", bytes.len()),
        });
    }
    let dims = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    Ok((dims, &bytes[header_len..]))
}

/// The payload of `count` items of `item_len` bytes, which must be exactly what follows the header.
fn exact_payload<'a>(
    path: &Path,
    data: &'a [u8],
    count: usize,
    item_len: usize,
) -> Result<&'a [u8], IdxError> {
    let expected = count.saturating_mul(item_len);
    if data.len() < expected {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "header announces {count} items ({expected} bytes) but only {} bytes follow",
                data.len()
            ),
        });
    }
    if data.len() > expected {
        return Err(IdxError::TrailingBytes {
            path: path.to_path_buf(),
            extra: data.len() - expected,
        });
    }
    Ok(data)
}

/// Encodes images as an IDX file: what tests and tools use to make small, valid files.
pub fn encode_images(images: &[[u8; IMAGE_PIXELS]]) -> Vec<u8> {
    let mut out = vec![0, 0, UNSIGNED_BYTE, 3];
    for dim in [images.len(), IMAGE_SIDE, IMAGE_SIDE] {
        out.extend_from_slice(&(dim as u32).to_be_bytes());
    }
    for image in images {
        out.extend_from_slice(image);
    }
    out
}

/// Encodes labels as an IDX file.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, UNSIGNED_BYTE, 1];
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

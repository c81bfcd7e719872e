//! Where MNIST comes from: a folder the user names, `MNIST_DIR`, or a cache folder that the
//! program fills from a public mirror, checking every file against its published checksum.

use std::env;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::error::{DataError, Origin, SourceError};
use super::idx::{self, FILE_NAMES, missing_files};
use super::{DatasetKind, FASHION_MNIST_DIR};

/// Environment variable naming a folder that holds the MNIST files.
pub const DIR_ENV: &str = "MNIST_DIR";
/// Environment variable naming a mirror (a base URL) to download from instead of the public ones.
pub const MIRROR_ENV: &str = "LENET_MNIST_MIRROR";

/// Public mirrors of the original `.gz` files, tried in order.
const MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// SHA-256 of each file's decompressed content. The content, not the `.gz` bytes, is what is
/// checked: mirrors and repackagers compress with different settings.
const CONTENT_SHA256: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

/// Finds a folder holding the `needed` files of `dataset` (all four to train, the test set's
/// two to evaluate): MNIST as [`locate`] does; Fashion-MNIST in `configured`, else where
/// Debian's package puts it. Fashion-MNIST is never downloaded: the package is the supported way
/// to get it. Other IDX sets and image folders are where `configured` says.
pub fn locate_dataset(
    dataset: DatasetKind,
    configured: Option<&Path>,
    needed: &[&'static str],
) -> Result<DataLocation, DataError> {
    Ok(locate_kind(dataset, configured, needed)?)
}

fn locate_kind(
    dataset: DatasetKind,
    configured: Option<&Path>,
    needed: &[&'static str],
) -> Result<DataLocation, SourceError> {
    match dataset {
        DatasetKind::Mnist => locate(configured, needed),
        DatasetKind::FashionMnist => {
            let (dir, origin) = match configured {
                Some(dir) => (dir.to_path_buf(), Origin::Configured),
                None => (PathBuf::from(FASHION_MNIST_DIR), Origin::Cache),
            };
            let missing = missing_files(&dir, needed);
            if missing.is_empty() {
                Ok(DataLocation { dir, origin })
            } else {
                Err(SourceError::FashionMissing { dir, missing })
            }
        }
        DatasetKind::Idx => {
            let dir = configured.ok_or(SourceError::NoDir {
                kind: "idx",
                what: "the folder holding its four IDX files",
            })?;
            let missing = missing_files(dir, needed);
            if missing.is_empty() {
                Ok(DataLocation {
                    dir: dir.to_path_buf(),
                    origin: Origin::Configured,
                })
            } else {
                Err(SourceError::Missing {
                    data: "IDX",
                    dir: dir.to_path_buf(),
                    origin: Origin::Configured,
                    missing,
                })
            }
        }
        DatasetKind::Folder => {
            let dir = configured.ok_or(SourceError::NoDir {
                kind: "folder",
                what: "the folder holding train/<class>/ (and optionally test/<class>/)",
            })?;
            if dir.is_dir() {
                Ok(DataLocation {
                    dir: dir.to_path_buf(),
                    origin: Origin::Configured,
                })
            } else {
                Err(SourceError::NoFolder {
                    dir: dir.to_path_buf(),
                })
            }
        }
    }
}

/// A folder that holds the data set asked for (for IDX data sets, the files asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLocation {
    pub dir: PathBuf,
    pub origin: Origin,
}

/// The per-user cache folder for MNIST (e.g. `~/.cache/lenet/mnist` on Linux).
pub fn cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("lenet").join("mnist"))
}

/// Finds the `needed` MNIST files: in `configured` (from `--data-dir` or `data.dir`), else
/// `MNIST_DIR`, else the cache, downloading into the cache what it lacks. A folder the user named
/// is authoritative: if it lacks a file, that is an error, not a reason to look elsewhere.
pub fn locate(
    configured: Option<&Path>,
    needed: &[&'static str],
) -> Result<DataLocation, SourceError> {
    let from_env = env::var_os(DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let named = configured
        .map(|d| (d.to_path_buf(), Origin::Configured))
        .or(from_env.map(|d| (d, Origin::Env)));
    if let Some((dir, origin)) = named {
        let missing = missing_files(&dir, needed);
        return if missing.is_empty() {
            Ok(DataLocation { dir, origin })
        } else {
            Err(SourceError::Missing {
                data: "MNIST",
                dir,
                origin,
                missing,
            })
        };
    }
    let dir = cache_dir().ok_or(SourceError::NoCache)?;
    if !missing_files(&dir, needed).is_empty() {
        let mirrors = match env::var(MIRROR_ENV) {
            Ok(mirror) if !mirror.is_empty() => vec![mirror],
            _ => MIRRORS.iter().map(|m| m.to_string()).collect(),
        };
        download_into(&dir, &mirrors).map_err(|reason| SourceError::Download {
            dir: dir.clone(),
            reason,
        })?;
    }
    Ok(DataLocation {
        dir,
        origin: Origin::Cache,
    })
}

/// Downloads the files `dir` lacks from the first mirror that serves each one intact.
/// Returns why it failed, naming the last mirror's error.
pub fn download_into(dir: &Path, mirrors: &[String]) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    for name in missing_files(dir, &FILE_NAMES) {
        let mut last_error = String::from("no mirror configured");
        let fetched = mirrors.iter().any(|mirror| {
            let url = format!("{}/{name}.gz", mirror.trim_end_matches('/'));
            match fetch_verified(&agent, &url, dir, name) {
                Ok(()) => true,
                Err(e) => {
                    last_error = format!("{url}: {e}");
                    false
                }
            }
        });
        if !fetched {
            return Err(last_error);
        }
    }
    Ok(())
}

/// Downloads `url` to a temporary name in `dir`, checks its content and only then gives it its
/// final name, so an interrupted or corrupt download never looks like a usable file.
fn fetch_verified(agent: &ureq::Agent, url: &str, dir: &Path, name: &str) -> Result<(), String> {
    let final_path = dir.join(format!("{name}.gz"));
    let partial = dir.join(format!("{name}.gz.part"));
    let result = fetch(agent, url, &partial).and_then(|()| {
        verify_content(&partial, name)?;
        fs::rename(&partial, &final_path).map_err(|e| format!("cannot rename download: {e}"))
    });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

fn fetch(agent: &ureq::Agent, url: &str, to: &Path) -> Result<(), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let body = response.body_mut();
    let bar = match body.content_length() {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::no_length(),
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("progress template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    eprintln!("Downloading {url}");
    let mut file = File::create(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let mut reader = bar.wrap_read(body.as_reader());
    io::copy(&mut reader, &mut file).map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    Ok(())
}

/// Checks that `path` decompresses to the published content of MNIST file `name`.
pub fn verify_content(path: &Path, name: &str) -> Result<(), String> {
    let expected = CONTENT_SHA256
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, sha)| *sha)
        .ok_or_else(|| format!("no checksum known for {name}"))?;
    let content = idx::read_maybe_gzip(path).map_err(|e| e.to_string())?;
    let actual = format!("{:x}", Sha256::digest(&content));
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "checksum mismatch for {name}: content SHA-256 is {actual}, expected {expected}"
        ))
    }
}

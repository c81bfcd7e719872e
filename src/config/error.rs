//! What can be wrong with a config, each error naming the file and the key.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: cannot read config: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid JSON: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error(
        "{}: a sweep file, not a training config: run it with `lenet sweep --config FILE` \
         (docs/sweeps.md)",
        path.display()
    )]
    SweepFile { path: PathBuf },
    #[error("{}: {key}: {message}", path.display())]
    Key {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("config key {key}: {message}")]
    Value { key: &'static str, message: String },
}

impl ConfigError {
    pub(crate) fn value(key: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Value {
            key,
            message: message.into(),
        }
    }

    /// Attaches the config file's name to a value error found after loading.
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Value { key, message } => ConfigError::Key {
                path: path.to_path_buf(),
                key: key.to_string(),
                message,
            },
            other => other,
        }
    }
}

/// `Ok` when `ok`, else an error naming `key`.
pub(super) fn check(
    ok: bool,
    key: &'static str,
    message: impl Into<String>,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::value(key, message))
    }
}

/// Keys whose whole number must be at least 1; every other whole number may be 0.
const AT_LEAST_ONE: [&str; 5] = [
    "epochs",
    "batch_size",
    "lr_schedule.step_epochs",
    "data.train_limit",
    "data.test_limit",
];

/// serde's message for `key` with Rust's type names (`usize`, `f64`) put in people's words.
pub(super) fn in_words(key: &str, message: &str) -> String {
    let whole = if AT_LEAST_ONE.contains(&key) {
        "a whole number >= 1"
    } else {
        "a whole number >= 0"
    };
    [
        ("expected usize", whole),
        ("expected u64", whole),
        ("expected f64", "a number"),
        ("expected f32", "a number"),
    ]
    .iter()
    .fold(message.to_string(), |message, (rust, words)| {
        message.replace(rust, &format!("expected {words}"))
    })
}

/// `text` with its control characters (a newline, a tab) written as escapes, so that a message
/// quoting what a file holds stays one line.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

//! `lenet serve` as the tests use it: the binary started on 127.0.0.1 and a port the system
//! picks, found from the line it prints, and stopped when the test is done; and smoke-sized
//! runs to serve, trained once per test binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use super::{lenet_process, real_mnist_dir, train_smoke};

/// A running `lenet serve`, stopped on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, without the trailing slash.
    pub url: String,
}

impl Server {
    pub fn start(artifacts: &Path) -> Self {
        Self::start_with(artifacts, &[], lenet_process())
    }

    /// `lenet serve` with `extra` arguments, started by `command` (the binary, maybe with
    /// limits set on it).
    pub fn start_with(
        artifacts: &Path,
        extra: &[&str],
        mut command: std::process::Command,
    ) -> Self {
        let mut child = command
            .args(["serve", "--port", "0", "--artifacts"])
            .arg(artifacts)
            .arg("--data-dir")
            .arg(real_mnist_dir())
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("lenet serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .split("/?")
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        Self { child, url }
    }

    /// Whether the process is still running (it must survive every bad request).
    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An artifacts folder holding `smoke` (configs/smoke.json on real MNIST, finished), `seed7`
/// (the same for one epoch with another seed, finished) and `unfinished` (a run folder whose
/// training never got anywhere), made once per test binary.
pub fn artifacts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        train_smoke(&dir.join("smoke"), &[]);
        train_smoke(&dir.join("seed7"), &["--seed", "7", "--epochs", "1"]);
        std::fs::create_dir(dir.join("unfinished")).unwrap();
        std::fs::write(dir.join("unfinished/config.json"), r#"{"epochs": 3}"#).unwrap();
        dir
    })
}

/// An HTTP client that hands back 4xx and 5xx answers instead of failing on them.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// A response's body as JSON (up to 64 MiB: WebDriver's screenshots are large).
pub fn read_json(response: &mut ureq::http::Response<ureq::Body>) -> Value {
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
}

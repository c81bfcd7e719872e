//! `--mlflow` against a real MLflow tracking server (`mlflow server` from PyPI, a SQLite store,
//! started by the test on 127.0.0.1) and read back over its REST API: the params are the
//! config's keys, the metric history is `metrics.csv`, the tags, the artifacts and the status
//! are there; a run stopped and resumed is one MLflow run; a server that cannot be reached
//! refuses the run before anything is written; and a server that goes away mid-run does not
//! stop training, which says at the end what it could not send.
//!
//! The server needs Python's `mlflow`: `.ci/run` installs it in its virtual environment and
//! names the interpreter in `LENET_PYTHON`. Without it the server's checks say why and are
//! skipped, unless `LENET_REQUIRE_MLFLOW` is set, as CI sets it: then they fail. The refusals
//! need no server and always run.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    interrupt_after, lenet, mlflow_python, real_mnist_dir, runs_json, summary_of, train_until,
};
use lenet::run::MlflowRecord;
use lenet::run::history::{self, EpochMetrics};
use serde_json::Value;

/// An `mlflow server` with its own store, stopped (with the workers it started) on drop.
struct MlflowServer {
    child: Child,
    uri: String,
    _store: tempfile::TempDir,
}

impl MlflowServer {
    fn start(python: &str) -> Self {
        let store = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python)
            .args([
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--workers",
                "1",
            ])
            .args(["--port", &port.to_string()])
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                store.path().join("mlflow.db").display()
            ))
            .arg("--artifacts-destination")
            .arg(store.path().join("artifacts"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that stopping it stops the workers it starts.
            .process_group(0)
            .spawn()
            .expect("mlflow server starts");
        let server = Self {
            child,
            uri: format!("http://127.0.0.1:{port}"),
            _store: store,
        };
        let started = Instant::now();
        while ureq::get(&format!("{}/health", server.uri)).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "mlflow server did not answer on {} within two minutes",
                server.uri
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        server
    }

    fn stop(&mut self) {
        // SAFETY: signalling a process group this test started.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        let mut request = ureq::get(&format!("{}/api/2.0/mlflow/{endpoint}", self.uri));
        for (key, value) in query {
            request = request.query(*key, *value);
        }
        let mut response = request.call().unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn run(&self, run_id: &str) -> Value {
        self.get("runs/get", &[("run_id", run_id)])["run"].clone()
    }

    /// A metric's history as (step, value), in step order.
    fn history(&self, run_id: &str, key: &str) -> Vec<(i64, f64)> {
        let answer = self.get(
            "metrics/get-history",
            &[("run_id", run_id), ("metric_key", key)],
        );
        let mut points: Vec<(i64, f64)> = answer["metrics"]
            .as_array()
            .unwrap_or_else(|| panic!("no history of {key}: {answer}"))
            .iter()
            .map(|m| (m["step"].as_i64().unwrap(), m["value"].as_f64().unwrap()))
            .collect();
        points.sort_by_key(|p| p.0);
        points
    }

    /// The artifact paths under `path` (the root for ""), recursively.
    fn artifacts(&self, run_id: &str, path: &str) -> Vec<String> {
        let answer = self.get("artifacts/list", &[("run_id", run_id), ("path", path)]);
        let mut found = Vec::new();
        for file in answer["files"].as_array().into_iter().flatten() {
            let name = file["path"].as_str().unwrap().to_string();
            if file["is_dir"].as_bool() == Some(true) {
                found.extend(self.artifacts(run_id, &name));
            } else {
                found.push(name);
            }
        }
        found.sort();
        found
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The args of a smoke run of `epochs` epochs into `run` logged to `uri`.
fn smoke_args(run: &Path, uri: &str, epochs: usize) -> Vec<String> {
    common::smoke_args(run, epochs, &["--mlflow", uri])
}

fn metrics_csv(run: &Path) -> Vec<EpochMetrics> {
    history::from_csv(&fs::read_to_string(run.join("metrics.csv")).unwrap())
}

fn record(run: &Path) -> MlflowRecord {
    MlflowRecord::read(run).unwrap_or_else(|| panic!("no mlflow.json in {}", run.display()))
}

/// `key`'s history on the server against `metrics.csv`, epoch by epoch, each epoch once.
fn assert_history(
    server: &MlflowServer,
    run: &Path,
    key: &str,
    field: fn(&EpochMetrics) -> Option<f64>,
) {
    let expected: Vec<(i64, f64)> = metrics_csv(run)
        .iter()
        .map(|e| (e.epoch as i64, field(e).unwrap()))
        .collect();
    assert_eq!(server.history(&record(run).run_id, key), expected, "{key}");
}

#[test]
fn mlflow_logs_a_run_as_its_folder_holds_it() {
    let Some(python) = mlflow_python("the MLflow server checks") else {
        return;
    };
    let server = MlflowServer::start(&python);
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("digits-run");
    let output = lenet()
        .args(smoke_args(&run, &server.uri, 2))
        .env("MLFLOW_EXPERIMENT_NAME", "digits")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let record = record(&run);
    assert!(
        stdout.contains(&format!("MLflow: {}", record.page())),
        "{stdout}"
    );
    assert!(!stdout.contains("not sent"), "{stdout}");

    let experiment = server.get("experiments/get-by-name", &[("experiment_name", "digits")]);
    assert_eq!(
        experiment["experiment"]["experiment_id"],
        record.experiment_id.as_str()
    );
    let kind = experiment["experiment"]["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["key"] == "mlflow.experimentKind");
    assert_eq!(
        kind.map(|t| t["value"].clone()),
        Some("custom_model_development".into())
    );
    let mlflow_run = server.run(&record.run_id);
    assert_eq!(mlflow_run["info"]["status"], "FINISHED");
    assert_eq!(mlflow_run["info"]["run_name"], "digits-run");

    let pairs = |list: &Value| -> Vec<(String, String)> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["key"].as_str().unwrap().to_string(),
                    p["value"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let params = pairs(&mlflow_run["data"]["params"]);
    let config: lenet::config::TrainingConfig =
        serde_json::from_str(&fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let keys: Vec<String> = config
        .flattened_with_locations()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut logged: Vec<String> = params.iter().map(|(k, _)| k.clone()).collect();
    logged.sort();
    assert_eq!(logged, keys, "every config key, dotted");
    assert!(logged.iter().any(|k| k == "data.dir"), "{logged:?}");
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(param("optimizer.learning_rate"), Some("0.002"));
    assert_eq!(param("epochs"), Some("2"));
    assert_eq!(param("model.activation"), Some("relu"));

    let tags = pairs(&mlflow_run["data"]["tags"]);
    let tag = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(tag("lenet.backend"), Some("flex"));
    assert_eq!(
        tag("lenet.variant"),
        Some(config.model.variant.to_string().as_str())
    );
    assert_eq!(
        tag("lenet.dataset"),
        Some(config.data.dataset.to_string().as_str())
    );
    assert_eq!(tag("lenet.version"), Some(env!("CARGO_PKG_VERSION")));

    assert_history(&server, &run, "train_loss", |e| e.train_loss);
    assert_history(&server, &run, "valid_accuracy", |e| e.valid_accuracy);
    assert_history(&server, &run, "learning_rate", |e| e.learning_rate);
    let summary = summary_of(&run);
    assert_eq!(
        server.history(&record.run_id, "test_accuracy"),
        [(2, summary.test_accuracy)]
    );

    let artifacts = server.artifacts(&record.run_id, "");
    for expected in [
        "config.json",
        "eval/confusion.png",
        "eval/mistakes.png",
        "metrics.csv",
        "model.onnx",
        "plots/accuracy.png",
        "plots/loss.png",
        "summary.json",
    ] {
        assert!(
            artifacts.iter().any(|a| a == expected),
            "{expected} in {artifacts:?}"
        );
    }

    let runs = runs_json(root.path());
    assert_eq!(runs[0]["logged_to"][0]["tracker"], "mlflow", "{runs}");
    assert_eq!(runs[0]["logged_to"][0]["at"], record.page().as_str());
}

#[test]
fn mlflow_keeps_a_stopped_and_resumed_run_as_one_run() {
    let Some(python) = mlflow_python("the MLflow server checks") else {
        return;
    };
    let server = MlflowServer::start(&python);
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("stopped");
    interrupt_after(&smoke_args(&run, &server.uri, 3), "epoch 1/3");
    let first = record(&run);
    assert_eq!(server.run(&first.run_id)["info"]["status"], "KILLED");

    lenet()
        .args(["resume", "--no-tui", "--run"])
        .arg(&run)
        .arg("--data-dir")
        .arg(real_mnist_dir())
        .assert()
        .success();
    assert_eq!(record(&run).run_id, first.run_id, "the same MLflow run");
    assert_eq!(server.run(&first.run_id)["info"]["status"], "FINISHED");
    assert_history(&server, &run, "valid_accuracy", |e| e.valid_accuracy);
    assert_history(&server, &run, "train_loss", |e| e.train_loss);
    let experiment = server.get("experiments/get-by-name", &[("experiment_name", "lenet")]);
    let id = experiment["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = ureq::post(&format!("{}/api/2.0/mlflow/runs/search", server.uri))
        .header("Content-Type", "application/json")
        .send(format!(r#"{{"experiment_ids": ["{id}"]}}"#).as_bytes())
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let runs: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1), "{runs}");
}

#[test]
fn mlflow_going_away_does_not_stop_training_which_says_what_it_could_not_send() {
    let Some(python) = mlflow_python("the MLflow server checks") else {
        return;
    };
    let mut server = MlflowServer::start(&python);
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("orphaned");
    let (mut child, rest) = train_until(&smoke_args(&run, &server.uri, 3), "epoch 1/3");
    server.stop();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "training goes on without the server: {stderr}"
    );
    assert_eq!(summary_of(&run).epochs, 3);
    let stdout = rest.join().unwrap();
    let said = stdout
        .iter()
        .find(|line| line.starts_with("MLflow: "))
        .unwrap_or_else(|| panic!("no MLflow line in {stdout:?}"));
    assert!(
        said.contains(&record(&run).page())
            && said.contains("not sent")
            && said.contains("metric values"),
        "{said}"
    );
}

#[test]
fn mlflow_refuses_a_run_it_cannot_log_to_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    // Nothing listens on a port just freed.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    // A web server that is not MLflow: every request answered 404.
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let not_mlflow = format!("http://127.0.0.1:{}", other.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in other.incoming().flatten() {
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ =
                stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here\n");
        }
    });
    for (uri, expected) in [
        (closed.as_str(), closed.as_str()),
        (not_mlflow.as_str(), "HTTP 404"),
        ("file:///tmp/mlruns", "tracking.mlflow.uri"),
        ("127.0.0.1:5000", "tracking.mlflow.uri"),
    ] {
        let run: PathBuf = root.path().join("refused");
        let output = lenet().args(smoke_args(&run, uri, 1)).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{uri}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{uri}: one line: {stderr}"
        );
        assert!(
            stderr.contains(expected) && stderr.contains(uri),
            "{uri}: {stderr}"
        );
        assert!(!run.exists(), "{uri}: nothing written");
    }
}

//! A run logged to an MLflow tracking server: its config keys as params, tags saying what
//! made it, each epoch's figures as metrics at `step` = epoch, the test figures, artifacts at
//! the end, and its status (FINISHED, FAILED or KILLED).
//!
//! The start is checked on the spot, before training writes anything, so a wrong URI or a
//! server that is down refuses the run in one line. After that, nothing the server does can
//! stop or slow training: what training logs goes to a thread of its own, which sends it in
//! order and tries each call again a few times; while the server is away, what it could not
//! send waits and is tried again with each new message and once more at the end, when what
//! still could not be sent is reported.
//!
//! The MLflow run's id is kept in the run folder (`mlflow.json`), so a resumed run goes on
//! logging to the same MLflow run, and skips the epochs that run already has.

mod client;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;

use super::TrackingError;
use crate::run::history::EpochMetrics;
use crate::run::{self, MLFLOW_FILE, MlflowRecord};
use client::{CallError, Client, Metric};

/// Where to log: the tracking server and the experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowTarget {
    pub uri: String,
    pub experiment: String,
}

/// How a run ended, in MLflow's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Finished,
    Failed,
    /// Stopped (Ctrl-C, the dashboard) or killed: resumable.
    Killed,
}

impl RunEnd {
    fn status(self) -> &'static str {
        match self {
            RunEnd::Finished => "FINISHED",
            RunEnd::Failed => "FAILED",
            RunEnd::Killed => "KILLED",
        }
    }
}

/// MLflow takes at most 100 params a call.
const PARAMS_PER_CALL: usize = 100;
/// Tries of a call while the server answers; one while it is known to be away.
const TRIES: u32 = 3;
/// How long the end of a run waits for the last messages to be sent.
const END_WAIT: Duration = Duration::from_secs(30);

/// A run's MLflow log, fed by training.
pub struct MlflowLog {
    record: MlflowRecord,
    client: Client,
    sender: Sender<Message>,
    /// The sending thread's last word: where the run went and what it could not send.
    report: Mutex<Receiver<String>>,
    /// Whether the run's end was sent; a log dropped before (training failed on the way)
    /// ends its run as FAILED rather than leave it RUNNING.
    ended: AtomicBool,
}

enum Message {
    Metrics(Vec<(String, f64, i64)>),
    Artifact(String, Vec<u8>),
    End(RunEnd),
}

impl MlflowLog {
    /// Connects and opens the run: the MLflow run `run_dir` records, when the run continues and
    /// logged to the same server, else a new one named `name` in the target's experiment, with
    /// `params` (dotted config keys) and `tags`.
    pub fn start(
        target: &MlflowTarget,
        run_dir: &Path,
        name: &str,
        params: &[(String, Json)],
        tags: &[(String, String)],
        continues: bool,
    ) -> Result<Self, TrackingError> {
        let client = Client::new(&target.uri);
        let refused = |e: CallError| TrackingError::Mlflow {
            uri: target.uri.clone(),
            message: e.message,
        };
        let earlier = MlflowRecord::read(run_dir)
            .filter(|r| continues && r.uri.trim_end_matches('/') == client.base);
        let (record, logged_epochs) = match earlier {
            Some(record) => {
                client.run(&record.run_id).map_err(refused)?;
                client
                    .set_status(&record.run_id, "RUNNING", None)
                    .map_err(refused)?;
                let steps = client
                    .metric_steps(&record.run_id, "train_loss")
                    .map_err(refused)?;
                (record, steps.into_iter().max().unwrap_or(0))
            }
            None => {
                let experiment_id = client.experiment(&target.experiment).map_err(refused)?;
                let (run_id, artifact_uri) = client
                    .create_run(&experiment_id, name, now_ms(), tags)
                    .map_err(refused)?;
                let params: Vec<(String, String)> =
                    params.iter().map(|(k, v)| (k.clone(), param(v))).collect();
                for chunk in params.chunks(PARAMS_PER_CALL) {
                    client.log_batch(&run_id, chunk, &[]).map_err(refused)?;
                }
                let record = MlflowRecord {
                    uri: client.base.clone(),
                    experiment_id,
                    run_id,
                    artifact_uri,
                };
                (record, 0)
            }
        };
        let (sender, messages) = mpsc::channel();
        let (reporter, report) = mpsc::channel();
        let worker = Worker {
            client: client.clone(),
            record: record.clone(),
            logged_epochs,
            pending: VecDeque::new(),
            away: false,
            unsent_metrics: 0,
            unsent_artifacts: 0,
            status_unsent: false,
            last_error: None,
        };
        thread::Builder::new()
            .name("mlflow".to_string())
            .spawn(move || {
                let _ = reporter.send(worker.run(messages));
            })
            .map_err(|e| TrackingError::Mlflow {
                uri: target.uri.clone(),
                message: format!("cannot start the thread that sends to it: {e}"),
            })?;
        Ok(Self {
            record,
            client,
            sender,
            report: Mutex::new(report),
            ended: AtomicBool::new(false),
        })
    }

    pub fn record(&self) -> &MlflowRecord {
        &self.record
    }

    /// Keeps the MLflow run's id in the run folder, for a resume to continue it.
    pub fn keep(&self, run_dir: &Path) -> Result<(), TrackingError> {
        let json = serde_json::to_vec_pretty(&self.record).expect("record serialises");
        Ok(run::write_atomic(&run_dir.join(MLFLOW_FILE), &json)?)
    }

    /// An epoch's figures, at `step` = the epoch.
    pub fn epoch(&self, metrics: &EpochMetrics) {
        let step = metrics.epoch as i64;
        let values = [
            ("train_loss", metrics.train_loss),
            ("train_accuracy", metrics.train_accuracy),
            ("valid_loss", metrics.valid_loss),
            ("valid_accuracy", metrics.valid_accuracy),
            ("learning_rate", metrics.learning_rate),
        ];
        let values = values
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_string(), value?, step)))
            .collect();
        let _ = self.sender.send(Message::Metrics(values));
    }

    /// The final model's test figures, after `epochs` epochs.
    pub fn tested(&self, epochs: usize, accuracy: f64, loss: f64) {
        let step = epochs as i64;
        let values = vec![
            ("test_accuracy".to_string(), accuracy, step),
            ("test_loss".to_string(), loss, step),
        ];
        let _ = self.sender.send(Message::Metrics(values));
    }

    /// A file for the run's artifacts, at `path` among them.
    pub fn artifact(&self, path: &str, bytes: Vec<u8>) {
        let _ = self.sender.send(Message::Artifact(path.to_string(), bytes));
    }

    /// Ends the run with its status, once what was logged is sent (waiting at most
    /// [`END_WAIT`]); returns one line saying where it went and what could not be sent.
    pub fn end(&self, end: RunEnd) -> String {
        if self.ended.swap(true, Ordering::SeqCst) {
            return format!("MLflow: {} (ended already)", self.record.page());
        }
        let _ = self.sender.send(Message::End(end));
        let report = self.report.lock().unwrap_or_else(|p| p.into_inner());
        match report.recv_timeout(END_WAIT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => format!(
                "MLflow: {} (still sending after {} s; what was not sent is lost)",
                self.record.page(),
                END_WAIT.as_secs()
            ),
            Err(RecvTimeoutError::Disconnected) => format!(
                "MLflow: {} (the thread sending to it stopped; what it had not sent is lost)",
                self.record.page()
            ),
        }
    }

    /// Lets go of the run without ending it, for a process that turns out not to be the one
    /// training it (another holds the run folder).
    pub fn leave(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    /// Marks the run KILLED there and then, for a process about to exit (the dashboard's kill).
    pub fn killed_now(&self) {
        self.ended.store(true, Ordering::SeqCst);
        let _ =
            self.client
                .set_status(&self.record.run_id, RunEnd::Killed.status(), Some(now_ms()));
    }
}

impl Drop for MlflowLog {
    fn drop(&mut self) {
        if !self.ended.load(Ordering::SeqCst) {
            self.end(RunEnd::Failed);
        }
    }
}

/// What the sending thread has and has not managed.
struct Worker {
    client: Client,
    record: MlflowRecord,
    /// Epochs the MLflow run had when this process started: not logged again.
    logged_epochs: i64,
    pending: VecDeque<Message>,
    /// The last call failed for want of the server: the next are tried once each.
    away: bool,
    unsent_metrics: usize,
    unsent_artifacts: usize,
    status_unsent: bool,
    last_error: Option<String>,
}

impl Worker {
    fn run(mut self, messages: Receiver<Message>) -> String {
        for message in messages {
            let end = matches!(message, Message::End(_));
            self.pending.push_back(message);
            if end {
                // The last chance: the server gets its full tries again.
                self.away = false;
            }
            self.send_pending();
            if end {
                break;
            }
        }
        self.count_unsent();
        self.report()
    }

    /// Sends what waits, in order, until the server is found away.
    fn send_pending(&mut self) {
        while let Some(message) = self.pending.pop_front() {
            match self.send(&message) {
                Ok(()) => self.away = false,
                Err(e) if e.transient => {
                    self.away = true;
                    self.last_error = Some(e.message);
                    self.pending.push_front(message);
                    return;
                }
                // The server refused it, and would again: it is left out and counted.
                Err(e) => {
                    self.last_error = Some(e.message);
                    self.count(&message);
                }
            }
        }
    }

    fn send(&self, message: &Message) -> Result<(), CallError> {
        let tries = if self.away { 1 } else { TRIES };
        let mut wait = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match self.call(message) {
                Err(e) if e.transient && attempt < tries => {
                    thread::sleep(wait);
                    wait *= 2;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn call(&self, message: &Message) -> Result<(), CallError> {
        let run_id = &self.record.run_id;
        match message {
            Message::Metrics(values) => {
                let timestamp = now_ms();
                let metrics: Vec<Metric> = values
                    .iter()
                    .filter(|(key, _, step)| self.wanted(key, *step))
                    .map(|(key, value, step)| Metric {
                        key,
                        value: *value,
                        step: *step,
                        timestamp,
                    })
                    .collect();
                if metrics.is_empty() {
                    return Ok(());
                }
                self.client.log_batch(run_id, &[], &metrics)
            }
            Message::Artifact(path, bytes) => {
                self.client.upload(&self.record.artifact_uri, path, bytes)
            }
            Message::End(end) => self.client.set_status(run_id, end.status(), Some(now_ms())),
        }
    }

    /// Whether a metric value is to be sent: not one of an epoch the MLflow run already had.
    fn wanted(&self, key: &str, step: i64) -> bool {
        key.starts_with("test_") || step > self.logged_epochs
    }

    fn count(&mut self, message: &Message) {
        match message {
            Message::Metrics(values) => {
                let unsent = values.iter().filter(|(k, _, step)| self.wanted(k, *step));
                let unsent = unsent.count();
                self.unsent_metrics += unsent;
            }
            Message::Artifact(..) => self.unsent_artifacts += 1,
            Message::End(_) => self.status_unsent = true,
        }
    }

    fn count_unsent(&mut self) {
        let pending: Vec<Message> = self.pending.drain(..).collect();
        for message in &pending {
            self.count(message);
        }
    }

    fn report(&self) -> String {
        let mut unsent = Vec::new();
        if self.unsent_metrics > 0 {
            unsent.push(format!("{} metric values", self.unsent_metrics));
        }
        if self.unsent_artifacts > 0 {
            unsent.push(format!("{} artifacts", self.unsent_artifacts));
        }
        if self.status_unsent {
            unsent.push("the run's status".to_string());
        }
        let page = self.record.page();
        match (&unsent[..], &self.last_error) {
            ([], _) => format!("MLflow: {page}"),
            (_, error) => format!(
                "MLflow: {page}; not sent: {} ({})",
                unsent.join(", "),
                error.as_deref().unwrap_or("no answer")
            ),
        }
    }
}

/// A config value as an MLflow param: text as it is, anything else as JSON.
fn param(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

//! MLflow's tracking server, over the REST API every MLflow server speaks (`/api/2.0/mlflow/`,
//! and `/api/2.0/mlflow-artifacts/` for artifacts the server stores itself). No maintained Rust
//! client for MLflow exists; the calls lenet makes are a handful of JSON requests, made with the
//! HTTP client it already uses for downloads.

use std::time::Duration;

use serde_json::{Value, json};

/// A call to the server that failed: it could not be reached, or answered with an error.
#[derive(Debug, Clone)]
pub struct CallError {
    pub message: String,
    /// Whether trying again could help: the server was unreachable, timed out, answered 5xx,
    /// or 429 (too many requests, as hosted servers say). Another 4xx is the request's fault
    /// and fails the same way every time.
    pub transient: bool,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One MLflow tracking server.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// The server's address without a trailing slash: `http://127.0.0.1:5000`.
    pub base: String,
}

/// A metric value as MLflow records it.
pub struct Metric<'a> {
    pub key: &'a str,
    pub value: f64,
    pub step: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

impl Client {
    pub fn new(uri: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(3)))
            .timeout_global(Some(Duration::from_secs(20)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            base: uri.trim_end_matches('/').to_string(),
        }
    }

    /// The id of the experiment called `name`, created if there is none.
    pub fn experiment(&self, name: &str) -> Result<String, CallError> {
        let found = self.get(
            "mlflow/experiments/get-by-name",
            &[("experiment_name", name)],
        );
        match found {
            Ok(answer) => Ok(text(&answer["experiment"]["experiment_id"])),
            Err(e) if e.message.contains("RESOURCE_DOES_NOT_EXIST") => {
                // The kind tells MLflow's UI (3.x) to open the experiment on its runs, as for
                // model training, rather than on its GenAI traces.
                let kind =
                    json!({"key": "mlflow.experimentKind", "value": "custom_model_development"});
                let body = json!({ "name": name, "tags": [kind] });
                match self.post("mlflow/experiments/create", &body) {
                    Ok(created) => Ok(text(&created["experiment_id"])),
                    // Another run (a sweep's trial, say) created it in between.
                    Err(e) if e.message.contains("RESOURCE_ALREADY_EXISTS") => {
                        let found = self.get(
                            "mlflow/experiments/get-by-name",
                            &[("experiment_name", name)],
                        )?;
                        Ok(text(&found["experiment"]["experiment_id"]))
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A new run in `experiment`; returns its id and where its artifacts go.
    pub fn create_run(
        &self,
        experiment: &str,
        name: &str,
        start_ms: i64,
        tags: &[(String, String)],
    ) -> Result<(String, String), CallError> {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let answer = self.post(
            "mlflow/runs/create",
            &json!({"experiment_id": experiment, "run_name": name, "start_time": start_ms, "tags": tags}),
        )?;
        let info = &answer["run"]["info"];
        Ok((text(&info["run_id"]), text(&info["artifact_uri"])))
    }

    /// A run's info and data, as the server has them.
    pub fn run(&self, run_id: &str) -> Result<Value, CallError> {
        Ok(self.get("mlflow/runs/get", &[("run_id", run_id)])?["run"].take())
    }

    /// Params, metrics and tags at once; MLflow takes at most 100 params and 1,000 metrics a
    /// call, which the caller keeps to.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        metrics: &[Metric],
    ) -> Result<(), CallError> {
        let params: Vec<Value> = params
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let metrics: Vec<Value> = metrics
            .iter()
            .map(|m| json!({"key": m.key, "value": m.value, "step": m.step, "timestamp": m.timestamp}))
            .collect();
        self.post(
            "mlflow/runs/log-batch",
            &json!({"run_id": run_id, "params": params, "metrics": metrics}),
        )
        .map(drop)
    }

    /// Sets the run's status (`RUNNING`, `FINISHED`, `FAILED`, `KILLED`), with its end time
    /// once it has ended.
    pub fn set_status(
        &self,
        run_id: &str,
        status: &str,
        end_ms: Option<i64>,
    ) -> Result<(), CallError> {
        let mut body = json!({"run_id": run_id, "status": status});
        if let Some(end) = end_ms {
            body["end_time"] = json!(end);
        }
        self.post("mlflow/runs/update", &body).map(drop)
    }

    /// The steps at which the run has values of `key`.
    pub fn metric_steps(&self, run_id: &str, key: &str) -> Result<Vec<i64>, CallError> {
        let answer = self.get(
            "mlflow/metrics/get-history",
            &[("run_id", run_id), ("metric_key", key)],
        )?;
        Ok(answer["metrics"]
            .as_array()
            .map(|values| values.iter().filter_map(|m| m["step"].as_i64()).collect())
            .unwrap_or_default())
    }

    /// Uploads `bytes` as the artifact `path` of a run whose artifacts the server stores itself
    /// (`artifact_root` `mlflow-artifacts:/<experiment>/<run>/artifacts`).
    pub fn upload(&self, artifact_root: &str, path: &str, bytes: &[u8]) -> Result<(), CallError> {
        let Some(root) = artifact_root.strip_prefix("mlflow-artifacts:") else {
            return Err(CallError {
                message: format!(
                    "the server keeps this run's artifacts at {artifact_root}, which only it can \
                     write to: start it with artifact serving on (`mlflow server`'s default)"
                ),
                transient: false,
            });
        };
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{path}",
            self.base,
            root.trim_start_matches('/')
        );
        let answer = self.agent.put(&url).send(bytes);
        checked(&url, answer).map(drop)
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value, CallError> {
        let url = format!("{}/api/2.0/{endpoint}", self.base);
        let mut request = self.agent.get(&url);
        for (key, value) in query {
            request = request.query(*key, *value);
        }
        checked(&url, request.call())
    }

    fn post(&self, endpoint: &str, body: &Value) -> Result<Value, CallError> {
        let url = format!("{}/api/2.0/{endpoint}", self.base);
        let answer = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes());
        checked(&url, answer)
    }
}

/// The JSON of a 2xx answer; otherwise what went wrong, with MLflow's own error code.
fn checked(
    url: &str,
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Value, CallError> {
    let mut response = answer.map_err(|e| CallError {
        message: format!("no answer ({e})"),
        transient: true,
    })?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(serde_json::from_str(&body).unwrap_or(Value::Null));
    }
    let detail = serde_json::from_str::<Value>(&body)
        .ok()
        .filter(|v| v["error_code"].is_string())
        .map(|v| format!("{} {}", text(&v["error_code"]), text(&v["message"])))
        .unwrap_or_else(|| "not an MLflow answer: is this an MLflow tracking server?".to_string());
    // One line, whatever the server's message holds.
    let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    // The path says which call it was: an MLflow server answers every one of them, so a 404
    // usually means the address is not one.
    let path = url
        .split("/api/")
        .nth(1)
        .map_or(url, |p| p.split('?').next().unwrap_or(p));
    Err(CallError {
        message: format!("/api/{path} answered HTTP {status}: {detail}"),
        transient: status >= 500 || status == 429,
    })
}

/// A JSON value as text: strings without their quotes, nothing for null.
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

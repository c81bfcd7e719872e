//! `lenet serve` in a real browser: headless Chromium driven through WebDriver (chromedriver),
//! over runs trained in the test. Each page loads and renders; a real MNIST test digit drawn on
//! the canvas with pointer strokes is recognised as that digit; an uploaded image is too; a
//! sweep's page ranks its trials and draws its charts, and links to each trial's run.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test says so and passes, unless `LENET_REQUIRE_BROWSER` is set, as CI sets it. With
//! `LENET_SCREENSHOTS=DIR` it saves the pages as PNGs there (the pictures of the README and
//! docs/serve.md).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::server::{Server, artifacts, http, read_json};
use lenet::data::idx::Part;
use lenet::data::split::ImageSplit;
use serde_json::{Value, json};

/// The key WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and a headless Chromium session through it, both ended on drop.
struct Browser {
    driver: Child,
    base: String,
    agent: ureq::Agent,
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut browser = Self {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            agent: http(),
        };
        wait_for("chromedriver to be ready", Duration::from_secs(30), || {
            browser
                .agent
                .get(format!("{}/status", browser.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .is_some_and(|v| v["value"]["ready"] == true)
        });
        let session = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1000"],
                },
            }}}),
        );
        let id = session["sessionId"]
            .as_str()
            .expect("a session")
            .to_string();
        browser.base = format!("{}/session/{id}", browser.base);
        browser
    }

    /// A WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(&serde_json::to_vec(&body).unwrap()[..]),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let value = read_json(&mut response);
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// Waits until `script` (a JavaScript expression) is true in the page.
    fn wait_until(&self, what: &str, script: &str) {
        let start = Instant::now();
        while self.script(&format!("return Boolean({script});")) != true {
            if start.elapsed() > Duration::from_secs(60) {
                let page = self.script("return document.body.innerText;");
                panic!("gave up waiting for {what}; the page says: {page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        found[ELEMENT].as_str().expect("an element").to_string()
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("LENET_SCREENSHOTS") else {
            return;
        };
        let png = self.call("GET", "/screenshot", Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(name), bytes).unwrap();
    }

    /// Draws a 28x28 digit on the 280x280 canvas with the mouse: each row's runs of ink as a
    /// stroke, pixel (c, r) at (10c + 5, 10r + 5), as someone colouring it in would.
    fn draw(&self, pixels: &[u8]) {
        let canvas = self.element("#pad");
        let origin = json!({ ELEMENT: canvas });
        // WebDriver's element origin is the element's centre.
        let at = |c: usize, r: usize| (c as i64 * 10 + 5 - 140, r as i64 * 10 + 5 - 140);
        let mut actions = Vec::new();
        for r in 0..28 {
            let mut c = 0;
            while c < 28 {
                if pixels[r * 28 + c] < 128 {
                    c += 1;
                    continue;
                }
                let start = c;
                while c < 28 && pixels[r * 28 + c] >= 128 {
                    c += 1;
                }
                let ((x0, y), (x1, _)) = (at(start, r), at(c - 1, r));
                actions.extend([
                    json!({"type": "pointerMove", "duration": 0, "origin": origin, "x": x0, "y": y}),
                    json!({"type": "pointerDown", "button": 0}),
                    json!({"type": "pointerMove", "duration": 0, "origin": origin, "x": x1, "y": y}),
                    json!({"type": "pointerUp", "button": 0}),
                ]);
            }
        }
        self.call(
            "POST",
            "/actions",
            json!({"actions": [{
                "type": "pointer", "id": "mouse",
                "parameters": {"pointerType": "mouse"},
                "actions": actions,
            }]}),
        );
    }

    /// The digit the draw page shows once its last request has been answered.
    fn answer(&self) -> i64 {
        self.wait_until(
            "an answer",
            "document.querySelector('#answer').dataset.state === 'done'",
        );
        // Strokes each ask for an answer; the last one to come back is the whole drawing's.
        std::thread::sleep(Duration::from_millis(800));
        self.wait_until(
            "the last answer",
            "document.querySelector('#answer').dataset.state === 'done'",
        );
        self.script("return Number(document.querySelector('#answer').dataset.class);")
            .as_i64()
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first of `names` found on the PATH or in /usr/bin and /usr/lib/chromium.
fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ])
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Chromium and chromedriver, or `None` after saying why (a failure in CI).
fn chromium() -> Option<(PathBuf, PathBuf)> {
    let (Some(chromium), Some(chromedriver)) = (
        find(&["chromium", "chromium-browser", "google-chrome"]),
        find(&["chromedriver"]),
    ) else {
        common::skip_unless_required(
            "LENET_REQUIRE_BROWSER",
            "the browser test",
            "no chromium and chromedriver (apt-get install chromium chromium-driver)",
        );
        return None;
    };
    Some((chromium, chromedriver))
}

#[test]
fn browser_shows_the_runs_and_reads_a_drawn_digit() {
    let Some((chromium, chromedriver)) = chromium() else {
        return;
    };
    let server = Server::start(artifacts());
    let browser = Browser::start(&chromium, &chromedriver);
    let page = |fragment: &str| format!("{}/{fragment}", server.url);

    // The runs page: every run, with its state.
    browser.open(&page("#/"));
    browser.wait_until(
        "the runs table",
        "document.querySelectorAll('#runs-table tbody tr').length === 3",
    );
    let state = browser.script(
        "return document.querySelector('#runs-table tr[data-run=\"smoke\"]').dataset.state;",
    );
    assert_eq!(state, "finished");
    browser.screenshot("runs.png");

    // A run page: both curves drawn, the evaluation's confusion matrix, a cell's images.
    browser.open(&page("#/run/smoke"));
    browser.wait_until(
        "the curves",
        "document.querySelectorAll('svg.chart path.series').length === 4",
    );
    browser.wait_until(
        "the confusion matrix",
        "document.querySelectorAll('#confusion td.cell').length === 100",
    );
    let (label, predicted, count) = {
        let cell = browser.script(
            "const cells = [...document.querySelectorAll('#confusion td.cell')]
               .filter(c => c.dataset.label !== c.dataset.predicted);
             const top = cells.reduce((a, b) => Number(b.textContent) > Number(a.textContent) ? b : a);
             return [top.dataset.label, top.dataset.predicted, Number(top.textContent)];",
        );
        (cell[0].clone(), cell[1].clone(), cell[2].as_u64().unwrap())
    };
    browser.click(&format!(
        "#confusion td.cell[data-label=\"{}\"][data-predicted=\"{}\"]",
        label.as_str().unwrap(),
        predicted.as_str().unwrap()
    ));
    browser.wait_until(
        "the cell's images",
        &format!(
            "document.querySelectorAll('#cell-images img').length === {} && \
             [...document.querySelectorAll('#cell-images img')].every(i => i.complete && i.naturalWidth === 28)",
            count.min(120)
        ),
    );
    browser.wait_until(
        "the learned filters",
        "document.querySelectorAll('#filters canvas.kernel').length === 6 + 16 * 6",
    );
    browser.screenshot("run.png");

    // Two runs compared: their curves overlaid, the config keys that differ.
    browser.open(&page("#/compare/smoke,seed7"));
    browser.wait_until(
        "the comparison",
        "[...document.querySelectorAll('#differences th')].some(th => th.textContent === 'seed')",
    );
    let overlaid = browser.script(
        "return document.querySelector('svg.chart').querySelectorAll('path.series').length;",
    );
    assert_eq!(overlaid, 2);

    // Draw with no run named: the page opens on the finished MNIST run of the highest accuracy,
    // not on a run of another data set that scored higher (a copy of smoke's folder made to
    // claim Fashion-MNIST and 99.99%).
    let other = artifacts().join("clothes");
    std::fs::create_dir_all(&other).unwrap();
    for file in ["config.json", "summary.json", "status.json", "model.bpk"] {
        std::fs::copy(artifacts().join("smoke").join(file), other.join(file)).unwrap();
    }
    let edit = |file: &str, change: &dyn Fn(&mut Value)| {
        let path = other.join(file);
        let mut json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        change(&mut json);
        std::fs::write(&path, json.to_string()).unwrap();
    };
    edit("config.json", &|c| {
        c["data"]["dataset"] = json!("fashion-mnist")
    });
    edit("summary.json", &|s| s["test_accuracy"] = json!(0.9999));
    let runs = read_json(
        &mut http()
            .get(&format!("{}/api/runs", server.url))
            .call()
            .unwrap(),
    );
    let best = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "finished" && r["dataset"] == "MNIST")
        .max_by(|a, b| {
            let accuracy = |r: &&Value| r["test_accuracy"].as_f64().unwrap();
            accuracy(a).total_cmp(&accuracy(b))
        })
        .unwrap();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "clothes"
                && r["state"] == "finished"
                && r["test_accuracy"].as_f64() > best["test_accuracy"].as_f64()),
        "{runs}"
    );
    browser.open(&page("#/draw"));
    browser.wait_until("the model list", "document.querySelector('#model')");
    assert_eq!(
        browser.script("return document.querySelector('#model').value;"),
        best["name"]
    );

    // Draw: real MNIST test digits, stroke by stroke; each read as itself, with every layer's
    // maps shown for it, and the maps change with the drawing.
    let test = ImageSplit::read_idx(&common::real_mnist_dir(), Part::Test, 10).unwrap();
    browser.open(&page("#/draw/smoke"));
    browser.wait_until("the canvas", "document.querySelector('#pad')");
    let mut seen_maps = Vec::new();
    for index in [0, 1, 2, 3] {
        browser.click("#clear");
        browser.draw(test.image(index));
        let label = i64::from(test.label(index));
        assert_eq!(browser.answer(), label, "drawn test digit {index}");
        browser.wait_until(
            "every layer's maps",
            "document.querySelector('#layers').dataset.state === 'done' && \
             document.querySelectorAll('#layers canvas.map[data-layer=\"c1\"]').length === 6 && \
             document.querySelectorAll('#layers canvas.map[data-layer=\"c3\"]').length === 16 && \
             document.querySelectorAll('#layers canvas.units').length === 3 && \
             document.querySelector('#saliency') !== null",
        );
        let maps = browser.script(
            "return [...document.querySelectorAll('#layers canvas.map[data-layer=\"c1\"]')]
               .map(c => c.toDataURL()).join();",
        );
        seen_maps.push(maps.as_str().unwrap().to_string());
    }
    for pair in seen_maps.windows(2) {
        assert_ne!(pair[0], pair[1], "c1's maps change with the drawing");
    }
    browser.screenshot("draw.png");

    // Upload: an image file through the page's file input.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("digit.png");
    image::GrayImage::from_raw(28, 28, test.image(4).to_vec())
        .unwrap()
        .save(&file)
        .unwrap();
    browser.click("#clear");
    let input = browser.element("#upload");
    browser.call(
        "POST",
        &format!("/element/{input}/value"),
        json!({ "text": file.to_string_lossy() }),
    );
    assert_eq!(browser.answer(), i64::from(test.label(4)));
}

#[test]
fn browser_shows_a_sweep_ranked_with_its_charts() {
    let Some((chromium, chromedriver)) = chromium() else {
        return;
    };
    // A random sweep over three keys, so the page has a chart per key and parallel coordinates.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("browse.json");
    std::fs::write(
        &file,
        r#"{"name": "browse", "method": "random", "trials": 4, "seed": 3,
            "base": {"epochs": 2, "checkpoint_every_seconds": 0,
                     "data": {"validation_size": 300, "train_limit": 1500, "test_limit": 300}},
            "parameters": {
              "optimizer.learning_rate": {"min": 0.0005, "max": 0.005, "distribution": "log_uniform"},
              "batch_size": {"values": [32, 64]},
              "model.activation": {"values": ["relu", "tanh"]}}}"#,
    )
    .unwrap();
    let artifacts = dir.path().join("artifacts");
    common::lenet()
        .args(["sweep", "--parallel", "2", "--config"])
        .arg(&file)
        .arg("--artifact-dir")
        .arg(&artifacts)
        .arg("--data-dir")
        .arg(common::real_mnist_dir())
        .assert()
        .success();
    let server = Server::start(&artifacts);
    let browser = Browser::start(&chromium, &chromedriver);
    let page = |fragment: &str| format!("{}/{fragment}", server.url);

    browser.open(&page("#/"));
    browser.wait_until(
        "the sweeps table",
        "document.querySelector('#sweeps-table tr[data-sweep=\"browse\"] a')",
    );
    browser.click("#sweeps-table tr[data-sweep=\"browse\"] a");
    browser.wait_until(
        "the ranking",
        "document.querySelectorAll('#sweep-ranking tbody tr').length === 4",
    );
    browser.wait_until(
        "a chart per key, a point per trial",
        "document.querySelectorAll('#sweep-charts svg.scatter').length === 3 && \
         [...document.querySelectorAll('#sweep-charts svg.scatter')] \
           .every(s => s.querySelectorAll('circle.trial').length === 4)",
    );
    browser.wait_until(
        "the parallel coordinates",
        "document.querySelectorAll('#sweep-parallel path.trial-line').length === 4",
    );
    browser.wait_until(
        "the best trials' curves",
        "document.querySelectorAll('#sweep-curves path.series').length === 4",
    );
    // The learning rate, drawn log-uniformly, is on a logarithmic axis.
    let titles = browser.script(
        "return [...document.querySelectorAll('#sweep-charts svg.scatter text')].map(t => t.textContent);",
    );
    assert!(
        titles
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "optimizer.learning_rate (log scale)"),
        "{titles}"
    );
    // Ranked best first, as `lenet sweep report` ranks them.
    let shown = browser.script(
        "return [...document.querySelectorAll('#sweep-ranking tbody tr')].map(r => r.dataset.trial);",
    );
    let report = common::sweep_report_json(&artifacts.join("browse"));
    let ranked: Vec<Value> = report["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(shown, Value::Array(ranked));
    browser.screenshot("sweep.png");

    // The best trial's link opens its run page, as any run's.
    browser.click("#sweep-ranking tbody tr a");
    browser.wait_until(
        "the trial's curves",
        "document.querySelectorAll('svg.chart path.series').length === 4",
    );
    let heading = browser.script("return document.querySelector('h1').textContent;");
    assert!(
        heading
            .as_str()
            .unwrap()
            .starts_with(&format!("browse/{}", ranked_first(&report))),
        "{heading}"
    );
}

fn ranked_first(report: &Value) -> String {
    report["trials"][0]["name"].as_str().unwrap().to_string()
}

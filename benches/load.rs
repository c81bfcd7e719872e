//! `lenet serve` under load, and `lenet predict` on many files, for the same picture: a digit
//! drawn on a 224x224 canvas, as a PNG.
//!
//!     cargo bench --bench load -- --run artifacts/lenet [--clients 16] [--requests 2000]
//!         [--lenet BIN]
//!
//! `--lenet` serves and predicts with another build of lenet (one built from an older commit,
//! say) instead of this one, so two builds can be compared on the same machine minutes apart:
//! a shared VM's speed drifts by half over a day.
//!
//! Starts the server on a free port over the run's artifacts folder, warms it, then has
//! `--clients` threads send `--requests` predictions in all, each waiting for its answer before
//! sending the next; prints requests per second, the latency percentiles and the server's peak
//! memory (VmHWM). Then times `lenet predict` on `--files` copies of the picture. Not a test:
//! it prints figures.

#[path = "../tests/common/photos.rs"]
mod photos;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

struct Settings {
    run: PathBuf,
    lenet: PathBuf,
    clients: usize,
    requests: usize,
    files: usize,
}

fn settings() -> Settings {
    let mut settings = Settings {
        run: PathBuf::from("artifacts/lenet"),
        lenet: PathBuf::from(env!("CARGO_BIN_EXE_lenet")),
        clients: 16,
        requests: 2000,
        files: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--run" => settings.run = value().into(),
            "--lenet" => settings.lenet = value().into(),
            "--clients" => settings.clients = value().parse().expect("--clients N"),
            "--requests" => settings.requests = value().parse().expect("--requests N"),
            "--files" => settings.files = value().parse().expect("--files N"),
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    settings
}

fn main() {
    let settings = settings();
    let run = settings.run.canonicalize().unwrap_or_else(|e| {
        panic!(
            "{}: {e} (pass --run with a finished run)",
            settings.run.display()
        )
    });
    let name = run.file_name().unwrap().to_string_lossy().into_owned();
    let artifacts = run.parent().unwrap();
    let png = Arc::new(photos::drawn_four());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} cores; a 224x224 drawn digit ({} bytes of PNG); the model of {}; {}",
        cores,
        png.len(),
        run.display(),
        settings.lenet.display()
    );
    serve(&settings, artifacts, &name, &png);
    predict_files(&settings, &run, &png);
}

fn serve(settings: &Settings, artifacts: &Path, name: &str, png: &Arc<Vec<u8>>) {
    let mut server = Command::new(&settings.lenet)
        .args(["serve", "--port", "0", "--artifacts"])
        .arg(artifacts)
        .stdout(Stdio::piped())
        .spawn()
        .expect("lenet serve starts");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the server prints its address")
        .trim_end_matches('/')
        .to_string();
    let url = format!("{base}/api/runs/{name}/predict");
    let agent = || -> ureq::Agent { ureq::Agent::config_builder().build().into() };
    let send = |agent: &ureq::Agent| -> f64 {
        let started = Instant::now();
        let mut response = agent
            .post(&url)
            .header("Content-Type", "image/png")
            .send(png.as_slice())
            .expect("the server answers");
        let body = response.body_mut().read_to_string().unwrap();
        assert!(body.contains("\"class\""), "{body}");
        started.elapsed().as_secs_f64() * 1e3
    };
    // Warm: the model loaded, the connections open.
    let warm = agent();
    for _ in 0..50 {
        send(&warm);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let latencies: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..settings.clients)
            .map(|_| {
                let next = next.clone();
                scope.spawn(move || {
                    let agent = agent();
                    let mut mine = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < settings.requests {
                        mine.push(send(&agent));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_memory_mb(server.id());
    let _ = server.kill();
    let _ = server.wait();
    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    println!(
        "lenet serve, {} clients, {} predictions: {:.0} requests/s, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server peak memory {}",
        settings.clients,
        sorted.len(),
        sorted.len() as f64 / seconds,
        at(0.5),
        at(0.99),
        at(1.0),
        peak.map_or("unknown".to_string(), |mb| format!("{mb:.0} MB"))
    );
}

fn predict_files(settings: &Settings, run: &Path, png: &[u8]) {
    let dir = std::env::temp_dir().join(format!("lenet-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..settings.files {
        std::fs::write(dir.join(format!("{i:05}.png")), png).unwrap();
    }
    let started = Instant::now();
    let output = Command::new(&settings.lenet)
        .args(["predict", "--run"])
        .arg(run)
        .arg(&dir)
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "{output:?}");
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "lenet predict on {} files: {:.2} s in all, {:.2} ms per image",
        settings.files,
        seconds,
        seconds * 1e3 / settings.files as f64
    );
}

/// The peak resident memory of process `pid`, in MB, from Linux's /proc.
fn peak_memory_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

//! `lenet sweep` on real MNIST, as a user runs it: a grid two trials at a time into run folders
//! that the report ranks as their summaries say; the same sweep again, which trains nothing; a
//! stop and a restart that resumes; hyperband ending the worst trials; every bad sweep file
//! refused in one line. (SLURM has its own file, tests/slurm.rs.)

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use common::{every_case, lenet, lenet_process, real_mnist_dir, summary_of, sweep_report_json};
use serde_json::Value;

/// A base config small enough for tests: a few thousand images, a validation split.
const BASE: &str = r#"{"epochs": 2, "batch_size": 64, "seed": 1, "checkpoint_every_seconds": 0,
    "optimizer": {"type": "adam", "learning_rate": 0.002},
    "data": {"validation_size": 500, "train_limit": 3000, "test_limit": 1000}}"#;

/// Writes a sweep file into `dir` and returns its path.
fn sweep_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    fs::write(&path, body).unwrap();
    path
}

/// `lenet sweep --config FILE --artifact-dir ARTIFACTS --data-dir MNIST` and `extra`.
fn sweep_command(file: &Path, artifacts: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = lenet_process();
    command
        .args(["sweep", "--config"])
        .arg(file)
        .arg("--artifact-dir")
        .arg(artifacts)
        .arg("--data-dir")
        .arg(real_mnist_dir())
        .args(extra);
    command
}

/// The 4-trial grid, run 2 at a time once per test binary: its artifacts folder and what the
/// sweep printed.
fn grid() -> &'static (PathBuf, String) {
    static GRID: OnceLock<(PathBuf, String)> = OnceLock::new();
    GRID.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let file = sweep_file(
            &dir,
            "grid",
            &format!(
                r#"{{"name": "grid", "base": {BASE},
                    "parameters": {{"batch_size": {{"values": [32, 64]}},
                                    "optimizer.learning_rate": {{"values": [0.001, 0.003]}}}}}}"#
            ),
        );
        let output = sweep_command(&file, &dir.join("artifacts"), &["--parallel", "2"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        (dir.join("artifacts"), stdout)
    })
}

#[test]
fn sweep_grid_runs_two_at_a_time_into_run_folders_ranked_by_their_summaries() {
    let (artifacts, stdout) = grid();
    let sweep = artifacts.join("grid");
    // Two trials started before the first one ended.
    let lines: Vec<&str> = stdout.lines().collect();
    let first_end = lines
        .iter()
        .position(|l| l.contains(" finished "))
        .expect(stdout);
    let started = lines[..first_end]
        .iter()
        .filter(|l| l.contains(" started "))
        .count();
    assert_eq!(started, 2, "{stdout}");

    let report = sweep_report_json(&sweep);
    assert_eq!(report["metric"], "valid_accuracy");
    assert_eq!(report["goal"], "maximize");
    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    let mut from_summaries = Vec::new();
    for trial in trials {
        assert_eq!(trial["state"], "finished");
        let run = PathBuf::from(trial["run"].as_str().unwrap());
        assert_eq!(run.parent().unwrap(), sweep);
        // An ordinary run folder: its summary, its config with the trial's values.
        let summary = summary_of(&run);
        let valid = summary.history.last().unwrap().valid_accuracy.unwrap();
        assert_eq!(trial["metric"].as_f64().unwrap(), valid);
        assert_eq!(
            trial["test_accuracy"].as_f64().unwrap(),
            summary.test_accuracy
        );
        let config: Value =
            serde_json::from_slice(&fs::read(run.join("config.json")).unwrap()).unwrap();
        let parameters = trial["parameters"].as_object().unwrap();
        assert_eq!(
            parameters.keys().collect::<Vec<_>>(),
            ["batch_size", "optimizer.learning_rate"]
        );
        assert_eq!(parameters["batch_size"], config["batch_size"]);
        assert_eq!(
            parameters["optimizer.learning_rate"],
            config["optimizer"]["learning_rate"]
        );
        from_summaries.push(valid);
    }
    let mut ranked = from_summaries.clone();
    ranked.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(from_summaries, ranked, "best first");

    // The printed report names the best trial, and eval works on it as on any run.
    let best = trials[0]["run"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("Best: trial {}", trials[0]["number"])),
        "{stdout}"
    );
    assert!(stdout.contains(best), "{stdout}");
    let accuracy = trials[0]["test_accuracy"].as_f64().unwrap();
    lenet()
        .args(["eval", "--run", best])
        .assert()
        .success()
        .stdout(predicates::str::contains(format!(
            "Accuracy: {:.2}%",
            accuracy * 100.0
        )));
    for trial in trials {
        let log = sweep
            .join("logs")
            .join(format!("{}.log", trial["name"].as_str().unwrap()));
        let text = fs::read_to_string(&log).unwrap();
        assert!(text.contains("epoch 2/2"), "{}: {text}", log.display());
    }
}

#[test]
fn sweep_run_again_trains_nothing() {
    let (artifacts, _) = grid();
    let sweep = artifacts.join("grid");
    let summaries = |sweep: &Path| -> Vec<SystemTime> {
        let mut times: Vec<(String, SystemTime)> = fs::read_dir(sweep)
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("summary.json").is_file())
            .map(|e| {
                let modified = fs::metadata(e.path().join("summary.json"))
                    .unwrap()
                    .modified()
                    .unwrap();
                (e.file_name().to_string_lossy().into_owned(), modified)
            })
            .collect();
        times.sort();
        times.into_iter().map(|(_, t)| t).collect()
    };
    let before = summaries(&sweep);
    assert_eq!(before.len(), 4);
    let output = sweep_command(
        &artifacts.parent().unwrap().join("grid.json"),
        artifacts,
        &["--parallel", "2"],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(stdout.matches("already finished").count(), 4, "{stdout}");
    assert!(!stdout.contains(" started "), "{stdout}");
    assert_eq!(summaries(&sweep), before, "no summary rewritten");
}

#[test]
fn sweep_stopped_resumes_its_trials_from_their_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let file = sweep_file(
        dir.path(),
        "stop",
        r#"{"name": "stop",
            "base": {"epochs": 3, "batch_size": 64, "checkpoint_every_seconds": 0,
                     "data": {"validation_size": 500, "train_limit": 8000, "test_limit": 500}},
            "parameters": {"seed": {"values": [1, 2]}}}"#,
    );
    let mut child = sweep_command(&file, &artifacts, &["--parallel", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sweep = artifacts.join("stop");
    let trials = ["1-seed=1", "2-seed=2"];
    // Once both trials have a checkpoint of their first epoch, Ctrl-C the sweep.
    let start = Instant::now();
    while !trials.iter().all(|t| {
        fs::read_to_string(sweep.join("logs").join(format!("{t}.log")))
            .is_ok_and(|log| log.contains("epoch 1/3"))
    }) {
        assert!(start.elapsed() < Duration::from_secs(120), "no epoch ended");
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    let report = sweep_report_json(&sweep);
    for trial in report["trials"].as_array().unwrap() {
        assert_eq!(trial["state"], "stopped", "{trial}");
        assert!(trial["epochs_done"].as_u64().unwrap() >= 1, "{trial}");
    }

    let output = sweep_command(&file, &artifacts, &["--parallel", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(stdout.matches(" resumed ").count(), 2, "{stdout}");
    for trial in trials {
        let summary = summary_of(&sweep.join(trial));
        assert!(summary.resumed, "{trial}");
        assert_eq!(summary.epochs, 3);
        let epochs: Vec<usize> = summary.history.iter().map(|e| e.epoch).collect();
        assert_eq!(epochs, [1, 2, 3], "{trial}: each epoch once");
        let log = fs::read_to_string(sweep.join("logs").join(format!("{trial}.log"))).unwrap();
        assert!(
            log.contains("Resuming it from its newest checkpoint"),
            "{log}"
        );
    }
}

#[test]
fn sweep_hyperband_ends_the_trials_behind_at_a_rung() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    // One at a time, in order: the good learning rate reaches epoch 1 first, and the one that
    // barely learns is judged against it there.
    let file = sweep_file(
        dir.path(),
        "hyperband",
        &format!(
            r#"{{"name": "hb", "base": {BASE},
                "metric": {{"name": "valid_loss"}},
                "parameters": {{"optimizer.learning_rate": {{"values": [0.002, 0.00001]}},
                               "epochs": {{"value": 3}}}},
                "early_terminate": {{"type": "hyperband", "min_iter": 1, "eta": 2}}}}"#
        ),
    );
    let output = sweep_command(&file, &artifacts, &["--parallel", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("judged at epochs 1, 2"), "{stdout}");
    let report = sweep_report_json(&artifacts.join("hb"));
    assert_eq!(report["goal"], "minimize");
    let trials = report["trials"].as_array().unwrap();
    let by_rate = |rate: f64| {
        trials
            .iter()
            .find(|t| t["parameters"]["optimizer.learning_rate"] == rate)
            .unwrap()
    };
    let (good, poor) = (by_rate(0.002), by_rate(0.00001));
    assert_eq!(good["state"], "finished");
    assert_eq!(good["epochs_done"], 3);
    assert_eq!(poor["state"], "terminated", "{poor}");
    assert_eq!(poor["epochs_done"], 1);
    assert_eq!(
        trials[0]["name"], good["name"],
        "the finished one ranks first"
    );
    // Terminated, yet tested and written as a finished run, the reason kept.
    let summary = summary_of(Path::new(poor["run"].as_str().unwrap()));
    assert_eq!(summary.stopped_early_at, Some(1));
    assert!(
        summary
            .stopped_by
            .as_deref()
            .is_some_and(|why| why.contains("hyperband: valid_loss")),
        "{summary:?}"
    );
    assert!(stdout.contains("terminated 2-"), "{stdout}");
    // The report says why, and lenet runs on the sweep's folder too.
    let text = lenet()
        .args(["sweep", "report", "--sweep"])
        .arg(artifacts.join("hb"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("1 finished, 1 terminated"), "{text}");
    assert!(text.contains("trial 2: hyperband"), "{text}");
}

#[test]
fn sweep_bad_files_and_flags_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    // A sweep called "taken" is there already, made from another file.
    let other = sweep_file(
        dir.path(),
        "taken",
        r#"{"base": {}, "parameters": {"seed": {"values": [1, 2]}}}"#,
    );
    lenet::sweep::folder::open(
        &lenet::sweep::SweepPlan::load(&other, Some(&artifacts), None).unwrap(),
    )
    .unwrap();
    let grid = |parameters: &str| {
        format!(r#"{{"base": {{"epochs": 1}}, "parameters": {{{parameters}}}}}"#)
    };
    let cases: Vec<(&str, String, &[&str], i32, &str)> = vec![
        ("not JSON", "{".into(), &[], 2, "EOF while parsing"),
        (
            "a W&B key lenet has no use for",
            r#"{"base": {}, "program": "x.py"}"#.into(),
            &[],
            2,
            "unknown field `program`",
        ),
        (
            "an unknown config key",
            grid(r#""optimizer.momentun": {"value": 0.9}"#),
            &[],
            2,
            "parameters.optimizer.momentun",
        ),
        (
            "an empty grid",
            grid(r#""seed": {"values": []}"#),
            &[],
            2,
            "values is empty",
        ),
        (
            "a value the key cannot take",
            grid(r#""batch_size": {"values": [16, -1]}"#),
            &[],
            2,
            "parameters.batch_size: -1",
        ),
        (
            "a range in a grid",
            grid(r#""seed": {"min": 1, "max": 9}"#),
            &[],
            2,
            "needs \"method\": \"random\"",
        ),
        (
            "a range the key cannot take",
            r#"{"base": {}, "method": "random", "trials": 2,
                "parameters": {"data.validation_size": {"min": -5.5, "max": 0.5}}}"#
                .into(),
            &[],
            2,
            "parameters.data.validation_size: -5.5",
        ),
        (
            "an unknown metric",
            r#"{"base": {}, "metric": {"name": "f1"}}"#.into(),
            &[],
            2,
            "metric.name: unknown variant `f1`",
        ),
        (
            "no base",
            r#"{"parameters": {}}"#.into(),
            &[],
            2,
            "base: missing",
        ),
        (
            "a trial it does not have",
            grid(r#""seed": {"values": [1, 2]}"#),
            &["--trial", "3"],
            2,
            "the sweep has trials 1 to 2",
        ),
        (
            "a folder holding another sweep",
            r#"{"name": "taken", "base": {"epochs": 2}}"#.into(),
            &[],
            2,
            "made with other settings",
        ),
        (
            "an sbatch option that is none",
            grid(""),
            &["--slurm", "--slurm-arg", "partition=x", "--dry-run"],
            2,
            "not an sbatch option",
        ),
        (
            "--parallel 0",
            grid(""),
            &["--parallel", "0"],
            2,
            "expected a whole number >= 1",
        ),
    ];
    every_case(
        cases,
        |case| case.0.to_string(),
        |(what, body, extra, code, expected)| {
            let file = sweep_file(dir.path(), "bad", &body);
            let output = sweep_command(&file, &artifacts, extra).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(code), "{what}: {stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
            assert!(stderr.contains(expected), "{what}: {stderr}");
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        },
    );
    // Nothing was written for any of them but the folder that was there.
    let entries: Vec<_> = fs::read_dir(&artifacts).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");

    // The report of what is no sweep, and the other way round a sweep file given as a config.
    let trial = artifacts.join("taken").join("1-seed=1");
    fs::create_dir_all(&trial).unwrap();
    let arg = |path: &Path| path.to_string_lossy().into_owned();
    let report = |path: String| vec!["sweep".to_string(), "report".into(), "--sweep".into(), path];
    let wrong: Vec<(Vec<String>, &str)> = vec![
        (report(arg(dir.path())), "not a sweep folder"),
        (report("/nonexistent/sweep".into()), "no such folder"),
        (report(arg(&trial)), "a trial of the sweep in"),
        (
            vec!["--config".into(), arg(&other)],
            "a sweep file, not a training config",
        ),
    ];
    for (args, expected) in wrong {
        let output = lenet().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn sweep_dry_run_prints_the_job_array_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("my artifacts");
    let file = sweep_file(
        dir.path(),
        "slurm",
        r#"{"name": "sl", "base": {"epochs": 1}, "threads_per_trial": 2,
            "method": "random", "trials": 3, "seed": 4,
            "parameters": {"optimizer.learning_rate": {"min": 0.0001, "max": 0.01, "distribution": "log_uniform"}}}"#,
    );
    let output = sweep_command(
        &file,
        &artifacts,
        &["--slurm", "--slurm-arg=--partition=short", "--dry-run"],
    )
    .output()
    .unwrap();
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{script}");
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    for line in [
        "#SBATCH --array=1-3\n",
        "#SBATCH --cpus-per-task=2\n",
        "#SBATCH --partition=short\n",
        "#SBATCH --job-name=lenet-sl\n",
        "export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-2}\"\n",
    ] {
        assert!(script.contains(line), "{line:?} in {script}");
    }
    let exec = script.lines().find(|l| l.starts_with("exec ")).unwrap();
    assert!(exec.ends_with("--trial \"$SLURM_ARRAY_TASK_ID\""), "{exec}");
    assert!(
        exec.contains("'"),
        "the folder with a space is quoted: {exec}"
    );
    assert!(
        exec.contains(&file.to_string_lossy().into_owned()),
        "{exec}"
    );
    assert!(!artifacts.exists(), "a dry run writes nothing");
}

#[test]
fn sweep_without_sbatch_a_submission_says_so_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let file = sweep_file(
        dir.path(),
        "nosbatch",
        r#"{"base": {"epochs": 1}, "parameters": {"seed": {"values": [1, 2]}}}"#,
    );
    let empty = tempfile::tempdir().unwrap();
    let output = sweep_command(&file, &artifacts, &["--slurm"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("sbatch not found"), "{stderr}");
    assert!(!artifacts.exists());
}

#[test]
fn sweep_served_with_its_trials_as_runs() {
    use common::server::{Server, http, read_json};
    let (artifacts, _) = grid();
    let server = Server::start(artifacts);
    let get = |path: &str| {
        let mut response = http().get(format!("{}{path}", server.url)).call().unwrap();
        (response.status().as_u16(), read_json(&mut response))
    };
    let (status, sweeps) = get("/api/sweeps");
    assert_eq!(status, 200);
    assert_eq!(sweeps.as_array().unwrap().len(), 1);
    assert_eq!(sweeps[0]["sweep"], "grid");
    let (status, sweep) = get("/api/sweeps/grid");
    assert_eq!(status, 200);
    let report = sweep_report_json(&artifacts.join("grid"));
    let trials = sweep["trials"].as_array().unwrap();
    for (served, reported) in trials.iter().zip(report["trials"].as_array().unwrap()) {
        assert_eq!(
            served["name"], reported["name"],
            "ranked as the report ranks"
        );
        assert_eq!(served["metric"], reported["metric"]);
        assert_eq!(
            served["history"].as_array().unwrap().len(),
            2,
            "with its epochs"
        );
    }
    // Each trial is a run, named SWEEP/TRIAL.
    let name = trials[0]["name"].as_str().unwrap();
    let (status, run) = get(&format!("/api/runs/grid%2F{name}"));
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["state"], "finished");
    assert_eq!(run["config"], "grid");
    let (status, evaluation) = get(&format!("/api/runs/grid%2F{name}/eval"));
    assert_eq!(status, 200, "{evaluation}");
    assert_eq!(
        evaluation["report"]["accuracy"], trials[0]["test_accuracy"],
        "the served evaluation is the trial's test figure"
    );
}

#[test]
fn sweep_random_draws_are_the_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let file = |seed: u64| {
        sweep_file(
            dir.path(),
            &format!("seed{seed}"),
            &format!(
                r#"{{"name": "drawn", "method": "random", "trials": 5, "seed": {seed},
                    "base": {{"epochs": 1, "data": {{"validation_size": 100, "train_limit": 300,
                                                    "test_limit": 100}}}},
                    "parameters": {{
                      "optimizer.learning_rate": {{"min": 0.0001, "max": 0.01, "distribution": "log_uniform"}},
                      "batch_size": {{"min": 16, "max": 64}},
                      "model.pooling": {{"values": ["max", "avg"]}}}}}}"#
            ),
        )
    };
    // One trial trained (the first) records the sweep's draws in sweep.json.
    let drawn = |seed: u64, into: &str| -> Value {
        let artifacts = dir.path().join(into);
        let output = sweep_command(&file(seed), &artifacts, &["--trial", "1"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let record: Value =
            serde_json::from_slice(&fs::read(artifacts.join("drawn/sweep.json")).unwrap()).unwrap();
        record["trials"].clone()
    };
    let first = drawn(7, "a");
    assert_eq!(first.as_array().unwrap().len(), 5);
    assert_eq!(drawn(7, "b"), first, "the same seed draws the same trials");
    assert_ne!(drawn(8, "c"), first, "another seed draws others");
    for trial in first.as_array().unwrap() {
        let rate = trial["parameters"]["optimizer.learning_rate"]
            .as_f64()
            .unwrap();
        assert!((0.0001..=0.01).contains(&rate), "{trial}");
        let batch = trial["parameters"]["batch_size"].as_u64().unwrap();
        assert!((16..=64).contains(&batch), "{trial}");
    }
    // The trial trained with the values it was drawn with.
    let trained: Value = serde_json::from_slice(
        &fs::read(
            dir.path()
                .join("a/drawn")
                .join(first[0]["name"].as_str().unwrap())
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(trained["batch_size"], first[0]["parameters"]["batch_size"]);
    assert_eq!(
        trained["model"]["pooling"],
        first[0]["parameters"]["model.pooling"]
    );
}

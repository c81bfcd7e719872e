//! `lenet serve`'s API through a real HTTP client, against the binary serving runs trained in
//! the test (smoke-sized, on real MNIST), including every kind of bad request; and `lenet runs`.

mod common;

use std::io::Cursor;
use std::path::Path;

use common::lenet;
use common::server::{Server, artifacts, http, read_json};
use lenet::data::idx::Part;
use lenet::data::split::ImageSplit;
use lenet::inference::predict::{Reading, predict_files};
use lenet::run::FinishedRun;
use serde_json::Value;

/// The status and JSON body of a response.
fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut response = response.expect("the server answers");
    (response.status().as_u16(), read_json(&mut response))
}

fn get(server: &Server, path: &str) -> (u16, Value) {
    answer(http().get(format!("{}{path}", server.url)).call())
}

fn post(server: &Server, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    answer(
        http()
            .post(format!("{}{path}", server.url))
            .header("Content-Type", content_type)
            .send(body),
    )
}

fn test_set() -> ImageSplit {
    ImageSplit::read_idx(&common::real_mnist_dir(), Part::Test, 10).unwrap()
}

fn png(pixels: &[u8], side: u32) -> Vec<u8> {
    let image = image::GrayImage::from_raw(side, side, pixels.to_vec()).unwrap();
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes
}

fn multipart(field: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "lenet-test-boundary-1234";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"digit.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn runs_are_listed_with_their_state_and_history() {
    let server = Server::start(artifacts());
    let (status, runs) = get(&server, "/api/runs");
    assert_eq!(status, 200);
    let names: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["seed7", "smoke", "unfinished"]);
    let summary = common::summary_of(&artifacts().join("smoke"));
    let smoke = &runs[1];
    assert_eq!(smoke["state"], "finished");
    assert_eq!(smoke["config"], "smoke");
    assert_eq!(smoke["variant"], "modern");
    assert_eq!(smoke["epochs_done"], summary.epochs);
    assert_eq!(smoke["test_accuracy"], summary.test_accuracy);
    assert_eq!(runs[2]["state"], "stopped");
    assert_eq!(runs[2]["epochs_done"], 0);

    let (status, run) = get(&server, "/api/runs/smoke");
    assert_eq!(status, 200);
    let history = run["history"].as_array().unwrap();
    assert_eq!(history.len(), summary.epochs);
    assert_eq!(
        history[0]["valid_accuracy"].as_f64(),
        summary.history[0].valid_accuracy
    );
    assert_eq!(run["config_values"]["batch_size"], 64);
}

#[test]
fn predict_answers_as_lenet_predict_does_for_raw_and_multipart_uploads() {
    let server = Server::start(artifacts());
    let run = FinishedRun::load(&artifacts().join("smoke"), None).unwrap();
    let test = test_set();
    let dir = tempfile::tempdir().unwrap();
    for index in 0..8 {
        let bytes = png(test.image(index), 28);
        let file = dir.path().join(format!("{index}.png"));
        std::fs::write(&file, &bytes).unwrap();
        let classes = run.config.data.class_names();
        let reading = Reading {
            decoding: run.config.data.decoding(),
            classes: &classes,
        };
        let expected = predict_files(&run.model, &[file], &run.device, reading)
            .pop()
            .unwrap()
            .unwrap();
        let (content_type, form) = multipart("image", &bytes);
        for (status, answer) in [
            post(&server, "/api/runs/smoke/predict", "image/png", &bytes),
            post(&server, "/api/runs/smoke/predict", &content_type, &form),
        ] {
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["class"], expected.class);
            assert_eq!(answer["name"], expected.name);
            let probabilities: Vec<f32> = answer["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(probabilities, expected.probabilities);
            assert_eq!(answer["input"].as_array().unwrap().len(), 28 * 28);
        }
    }
}

#[test]
fn explain_and_filters_answer_as_lenet_explain_does() {
    let server = Server::start(artifacts());
    let run = artifacts().join("smoke");
    let dir = tempfile::tempdir().unwrap();
    let bytes = png(test_set().image(3), 28);
    let file = dir.path().join("3.png");
    std::fs::write(&file, &bytes).unwrap();
    let cli = |args: &[&str]| -> serde_json::Value {
        let output = common::lenet()
            .args(args)
            .args(["--json", "--run"])
            .arg(&run)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let expected = cli(&["explain", file.to_str().unwrap()])[0].clone();
    let (content_type, form) = multipart("image", &bytes);
    for (status, answer) in [
        post(&server, "/api/runs/smoke/explain", "image/png", &bytes),
        post(&server, "/api/runs/smoke/explain", &content_type, &form),
    ] {
        assert_eq!(status, 200, "{answer}");
        for key in [
            "class",
            "name",
            "probability",
            "probabilities",
            "input",
            "layers",
            "saliency",
        ] {
            assert_eq!(answer[key], expected[key], "{key}");
        }
        assert_eq!(answer["classes"].as_array().unwrap().len(), 10);
    }
    let (status, filters) = get(&server, "/api/runs/smoke/filters");
    assert_eq!(status, 200, "{filters}");
    assert_eq!(filters, cli(&["explain", "--filters"]));
    assert_eq!(
        filters["layers"][0]["shape"],
        serde_json::json!([6, 1, 5, 5])
    );
    let (status, answer) = post(&server, "/api/runs/smoke/explain", "text/plain", b"hello");
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = get(&server, "/api/runs/unfinished/filters");
    assert_eq!(status, 409, "{answer}");
}

#[test]
fn evaluation_and_its_images_are_lenet_evals() {
    let server = Server::start(artifacts());
    let (status, eval) = get(&server, "/api/runs/seed7/eval");
    assert_eq!(status, 200, "{eval}");
    let summary = common::summary_of(&artifacts().join("seed7"));
    assert_eq!(eval["report"]["correct"], summary.test_correct);
    assert!(artifacts().join("seed7/eval/predictions.csv").is_file());
    // The cell of 4s answered 9 (or any cell with images) lists exactly its images.
    let confusion = &eval["report"]["confusion"];
    let (label, predicted) = (0..10)
        .flat_map(|l| (0..10).map(move |p| (l, p)))
        .filter(|(l, p)| l != p)
        .max_by_key(|(l, p)| confusion[l][p].as_u64().unwrap())
        .unwrap();
    let count = confusion[label][predicted].as_u64().unwrap() as usize;
    let (status, images) = get(
        &server,
        &format!("/api/runs/seed7/eval/cell?label={label}&predicted={predicted}"),
    );
    assert_eq!(status, 200);
    let images = images.as_array().unwrap();
    assert_eq!(images.len(), count.min(120));
    let test = test_set();
    for image in images {
        let index = image["index"].as_u64().unwrap() as usize;
        assert_eq!(test.label(index), label as u16);
        assert_eq!(image["predicted"], predicted);
    }
    let mistake = eval["mistakes"][0]["index"].as_u64().unwrap() as usize;
    let mut response = http()
        .get(format!(
            "{}/api/runs/seed7/test-images/{mistake}",
            server.url
        ))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.body_mut().read_to_vec().unwrap();
    let image = image::load_from_memory(&bytes).unwrap().to_luma8();
    assert_eq!(image.as_raw().as_slice(), test.image(mistake));
}

#[test]
fn a_run_that_finishes_after_the_server_started_is_served() {
    let root = tempfile::tempdir().unwrap();
    let late = root.path().join("late");
    std::fs::create_dir(&late).unwrap();
    let smoke = artifacts().join("smoke");
    std::fs::copy(smoke.join("config.json"), late.join("config.json")).unwrap();
    let server = Server::start(root.path());
    let digit = png(test_set().image(0), 28);
    let (status, answer) = post(&server, "/api/runs/late/predict", "image/png", &digit);
    assert_eq!(status, 409, "{answer}");
    for file in ["model.bpk", "summary.json"] {
        std::fs::copy(smoke.join(file), late.join(file)).unwrap();
    }
    let (status, answer) = post(&server, "/api/runs/late/predict", "image/png", &digit);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(get(&server, "/api/runs/late").1["state"], "finished");
}

#[test]
fn every_bad_request_gets_a_4xx_with_one_line_and_the_server_keeps_serving() {
    let mut server = Server::start(artifacts());
    let digit = png(test_set().image(0), 28);
    let blank = png(&[255; 28 * 28], 28);
    let (form_type, no_image_field) = multipart("picture", &digit);
    // One byte over: the server has read the whole body before it refuses it, so the client is
    // not cut off while still sending (as it can be, racily, with a body far over the limit).
    let huge = vec![0u8; lenet::serve::MAX_UPLOAD_BYTES + 1];
    type Request<'a> = (&'a str, &'a str, Option<(&'a str, &'a [u8])>, u16, &'a str);
    let cases: Vec<Request> = vec![
        (
            "unknown run",
            "/api/runs/nobody",
            None,
            404,
            "no run called",
        ),
        (
            "traversal",
            "/api/runs/..%2F..%2Fetc",
            None,
            400,
            "not a run name",
        ),
        ("dot dot", "/api/runs/%2E%2E", None, 400, "not a run name"),
        (
            "a trial of no sweep",
            "/api/runs/smoke%2Fsmoke",
            None,
            400,
            "not a run name",
        ),
        (
            "unknown sweep",
            "/api/sweeps/nobody",
            None,
            404,
            "no sweep called",
        ),
        (
            "hidden sweep name",
            "/api/sweeps/.lock",
            None,
            400,
            "not a sweep name",
        ),
        (
            "hidden name",
            "/api/runs/.lock",
            None,
            400,
            "not a run name",
        ),
        (
            "unfinished eval",
            "/api/runs/unfinished/eval",
            None,
            409,
            "did not finish",
        ),
        (
            "image out of range",
            "/api/runs/smoke/test-images/99999",
            None,
            404,
            "no test image",
        ),
        (
            "image not a number",
            "/api/runs/smoke/test-images/x",
            None,
            400,
            "index",
        ),
        (
            "cell without query",
            "/api/runs/smoke/eval/cell",
            None,
            400,
            "label",
        ),
        ("no such page", "/etc/passwd", None, 404, "no such page"),
        (
            "predict, unknown run",
            "/api/runs/nobody/predict",
            Some(("image/png", &digit)),
            404,
            "no run called",
        ),
        (
            "predict, unfinished",
            "/api/runs/unfinished/predict",
            Some(("image/png", &digit)),
            409,
            "did not finish",
        ),
        (
            "predict, text",
            "/api/runs/smoke/predict",
            Some(("text/plain", b"seven")),
            415,
            "Content-Type",
        ),
        (
            "predict, not an image",
            "/api/runs/smoke/predict",
            Some(("image/png", b"GIF? no, text")),
            415,
            "not a PNG, JPEG",
        ),
        (
            "predict, broken PNG",
            "/api/runs/smoke/predict",
            Some(("image/png", &digit[..100])),
            400,
            "cannot decode",
        ),
        (
            "predict, blank",
            "/api/runs/smoke/predict",
            Some(("image/png", &blank)),
            422,
            "nothing to read: the image is blank",
        ),
        (
            "predict, empty",
            "/api/runs/smoke/predict",
            Some(("image/png", b"")),
            400,
            "empty",
        ),
        (
            "predict, too large",
            "/api/runs/smoke/predict",
            Some(("image/png", &huge)),
            413,
            "larger than 16 MiB",
        ),
        (
            "predict, no image field",
            "/api/runs/smoke/predict",
            Some((&form_type, &no_image_field)),
            400,
            "no field named",
        ),
        (
            "predict, broken form",
            "/api/runs/smoke/predict",
            Some((&form_type, b"--nonsense")),
            400,
            "multipart",
        ),
    ];
    common::every_case(
        cases,
        |case| case.0.to_string(),
        |(what, path, body, expected_status, expected_text)| {
            let (status, json) = match body {
                None => get(&server, path),
                Some((content_type, bytes)) => post(&server, path, content_type, bytes),
            };
            let message = json["error"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: {json}"));
            println!("{what} -> {status}: {message}");
            assert_eq!(status, expected_status, "{what}: {message}");
            assert!(
                message.contains(expected_text),
                "{what}: `{message}` lacks `{expected_text}`"
            );
            assert!(!message.contains('\n'), "{what}: not one line: {message}");
            assert!(server.is_alive(), "{what}: the server died");
            assert_eq!(
                get(&server, "/api/runs").0,
                200,
                "{what}: no longer serving"
            );
        },
    );
}

#[test]
fn lenet_runs_prints_the_runs_as_a_table_and_as_json() {
    let output = lenet()
        .args(["runs", "--artifacts"])
        .arg(artifacts())
        .output()
        .unwrap();
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("run ") && lines[0].contains("test acc"));
    let summary = common::summary_of(&artifacts().join("smoke"));
    let accuracy = format!("{:.2}%", summary.test_accuracy * 100.0);
    assert!(
        lines[2].starts_with("smoke ") && lines[2].contains(&accuracy),
        "{table}"
    );
    // The last two columns: the state, and the trackers it was logged to (none).
    let last_two = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words[words.len() - 2..].join(" ")
    };
    assert_eq!(last_two(lines[2]), "finished -", "{table}");
    assert_eq!(last_two(lines[3]), "stopped -", "{table}");

    let runs = common::runs_json(artifacts());
    assert_eq!(runs.as_array().unwrap().len(), 3);
    assert_eq!(runs[1]["test_accuracy"], summary.test_accuracy);
    assert_eq!(runs[1]["logged_to"], serde_json::json!([]));
}

#[test]
fn serve_and_runs_refuse_what_they_cannot_use_in_one_line() {
    let missing = Path::new("/nonexistent/artifacts");
    for command in ["runs", "serve"] {
        let output = lenet()
            .args([command, "--artifacts"])
            .arg(missing)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("/nonexistent/artifacts: no such folder"),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    // A port another process holds is an error, not a silent other port.
    let server = Server::start(artifacts());
    let port = server.url.rsplit(':').next().unwrap();
    let output = lenet()
        .args(["serve", "--port", port, "--artifacts"])
        .arg(artifacts())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen on 127.0.0.1:"), "{stderr}");
}

/// Image folders of two classes with their own names, made of MNIST's 0s and 1s.
fn write_two_classes(dir: &Path) {
    let test = test_set();
    for (digit, name) in [(0u16, "nought"), (1, "one stroke")] {
        let folder = dir.join("train").join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let indices = (0..test.len()).filter(|&i| test.label(i) == digit).take(60);
        for (n, i) in indices.enumerate() {
            std::fs::write(folder.join(format!("{n}.png")), png(test.image(i), 28)).unwrap();
        }
    }
}

#[test]
fn a_folder_run_is_served_with_its_class_names() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    write_two_classes(&data);
    let config = root.path().join("named.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"epochs": 2, "batch_size": 16, "checkpoint_every_seconds": 0,
                "data": {{"dataset": "folder", "dir": {data:?}, "validation_size": 0.1,
                         "test_size": 0.25}}}}"#
        ),
    )
    .unwrap();
    let artifacts = root.path().join("artifacts");
    lenet()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--no-tui",
            "--artifact-dir",
        ])
        .arg(artifacts.join("named"))
        .assert()
        .success();
    let server = Server::start(&artifacts);

    let (status, eval) = get(&server, "/api/runs/named/eval");
    assert_eq!(status, 200, "{eval}");
    let names: Vec<&str> = eval["report"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nought", "one stroke"]);
    assert_eq!(
        eval["report"]["images"], 30,
        "a quarter of 120 images held out"
    );

    // The held-out test images are served from the folders, as the run split them.
    let (status, cell) = get(&server, "/api/runs/named/eval/cell?label=1&predicted=1");
    assert_eq!(status, 200, "{cell}");
    let index = cell[0]["index"].as_u64().unwrap();
    let image = http()
        .get(format!("{}/api/runs/named/test-images/{index}", server.url))
        .call()
        .unwrap();
    assert_eq!(image.headers()["content-type"], "image/png");

    let one = test_set();
    let pixels = (0..one.len())
        .rev()
        .find(|&i| one.label(i) == 1)
        .map(|i| one.image(i).to_vec())
        .unwrap();
    let (status, answer) = post(
        &server,
        "/api/runs/named/predict",
        "image/png",
        &png(&pixels, 28),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["name"], "one stroke", "{answer}");
    assert_eq!(
        answer["classes"],
        serde_json::json!(["nought", "one stroke"])
    );
    assert_eq!(answer["probabilities"].as_array().unwrap().len(), 2);
}

//! Hostile input, as an attacker would send it, on every path an image takes: `lenet predict`,
//! training on image folders, and `lenet serve`'s uploads and connections. Each is refused in
//! one line with the right exit code or status, within 1 GiB of address space (the binary runs
//! under that limit), without a panic; and the server answers correctly afterwards. The images
//! are made here: a GIF whose screen is 65535x65535 (35 bytes) and a greyscale PNG of
//! 30000x30000 (under 1 MB compressed).

#![cfg(unix)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::server::{Server, artifacts, http, read_json};
use common::{lenet_limited, real_mnist_dir};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use lenet::data::idx::Part;
use lenet::data::split::ImageSplit;

/// The address space every binary here runs in.
const ONE_GIB: u64 = 1 << 30;

/// A GIF of one 1x1 frame on a logical screen of 65535x65535: decoders that size their canvas by
/// the screen ask for 17 GB.
fn screen_gif() -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend(65535u16.to_le_bytes());
    gif.extend(65535u16.to_le_bytes());
    gif.extend([0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
    gif.extend([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
    gif.extend([0x02, 0x02, 0x44, 0x01, 0x00, 0x3b]);
    gif
}

/// A greyscale PNG of `side` x `side` white pixels, written row by row (it is never whole in
/// memory here, and compresses to under 1 MB for 30000).
fn white_png(side: u32) -> Vec<u8> {
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::best());
    let row = vec![255u8; side as usize + 1];
    for _ in 0..side {
        // Filter type 0 (none), then the row.
        zlib.write_all(&[0]).unwrap();
        zlib.write_all(&row[1..]).unwrap();
    }
    let data = zlib.finish().unwrap();
    let mut header = Vec::new();
    header.extend(side.to_be_bytes());
    header.extend(side.to_be_bytes());
    header.extend([8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, body) in [(b"IHDR", header), (b"IDAT", data), (b"IEND", Vec::new())] {
        png.extend((body.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend(&body);
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

/// PNG's chunk checksum (CRC-32, as zlib computes it).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn digit_png(index: usize) -> Vec<u8> {
    let test = ImageSplit::read_idx(&real_mnist_dir(), Part::Test, 10).unwrap();
    let mut png = Vec::new();
    image::GrayImage::from_raw(28, 28, test.image(index).to_vec())
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

fn hostile_files(dir: &Path) -> [std::path::PathBuf; 2] {
    let gif = dir.join("screen.gif");
    fs::write(&gif, screen_gif()).unwrap();
    let png = dir.join("huge.png");
    fs::write(&png, white_png(30_000)).unwrap();
    [gif, png]
}

/// A real 16x16 JPEG whose header (its SOF0 segment) claims `side` x `side`: a file of a few
/// hundred bytes that a decoder trusting the header would decode at that size.
fn claiming_jpeg(side: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::GrayImage::from_fn(16, 16, |x, _| image::Luma([(x * 16) as u8]))
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("a baseline JPEG");
    // Marker, length (2), precision (1), then height and width.
    jpeg[sof + 5..sof + 7].copy_from_slice(&side.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&side.to_be_bytes());
    jpeg
}

/// A JPEG claiming 7000x7000 (49 megapixels, under the limit) with data for 16x16: decoded
/// small, as a large JPEG is (at 1/4, then 7x7 blocks: 250x250), and refused in one line,
/// within the address space.
#[test]
fn predict_reads_a_jpeg_claiming_a_large_size_in_bounded_memory() {
    let jpeg = claiming_jpeg(7000);
    let decoded = lenet::data::image::decode(&jpeg, Path::new("claims.jpg"), 50_000_000).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (250, 250));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("claims.jpg");
    fs::write(&file, jpeg).unwrap();
    let output = lenet_limited(ONE_GIB)
        .args(["predict", "--run"])
        .arg(artifacts().join("smoke"))
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // What the data does not hold reads as one grey: no ink.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("the image is blank"), "{stderr}");
}

#[test]
fn predict_refuses_images_too_large_to_decode_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = artifacts().join("smoke");
    for file in hostile_files(dir.path()) {
        let output = lenet_limited(ONE_GIB)
            .arg("predict")
            .arg("--run")
            .arg(&run)
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {stderr}",
            file.display()
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("more than the limit of 50.0 megapixels")
                && stderr.contains("--max-image-pixels"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Raising the limit does not let a decode past the memory one image may take.
    let output = lenet_limited(ONE_GIB)
        .args(["predict", "--max-image-pixels", "1000000000", "--run"])
        .arg(&run)
        .arg(dir.path().join("huge.png"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("decoding needs more than 512 MB"),
        "{stderr}"
    );
}

#[test]
fn training_on_folders_refuses_or_skips_a_hostile_image() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("shapes");
    for (class, digit) in [("one", 2), ("seven", 0)] {
        let folder = data.join("train").join(class);
        fs::create_dir_all(&folder).unwrap();
        for i in 0..6 {
            fs::write(folder.join(format!("{i}.png")), digit_png(digit + 10 * i)).unwrap();
        }
    }
    fs::write(data.join("train/one/huge.png"), white_png(30_000)).unwrap();
    let config = |unreadable: &str| {
        let path = root.path().join(format!("{unreadable}.json"));
        fs::write(
            &path,
            format!(
                r#"{{"epochs": 1, "batch_size": 4, "data": {{"dataset": "folder", "dir": {data:?},
                    "test_size": 2, "validation_size": 2, "unreadable_images": "{unreadable}"}}}}"#
            ),
        )
        .unwrap();
        path
    };
    let train = |unreadable: &str| {
        lenet_limited(ONE_GIB)
            .arg("--config")
            .arg(config(unreadable))
            .args(["--no-tui", "--artifact-dir"])
            .arg(root.path().join(unreadable))
            .output()
            .unwrap()
    };
    let refused = train("fail");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("huge.png: 30000x30000 pixels") && stderr.contains("\"skip\""),
        "{stderr}"
    );
    assert!(!root.path().join("fail").exists(), "nothing written");
    let skipped = train("skip");
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: skipped") && stderr.contains("huge.png: 30000x30000 pixels"),
        "{stderr}"
    );
}

fn post(server: &Server, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut response = http()
        .post(&format!("{}{path}", server.url))
        .header("Content-Type", "image/png")
        .send(body)
        .unwrap();
    (response.status().as_u16(), read_json(&mut response))
}

/// Each hostile upload to predict and to explain, to a server under 1 GiB of address space:
/// refused in one line with 413, and the server answers a digit right afterwards. With the
/// pixel limit raised past the 30000x30000 PNG, the decoder itself is reached and refuses it by
/// the memory it would take.
#[test]
fn the_server_refuses_hostile_uploads_and_answers_the_next_request() {
    let over = vec![0u8; 17 << 20];
    let digit = digit_png(0);
    let raised = ["--max-image-pixels", "1000000000"];
    for (limit, flags) in [("default limit", &[][..]), ("raised limit", &raised[..])] {
        let mut server = Server::start_with(artifacts(), flags, lenet_limited(ONE_GIB));
        let (status, answer) = post(&server, "/api/runs/smoke/predict", &digit);
        assert_eq!(status, 200, "{answer}");
        let expected = answer["class"].clone();
        let png_refusal = if flags.is_empty() {
            "30000x30000 pixels"
        } else {
            "more than 512 MB of memory"
        };
        let cases = [
            ("a 65535x65535 GIF", screen_gif(), "65535x65535 pixels"),
            ("a 30000x30000 PNG", white_png(30_000), png_refusal),
            ("17 MiB", over.clone(), "larger than 16 MiB"),
        ]
        .into_iter()
        .flat_map(|case| ["predict", "explain"].map(|route| (case.clone(), route)));
        common::every_case(
            cases,
            |((what, _, _), route)| format!("{limit}: {what} to {route}"),
            |((what, body, says), route)| {
                let (status, answer) = post(&server, &format!("/api/runs/smoke/{route}"), &body);
                assert_eq!(status, 413, "{answer}");
                let error = answer["error"].as_str().unwrap();
                assert!(error.contains(says) && !error.contains('\n'), "{error}");
                assert!(server.is_alive(), "the server died");
                let (status, answer) = post(&server, "/api/runs/smoke/predict", &digit);
                assert_eq!((status, &answer["class"]), (200, &expected), "after {what}");
            },
        );
    }
}

/// Connects, sends `bytes` and then nothing more; returns what the server answered before it
/// closed the connection, or fails if it still held it after `patience`.
fn answer_to_a_stalled_client(address: &str, bytes: &[u8], patience: Duration) -> String {
    let mut stalled = TcpStream::connect(address).unwrap();
    stalled.write_all(bytes).unwrap();
    stalled.set_read_timeout(Some(patience)).unwrap();
    let mut answer = Vec::new();
    let read = stalled.read_to_end(&mut answer);
    assert!(
        !matches!(&read, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the server still held the connection after {patience:?} ({bytes:?} sent): {read:?}"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

/// Clients that connect and send nothing, stop half-way through a request's head, or stop
/// sending a body are cut off (the head within 5 s, the body with a 408 after 30 s), and others
/// are served meanwhile.
#[test]
fn slow_and_idle_clients_are_cut_off_and_hold_nothing() {
    let server = Server::start(artifacts());
    let address = server.url.trim_start_matches("http://").to_string();
    let body_head = format!(
        "POST /api/runs/smoke/predict HTTP/1.1\r\nHost: {address}\r\nContent-Type: image/png\r\n\
         Content-Length: 1000\r\n\r\n\x00PNG"
    );
    let stalls: Vec<_> = [
        (Vec::new(), Duration::from_secs(20)),
        (
            b"GET /api/runs HTTP/1.1\r\nHo".to_vec(),
            Duration::from_secs(20),
        ),
        (body_head.into_bytes(), Duration::from_secs(60)),
    ]
    .into_iter()
    .map(|(bytes, patience)| {
        let address = address.clone();
        std::thread::spawn(move || answer_to_a_stalled_client(&address, &bytes, patience))
    })
    .collect();
    let (status, _) = {
        let mut response = http()
            .get(&format!("{}/api/runs", server.url))
            .call()
            .unwrap();
        (response.status().as_u16(), read_json(&mut response))
    };
    assert_eq!(status, 200, "others are served meanwhile");
    let answers: Vec<String> = stalls.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(answers[0], "", "nothing asked, nothing answered");
    assert_eq!(answers[1], "", "half a head is not answered");
    assert!(
        answers[2].starts_with("HTTP/1.1 408") && answers[2].contains("longer than 30 s"),
        "{}",
        answers[2]
    );
}

#[test]
fn only_its_own_address_and_token_holders_are_answered() {
    let server = Server::start_with(
        artifacts(),
        &["--token", "s3cret", "--allow-host", "lab.example.org"],
        common::lenet_process(),
    );
    let get = |path: &str, headers: &[(&str, &str)]| -> u16 {
        let mut request = http().get(&format!("{}{path}", server.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.call().unwrap().status().as_u16()
    };
    let bearer = [("Authorization", "Bearer s3cret")];
    assert_eq!(get("/api/runs", &[]), 401);
    assert_eq!(get("/api/runs", &[("Authorization", "Bearer wrong")]), 401);
    assert_eq!(get("/api/runs", &bearer), 200);
    assert_eq!(get("/api/runs?token=s3cret", &[]), 200);
    assert_eq!(get("/", &[]), 200, "the page itself holds nothing");
    let port = server.url.rsplit(':').next().unwrap().to_string();
    for (host, status) in [
        (format!("localhost:{port}"), 200),
        (format!("lab.example.org:{port}"), 200),
        (format!("attacker.example.com:{port}"), 403),
    ] {
        assert_eq!(
            get("/api/runs", &[bearer[0], ("Host", host.as_str())]),
            status,
            "{host}"
        );
    }
}

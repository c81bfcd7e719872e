//! Downloading MNIST into the cache, against a local HTTP server that serves the real files.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use common::{gzip, real_mnist_dir};
use lenet::data::idx::Part;
use lenet::data::idx::{FILE_NAMES, missing_files};
use lenet::data::source::download_into;
use lenet::data::split::ImageSplit;

/// Serves `files` (URL path -> body) over HTTP on a free local port; unknown paths get 404.
/// Returns the base URL and the list of paths requested so far.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requested = Arc::new(Mutex::new(Vec::new()));
    let log = requested.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 2 {
                header.clear();
            }
            log.lock().unwrap().push(path.clone());
            let (status, body) = match files.get(&path) {
                Some(body) => ("200 OK", body.as_slice()),
                None => ("404 Not Found", &b"not here"[..]),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (base, requested)
}

fn real_files(prefix: &str) -> HashMap<String, Vec<u8>> {
    FILE_NAMES
        .iter()
        .map(|name| {
            let path = lenet::data::idx::find_file(&real_mnist_dir(), name).unwrap();
            let bytes = gzip(&lenet::data::idx::read_maybe_gzip(&path).unwrap());
            (format!("{prefix}/{name}.gz"), bytes)
        })
        .collect()
}

#[test]
fn downloads_verifies_and_falls_back_to_the_next_mirror() {
    let (base, requested) = serve(real_files("/good"));
    let cache = tempfile::tempdir().unwrap();
    let mirrors = [format!("{base}/broken/"), format!("{base}/good")];

    download_into(cache.path(), &mirrors).unwrap();

    assert!(missing_files(cache.path(), &FILE_NAMES).is_empty());
    let train = ImageSplit::read_idx(cache.path(), Part::Train, 10).unwrap();
    let test = ImageSplit::read_idx(cache.path(), Part::Test, 10).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    let names: Vec<_> = fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".part")), "{names:?}");
    assert_eq!(
        requested.lock().unwrap().len(),
        8,
        "each file: broken mirror, then good one"
    );

    // A complete cache is not downloaded again.
    download_into(cache.path(), &mirrors).unwrap();
    assert_eq!(requested.lock().unwrap().len(), 8);
}

#[test]
fn a_corrupt_download_is_rejected_and_not_kept() {
    let mut files = real_files("");
    let labels = "/t10k-labels-idx1-ubyte.gz".to_string();
    let path = lenet::data::idx::find_file(&real_mnist_dir(), "t10k-labels-idx1-ubyte").unwrap();
    let mut content = lenet::data::idx::read_maybe_gzip(&path).unwrap();
    content[100] = (content[100] + 1) % 10; // still a valid label file, but not MNIST's
    files.insert(labels, gzip(&content));
    let (base, _) = serve(files);
    let cache = tempfile::tempdir().unwrap();

    let err = download_into(cache.path(), &[base]).unwrap_err();

    assert!(
        err.contains("checksum mismatch for t10k-labels-idx1-ubyte"),
        "{err}"
    );
    assert_eq!(
        missing_files(cache.path(), &FILE_NAMES),
        vec!["t10k-labels-idx1-ubyte"]
    );
    let leftovers: Vec<_> = fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("t10k-labels"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

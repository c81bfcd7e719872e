//! Burn's dashboard in a real pseudo-terminal: every way out of it (q then s, q then k, Ctrl-C)
//! ends with the terminal given back, one line about what happened, and exit code 130; the
//! epochs done stay in the terminal after it closes.

#![cfg(unix)]

mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{lenet_process, write_synthetic_mnist};

/// A training run under a pseudo-terminal, and everything it has written to it so far.
struct Session {
    child: Child,
    keys: File,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    /// Starts a run of `epochs` epochs of a small synthetic data set in `root`, in a 120x40
    /// pseudo-terminal that is the run's controlling terminal (so Ctrl-C works as in a shell).
    fn start(root: &Path, epochs: usize) -> Self {
        let data = root.join("data");
        write_synthetic_mnist(&data, 2000, 100, true);
        let config = root.join("dashboard.json");
        fs::write(
            &config,
            format!(
                r#"{{"epochs": {epochs}, "batch_size": 8, "data": {{"validation_size": 100}}}}"#
            ),
        )
        .unwrap();
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two new descriptors into the integers given; the rest are
        // optional and passed as null or as a winsize that outlives the call.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(opened, 0, "openpty failed");
        // SAFETY: both descriptors were just opened by openpty and are owned by no one else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut command = lenet_process();
        command
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .arg("--artifact-dir")
            .arg(root.join("run"))
            .env("TERM", "xterm-256color")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        let master = File::from(master);
        let keys = master.try_clone().unwrap();
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut master = master;
            let mut buffer = [0u8; 4096];
            // Ends with an error (EIO) once the child and its terminal are gone.
            while let Ok(n) = master.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Session {
            child,
            keys,
            screen,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the run has finished its first epoch (its metrics are on disk) with the
    /// dashboard up.
    fn wait_for_first_epoch(&mut self, root: &Path) {
        let started = Instant::now();
        while !root.join("run/metrics.csv").exists() {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "{}",
                self.screen()
            );
            assert!(started.elapsed() < Duration::from_secs(120), "no epoch");
            sleep(Duration::from_millis(50));
        }
        assert!(
            self.screen().contains("\x1b[?1049h"),
            "the dashboard is up: {}",
            self.screen()
        );
    }

    fn press(&mut self, keys: &[u8]) {
        self.keys.write_all(keys).unwrap();
        self.keys.flush().unwrap();
        sleep(Duration::from_millis(400));
    }

    /// Waits for the run to end; returns its exit code and what it wrote after leaving the
    /// dashboard's screen, escape sequences removed.
    fn finish(mut self) -> (Option<i32>, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{}",
                self.screen()
            );
            sleep(Duration::from_millis(50));
        };
        sleep(Duration::from_millis(200));
        let screen = self.screen();
        let left = screen
            .rfind("\x1b[?1049l")
            .unwrap_or_else(|| panic!("the dashboard's screen was never left: {screen}"));
        assert!(
            left > screen.rfind("\x1b[?1049h").unwrap(),
            "left after entering"
        );
        (status.code(), plain(&screen[left..]))
    }
}

/// `text` as the terminal shows it, roughly: escape sequences removed, and a carriage return
/// starting its line over (progress bars redraw themselves that way).
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ parameters final-byte; other escapes are two characters.
                if chars.next_if_eq(&'[').is_some() {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            // The terminal writes each newline as "\r\n".
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.truncate(out.rfind('\n').map_or(0, |n| n + 1)),
            c => out.push(c),
        }
    }
    out
}

/// The lines of `text` that hold anything.
fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn q_then_s_stops_with_a_checkpoint_and_leaves_the_epochs_on_screen() {
    let root = tempfile::tempdir().unwrap();
    let mut session = Session::start(root.path(), 50);
    session.wait_for_first_epoch(root.path());
    session.press(b"q");
    session.press(b"s");
    let (code, after) = session.finish();
    assert_eq!(code, Some(130), "{after}");
    let lines = lines(&after);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("epoch  1/50  train loss")),
        "{after}"
    );
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{after}");
    assert!(
        errors[0].starts_with("error: training stopped by the dashboard (q, then s); checkpoint "),
        "{after}"
    );
    assert!(
        !after.contains("panicked") && !after.contains("PANIC"),
        "{after}"
    );
}

#[test]
fn q_then_k_kills_with_one_line_and_exit_code_130() {
    let root = tempfile::tempdir().unwrap();
    let mut session = Session::start(root.path(), 50);
    session.wait_for_first_epoch(root.path());
    session.press(b"q");
    session.press(b"k");
    let (code, after) = session.finish();
    assert_eq!(code, Some(130), "{after}");
    assert_eq!(
        lines(&after),
        [format!(
            "error: training killed from the dashboard (q, then k); to resume from its newest \
             checkpoint: lenet resume --run {}",
            root.path().join("run").display()
        )],
        "{after}"
    );
}

#[test]
fn ctrl_c_under_the_dashboard_stops_with_a_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let mut session = Session::start(root.path(), 50);
    session.wait_for_first_epoch(root.path());
    session.press(b"\x03");
    let (code, after) = session.finish();
    assert_eq!(code, Some(130), "{after}");
    assert!(
        after.contains("error: training stopped by Ctrl-C; checkpoint "),
        "{after}"
    );
    assert!(!after.contains("panicked"), "{after}");
}

#[test]
fn a_finished_run_leaves_its_epochs_and_summary_on_screen() {
    let root = tempfile::tempdir().unwrap();
    let session = Session::start(root.path(), 2);
    let (code, after) = session.finish();
    assert_eq!(code, Some(0), "{after}");
    let lines = lines(&after);
    assert!(
        lines.iter().any(|l| l.starts_with("epoch 1/2  train loss")),
        "{after}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("epoch 2/2  train loss")),
        "{after}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Test accuracy:")),
        "{after}"
    );
}

//! The git commit the binary is built from, for the trackers to record beside a run
//! (`mlflow.source.git.commit`): `LENET_GIT_COMMIT`, left unset outside a git checkout. Cargo
//! runs this again when the checkout's HEAD moves.

use std::path::Path;
use std::process::Command;

fn main() {
    // Only paths that exist: cargo would rerun the script, and rebuild the crate, on every
    // build for one that does not.
    let watched = [".git/HEAD", ".git/refs/heads", ".git/packed-refs"];
    for path in watched.iter().filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .filter(|commit| commit.len() == 40);
    if let Some(commit) = commit {
        println!("cargo:rustc-env=LENET_GIT_COMMIT={commit}");
    }
}

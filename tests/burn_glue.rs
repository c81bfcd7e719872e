//! The Burn behaviour `src/training/burn_glue.rs` leans on, read from the burn-train source this
//! build compiles: if a Burn upgrade changes the dashboard's stop or kill message, or the order
//! in which its renderer enters raw mode and installs its panic hook, this fails and names what
//! moved. (`tests/dashboard.rs` drives the same paths through a real pseudo-terminal.)

use std::fs;
use std::path::{Path, PathBuf};

use lenet::training::burn_glue::{DASHBOARD_KILL, DASHBOARD_STOP};

/// The source folder of the burn-train package this build uses: the version Cargo.lock pins,
/// unpacked in cargo's registry (where every build of this crate has put it).
fn burn_train_source() -> PathBuf {
    let lock = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .expect("Cargo.lock");
    let version = lock
        .split("[[package]]")
        .find(|package| package.contains("name = \"burn-train\"\n"))
        .and_then(|package| package.lines().find_map(|l| l.strip_prefix("version = ")))
        .expect("Cargo.lock pins burn-train")
        .trim_matches('"')
        .to_string();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registry = cargo_home.join("registry/src");
    fs::read_dir(&registry)
        .unwrap_or_else(|e| panic!("{}: {e}", registry.display()))
        .flatten()
        .map(|index| index.path().join(format!("burn-train-{version}/src")))
        .find(|src| src.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "burn-train {version} is not unpacked in {}",
                registry.display()
            )
        })
}

/// The dashboard's renderer, where both messages and the panic hook live.
fn dashboard_source() -> String {
    let path = burn_train_source().join("renderer/tui/renderer.rs");
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: the dashboard moved", path.display()))
}

#[test]
fn the_dashboard_stops_with_the_reason_lenet_matches() {
    let source = dashboard_source();
    let stop = format!(".stop(Some({DASHBOARD_STOP:?}))");
    assert!(
        source.contains(&stop),
        "Burn's dashboard no longer stops with `{stop}`: a stop with q, then s would be reported \
         as a stop by {DASHBOARD_STOP:?}; update burn_glue::DASHBOARD_STOP"
    );
}

#[test]
fn the_dashboard_kills_with_the_panic_lenet_catches() {
    let source = dashboard_source();
    let kill = format!("panic!({DASHBOARD_KILL:?})");
    assert!(
        source.contains(&kill),
        "Burn's dashboard no longer kills with `{kill}`: q, then k would end in a panic report \
         and exit code 101; update burn_glue::DASHBOARD_KILL"
    );
}

#[test]
fn the_dashboard_installs_its_panic_hook_right_after_raw_mode() {
    // burn_glue waits for raw mode, then installs its hook over the dashboard's; that holds
    // only while the dashboard installs its own as it enters raw mode, in its constructor.
    let source = dashboard_source();
    let raw_mode = source
        .find("enable_raw_mode()")
        .expect("the dashboard enters raw mode");
    let rest = &source[raw_mode..];
    match (rest.find("set_hook("), rest.find("\n    }\n")) {
        (Some(hook), Some(end)) => assert!(
            hook < end,
            "the dashboard no longer installs its panic hook in the function that enters raw \
             mode; burn_glue's hook may now run second"
        ),
        _ => panic!(
            "the dashboard's constructor no longer enters raw mode and installs a panic hook; \
             revisit burn_glue's Ctrl-C and kill handling"
        ),
    }
}

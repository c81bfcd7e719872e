//! How the user runs this program, for the commands that messages and hints print back to them:
//! under `cargo run` that is `cargo run --release --`, installed it is `lenet`.

/// The command that runs this program, as the user would type it.
pub fn invocation() -> String {
    // `cargo run` sets CARGO in the environment of the program it runs.
    if std::env::var_os("CARGO").is_some() {
        "cargo run --release --".to_string()
    } else {
        "lenet".to_string()
    }
}

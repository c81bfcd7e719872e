//! Any text as a config file: read and checked, or refused in one line naming a key.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::check_config(data);
});

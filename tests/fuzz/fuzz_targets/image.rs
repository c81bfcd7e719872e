//! Any bytes as an uploaded image: decoded within the limits, prepared both ways, and (when
//! they decode) classified by a model. Nothing may panic, and what comes out must be an image
//! in the model's form and an answer.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::check_image(data);
});

//! The web app's files, compiled into the binary so that `lenet serve` needs nothing else: no
//! CDN, no font download (the pages use the system's own fonts), no files beside the binary.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const LAYERS_SCRIPT: &str = include_str!("assets/layers.js");
const STYLE: &str = include_str!("assets/style.css");

pub fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

pub fn script() -> impl IntoResponse {
    javascript(SCRIPT)
}

pub fn layers_script() -> impl IntoResponse {
    javascript(LAYERS_SCRIPT)
}

fn javascript(text: &'static str) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        text,
    )
}

pub fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

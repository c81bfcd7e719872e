//! `lenet explain`: what each layer of a run's model makes of images, as figures, JSON or a
//! summary; or its learned filters.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use lenet::data::image::Decoding;
use lenet::inference::explain::{Explanation, explain_files, filters};
use lenet::inference::predict::Reading;
use lenet::model::layers::LayerValues;
use lenet::report::explain::{ExplainedImage, explained_image};
use lenet::run::{FinishedRun, create_dir};

use super::error::Error;
use super::{ExplainArgs, png_names};

pub fn explain_command(args: &ExplainArgs) -> Result<ExitCode, Error> {
    let run = FinishedRun::load_model(&args.run, args.device, args.model.choice)?;
    if args.filters {
        show_filters(args, &run)?;
        return Ok(ExitCode::SUCCESS);
    }
    let classes = run.config.data.class_names();
    let reading = Reading {
        decoding: Decoding {
            max_pixels: args
                .max_image_pixels
                .unwrap_or(run.config.data.max_image_pixels),
            ..run.config.data.decoding()
        },
        classes: &classes,
    };
    let results = explain_files(&run.model, &args.images, &run.device, reading);
    if args.json {
        // As `lenet predict --json`: a file that could not be read has its error in its place.
        let entries: Vec<Entry> = results
            .iter()
            .map(|r| match r {
                Ok(explanation) => Entry::Explained(explanation),
                Err(e) => Entry::Failed {
                    file: e.input(),
                    error: e.to_string(),
                },
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).expect("json serialises")
        );
    }
    if let Some(dir) = &args.out {
        let explained: Vec<&Explanation> = results.iter().flatten().collect();
        write_figures(dir, &explained, &classes)?;
    }
    for result in &results {
        match result {
            Ok(explanation) if !args.json => print_explanation(explanation),
            Ok(_) => {}
            Err(error) => eprintln!("error: {error}"),
        }
    }
    Ok(if results.iter().any(Result::is_err) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `--filters`: the learned filters as JSON or a line per layer, and drawn with `--out`.
fn show_filters(args: &ExplainArgs, run: &FinishedRun) -> Result<(), Error> {
    let filters = filters(&run.model);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&filters).expect("json serialises")
        );
    } else {
        print_layers(&filters.layers, "");
    }
    if let Some(dir) = &args.out {
        create_dir(dir)?;
        let path = dir.join("filters.png");
        lenet::report::explain::filters(&path, &filters.layers)?;
        eprintln!("Wrote {}", path.display());
    }
    Ok(())
}

/// A figure per explained image in `dir`, named after its file.
fn write_figures(dir: &Path, explained: &[&Explanation], classes: &[String]) -> Result<(), Error> {
    create_dir(dir)?;
    let names = png_names(explained.iter().map(|e| e.file.as_path()));
    for (explanation, name) in explained.iter().zip(names) {
        let path = dir.join(name);
        let title = explanation.file.display().to_string();
        explained_image(
            &path,
            &ExplainedImage {
                title: &title,
                input: &explanation.input,
                saliency: &explanation.saliency,
                layers: &explanation.layers,
                probabilities: &explanation.probabilities,
                classes,
                answer: explanation.class as usize,
                output: explanation.output,
            },
        )?;
        eprintln!("Wrote {}", path.display());
    }
    Ok(())
}

/// The answer, its warnings and a line per layer.
fn print_explanation(explanation: &Explanation) {
    println!(
        "{}: {} ({:.1}%)",
        explanation.file.display(),
        explanation.name,
        explanation.probability * 100.0
    );
    for warning in &explanation.warnings {
        println!("  warning: {warning}");
    }
    print_layers(&explanation.layers, "  ");
}

/// One input of `--json`: what the model made of it, or why it could not be read. (Serialised
/// as it is rather than through `serde_json::Value`, which would print each f32 as an f64.)
#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Explained(&'a Explanation),
    Failed { file: String, error: String },
}

/// A line per layer: its name, shape and range of values.
fn print_layers(layers: &[LayerValues], indent: &str) {
    for layer in layers {
        let shape: Vec<String> = layer.shape.iter().map(usize::to_string).collect();
        let (low, high) = layer.range();
        println!(
            "{indent}{:<14} {:<10} values {low:>9.4} to {high:>9.4}",
            layer.name,
            shape.join("x")
        );
    }
}

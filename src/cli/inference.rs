//! The commands that use a finished run: `lenet eval`, `lenet predict`, `lenet export`, and
//! `lenet summary`, which describes a config's model.

use std::path::Path;
use std::process::ExitCode;

use image::ImageEncoder;

use lenet::config::TrainingConfig;
use lenet::data::image::Decoding;
use lenet::data::{DatasetKind, dataset, source};
use lenet::device::BackendKind;
use lenet::inference::eval::{EvalOptions, eval_run};
use lenet::inference::export::{to_onnx, to_safetensors};
use lenet::inference::import::import_weights;
use lenet::inference::predict::{Prediction, Reading, predict_files};
use lenet::report::layer_table;
use lenet::run::{FinishedRun, write_atomic};

use super::error::Error;
use super::{
    EvalArgs, ExportArgs, ExportFormat, ImportArgs, PredictArgs, SummaryArgs, next_steps, png_names,
};

pub fn eval_command(args: &EvalArgs) -> Result<ExitCode, Error> {
    let outcome = eval_run(
        &args.run,
        &EvalOptions {
            data_dir: args.data_dir.clone(),
            device: args.device,
            progress: true,
            model: args.model.choice,
        },
    )?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome.report).expect("report serialises")
        );
    } else {
        print!("{}", outcome.report.to_table());
        println!("\nBackend: {}", outcome.backend);
        println!("Written:");
        for file in &outcome.files {
            println!("  {}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn predict_command(args: &PredictArgs) -> Result<ExitCode, Error> {
    let run = FinishedRun::load_model(&args.run, args.device, args.model.choice)?;
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
    let results = predict_files(&run.model, &args.images, &run.device, reading);
    if let Some(dir) = &args.save_input {
        save_inputs(dir, results.iter().flatten())?;
    }
    if args.json {
        let entries: Vec<serde_json::Value> = results
            .iter()
            .map(|r| match r {
                Ok(p) => serde_json::to_value(p).expect("prediction serialises"),
                Err(e) => serde_json::json!({ "file": e.input(), "error": e.to_string() }),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).expect("json serialises")
        );
    } else {
        for result in &results {
            match result {
                Ok(p) => {
                    let top3: Vec<String> = p
                        .top3
                        .iter()
                        .map(|c| format!("{} {:.1}%", c.name, c.probability * 100.0))
                        .collect();
                    println!(
                        "{}: {} ({:.1}%)   top {}: {}",
                        p.file.display(),
                        p.name,
                        p.probability * 100.0,
                        top3.len(),
                        top3.join(", ")
                    );
                    for warning in &p.warnings {
                        println!("  warning: {warning}");
                    }
                }
                Err(e) => eprintln!("error: {e}"),
            }
        }
    }
    Ok(if results.iter().any(Result::is_err) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes each prediction's 28x28 input into `dir` as `<file name>.png`, numbering names that
/// two inputs share.
fn save_inputs<'a>(
    dir: &Path,
    predictions: impl Iterator<Item = &'a Prediction>,
) -> Result<(), Error> {
    lenet::run::create_dir(dir)?;
    let predictions: Vec<&Prediction> = predictions.collect();
    let names = png_names(predictions.iter().map(|p| p.file.as_path()));
    for (prediction, name) in predictions.into_iter().zip(names) {
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&prediction.input, 28, 28, image::ExtendedColorType::L8)
            .expect("a 28x28 image encodes");
        write_atomic(&dir.join(name), &png)?;
    }
    Ok(())
}

pub fn summary_command(args: &SummaryArgs) -> Result<ExitCode, Error> {
    let mut config = match &args.config {
        Some(path) => TrainingConfig::load(path)?,
        None => TrainingConfig::default(),
    };
    // The output layer has a unit per class, which other data sets than MNIST's find in their
    // data.
    let data = &config.data;
    if data.classes.is_none() && matches!(data.dataset, DatasetKind::Folder | DatasetKind::Idx) {
        let location = source::locate_dataset(data.dataset, data.dir.as_deref(), &[])?;
        let names =
            dataset::class_names(data.dataset, &location.dir, &data.read_options(config.seed))?;
        config.data.classes = Some(names);
    }
    let device = BackendKind::preferred().device()?;
    let model_config = config.model_config();
    let model = model_config.init(&device);
    print!("{}", layer_table(&model_config, &model.layers(&device)));
    Ok(ExitCode::SUCCESS)
}

pub fn export_command(args: &ExportArgs) -> Result<ExitCode, Error> {
    let run = FinishedRun::load_model(&args.run, None, args.model.choice)?;
    let (bytes, what) = match args.format {
        ExportFormat::Safetensors => (
            to_safetensors(&run.model, &run.config.model_config())?,
            "the weights and biases of c1, c3, c5 (Conv2d) and f6, f7 (Linear) in PyTorch's layout",
        ),
        ExportFormat::Onnx => {
            let classes = run.config.data.class_names();
            let what = if args.probabilities {
                "an ONNX graph (opset 17): input `pixels` [batch, 1, 28, 28] in 0..1, outputs \
                 `logits` and `probabilities`"
            } else {
                "an ONNX graph (opset 17): input `pixels` [batch, 1, 28, 28] in 0..1, output \
                 `logits`"
            };
            (to_onnx(&run.model, &classes, args.probabilities), what)
        }
    };
    write_atomic(&args.out, &bytes)?;
    println!("Wrote {}: {what}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

pub fn import_command(args: &ImportArgs) -> Result<ExitCode, Error> {
    let imported = import_weights(&args.weights, &args.config, &args.out)?;
    println!(
        "Made {} from {} ({} parameters): config.json and model.bpk",
        imported.run_dir.display(),
        args.weights.display(),
        imported.parameters
    );
    println!("{}", next_steps(&imported.run_dir));
    Ok(ExitCode::SUCCESS)
}

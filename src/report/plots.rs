//! PNG figures: loss and accuracy per epoch, the confusion matrix as a heatmap, and a grid of the
//! model's worst mistakes. Drawn with plotters into memory (text in an embedded DejaVu Sans, so
//! no system fonts are needed) and written atomically.

use std::path::Path;
use std::sync::Once;

use image::{ImageEncoder, codecs::png::PngEncoder};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use thiserror::Error;

use super::eval_report::short;
use super::eval_report::{EvalReport, Mistake};
use super::text::thousands;
use crate::data::classes::class_name;
use crate::input::IMAGE_SIDE;
use crate::run::history::EpochMetrics;
use crate::run::{self, RunError};

pub(super) const FONT: &str = "sans-serif";

#[derive(Debug, Error)]
pub enum PlotError {
    #[error("{}: cannot draw: {message}", path.display())]
    Draw {
        path: std::path::PathBuf,
        message: String,
    },
    #[error(transparent)]
    Write(#[from] RunError),
}

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            let bytes = match style {
                FontStyle::Bold => dejavu::sans::bold(),
                _ => dejavu::sans::regular(),
            };
            plotters::style::register_font(FONT, style, bytes)
                .unwrap_or_else(|_| panic!("embedded DejaVu Sans is a valid font"));
        }
    });
}

pub(super) type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
pub(super) type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws `size` pixels with `draw` and writes them to `path` as a PNG.
pub(super) fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<(), PlotError> {
    register_font();
    let draw_error = |message: String| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    };
    let mut pixels = vec![255u8; (size.0 * size.1 * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        area.fill(&WHITE).map_err(|e| draw_error(e.to_string()))?;
        draw(&area).map_err(|e| draw_error(e.to_string()))?;
        area.present().map_err(|e| draw_error(e.to_string()))?;
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&pixels, size.0, size.1, image::ExtendedColorType::Rgb8)
        .map_err(|e| draw_error(e.to_string()))?;
    run::write_atomic(path, &png)?;
    Ok(())
}

/// What a history chart shows, which decides its scale and where its legend goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scale {
    Loss,
    Accuracy,
}

/// One split's values over the epochs, as (epoch, value) points.
struct Line<'a> {
    points: &'a [(f64, f64)],
    color: RGBColor,
    name: &'static str,
}

/// A line per split over the epochs: `values` gives (train, valid) for an epoch.
fn line_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    history: &[EpochMetrics],
    values: impl Fn(&EpochMetrics) -> (Option<f64>, Option<f64>),
    scale: Scale,
) -> Result<(), PlotError> {
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for e in history {
        let (t, v) = values(e);
        train.extend(t.map(|t| (e.epoch as f64, t)));
        valid.extend(v.map(|v| (e.epoch as f64, v)));
    }
    let (low, high) = train
        .iter()
        .chain(&valid)
        .fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let (low, high) = if low > high { (0.1, 1.0) } else { (low, high) };
    let x_range = 1.0..(history.len() as f64).max(2.0);
    let lines = [
        Line {
            points: &train,
            color: BLUE,
            name: "train",
        },
        Line {
            points: &valid,
            color: RED,
            name: "valid",
        },
    ];
    // A loss that falls by a decade or more reads best on a log scale, which plotters labels
    // at powers of ten: only use it when the range holds one.
    let log = scale == Scale::Loss && low > 0.0 && high / low >= 10.0;
    let legend = match scale {
        Scale::Loss => SeriesLabelPosition::UpperRight,
        Scale::Accuracy => SeriesLabelPosition::LowerRight,
    };
    render(path, (800, 500), |area| {
        let mut builder = ChartBuilder::on(area);
        builder
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70);
        if log {
            let chart =
                builder.build_cartesian_2d(x_range, (low * 0.8..high * 1.25).log_scale())?;
            draw_lines(chart, y_label, history.len(), &lines, legend)
        } else {
            let margin = ((high - low) * 0.1).max(1e-3);
            let chart = builder.build_cartesian_2d(x_range, (low - margin)..(high + margin))?;
            draw_lines(chart, y_label, history.len(), &lines, legend)
        }
    })
}

fn draw_lines<'a, Y>(
    mut chart: ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    y_label: &str,
    epochs: usize,
    lines: &[Line],
    legend: SeriesLabelPosition,
) -> DrawResult
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .x_labels(epochs.clamp(2, 20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FONT, 14))
        .draw()?;
    for line in lines {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(line.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            line.points
                .iter()
                .map(|&p| Circle::new(p, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .position(legend)
        .draw()?;
    Ok(())
}

/// A run's history as it stands: `metrics.csv` and the plots of the epochs done so far, each
/// written atomically.
pub fn write_history(run_dir: &Path, history: &[EpochMetrics]) -> Result<(), PlotError> {
    run::write_atomic(
        &run_dir.join(run::METRICS_FILE),
        crate::run::history::to_csv(history).as_bytes(),
    )?;
    self::history(&run_dir.join(run::PLOTS_DIR), history)
}

/// `plots/loss.png` (log scale when the loss spans a decade) and `plots/accuracy.png` (percent), train and valid per epoch.
pub fn history(dir: &Path, history: &[EpochMetrics]) -> Result<(), PlotError> {
    run::create_dir(dir)?;
    line_chart(
        &dir.join("loss.png"),
        "Loss per epoch",
        "cross-entropy loss",
        history,
        |e| (e.train_loss, e.valid_loss),
        Scale::Loss,
    )?;
    line_chart(
        &dir.join("accuracy.png"),
        "Accuracy per epoch",
        "accuracy (%)",
        history,
        |e| {
            let percent = |v: Option<f64>| v.map(|v| v * 100.0);
            (percent(e.train_accuracy), percent(e.valid_accuracy))
        },
        Scale::Accuracy,
    )
}

/// The confusion matrix as a heatmap with the count in every cell.
pub fn confusion(path: &Path, report: &EvalReport) -> Result<(), PlotError> {
    let classes = report.confusion.len();
    // Ten classes get MNIST's roomy cells; many classes shrink them so the picture stays
    // readable on a screen, down to small squares without counts (or names) for hundreds.
    let cell = (560 / classes.max(1) as i32).clamp(4, 56);
    let names: Vec<String> = report.classes.iter().map(|c| short(&c.name, 12)).collect();
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(1) as i32;
    let left = 40 + 8 * longest;
    let top = 66 + 8 * longest;
    let side = cell * classes as i32;
    // Wide enough for the title whatever the number of classes.
    let size = ((left + side + 20).max(520) as u32, (top + side + 60) as u32);
    render(path, size, |area| {
        area.draw(&Text::new(
            format!(
                "Confusion matrix: {:.2}% of {} images",
                report.accuracy * 100.0,
                thousands(report.images)
            ),
            (left, 15),
            (FONT, 22).into_font().style(FontStyle::Bold),
        ))?;
        area.draw(&Text::new(
            "predicted class",
            (left + side / 2 - 60, 40),
            (FONT, 16),
        ))?;
        area.draw(&Text::new(
            "true class",
            (8, top + side / 2 + 40),
            (FONT, 16).into_font().transform(FontTransform::Rotate270),
        ))?;
        let size = if cell >= 40 { 16 } else { 12 };
        let named = if cell >= 12 { names.len() } else { 0 };
        for (class, name) in names.iter().enumerate().take(named) {
            let at = class as i32 * cell + cell / 2;
            let width = 8 * name.chars().count() as i32;
            // Column names read upwards, so that long names fit above narrow columns.
            area.draw(&Text::new(
                name.clone(),
                (left + at - size / 2, top - 8),
                (FONT, size).into_font().transform(FontTransform::Rotate270),
            ))?;
            area.draw(&Text::new(
                name.clone(),
                (left - 8 - width, top + at - size / 2),
                (FONT, size),
            ))?;
        }
        draw_cells(area, report, (left, top), cell)
    })
}

/// The confusion matrix's cells, `cell` pixels square, from `origin`: correct answers in green,
/// deeper for a higher recall; mistakes in red, scaled against the largest mistake, since the
/// diagonal dwarfs every other count.
fn draw_cells(area: &Area, report: &EvalReport, origin: (i32, i32), cell: i32) -> DrawResult {
    let (left, top) = origin;
    let largest_error = report
        .confusion
        .iter()
        .enumerate()
        .flat_map(|(t, row)| row.iter().enumerate().filter(move |(p, _)| *p != t))
        .map(|(_, &c)| c)
        .max()
        .unwrap_or(0)
        .max(1);
    for (t, row) in report.confusion.iter().enumerate() {
        for (p, &count) in row.iter().enumerate() {
            let (color, strength) = if t == p {
                (RGBColor(30, 140, 60), 0.3 + 0.7 * report.classes[t].recall)
            } else {
                (
                    RGBColor(200, 40, 40),
                    (count as f64 / largest_error as f64).sqrt(),
                )
            };
            let x = left + p as i32 * cell;
            let y = top + t as i32 * cell;
            area.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                color.mix(strength.min(1.0)).filled(),
            ))?;
            area.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                BLACK.mix(0.2),
            ))?;
            if count > 0 && cell >= 18 {
                let text = count.to_string();
                let dark = strength > 0.6;
                let style = (FONT, 15)
                    .into_font()
                    .color(if dark { &WHITE } else { &BLACK });
                area.draw(&Text::new(
                    text.clone(),
                    (x + cell / 2 - 4 * text.len() as i32, y + cell / 2 - 8),
                    style,
                ))?;
            }
        }
    }
    Ok(())
}

/// A grid of misclassified images, each captioned with its true and predicted class and the
/// model's confidence. `images` holds the 28x28 pixels of each mistake, in order; `names` the
/// class names.
pub fn mistakes(
    path: &Path,
    mistakes: &[Mistake],
    images: &[&[u8]],
    names: &[String],
) -> Result<(), PlotError> {
    let columns = 8;
    let scale = 4;
    let image_side = (IMAGE_SIDE * scale) as i32;
    let cell_w = image_side + 16;
    // Digits fit "3 as 5 (97%)" on one line; longer class names get a line each.
    let caption = |m: &Mistake| {
        let (label, predicted) = (class_name(names, m.label), class_name(names, m.predicted));
        let confidence = m.confidence * 100.0;
        if label.chars().count() + predicted.chars().count() <= 4 {
            vec![format!("{label} as {predicted} ({confidence:.0}%)")]
        } else {
            vec![
                format!("{} as", short(&label, 12)),
                format!("{} ({confidence:.0}%)", short(&predicted, 10)),
            ]
        }
    };
    let lines = mistakes.iter().map(|m| caption(m).len()).max().unwrap_or(1) as i32;
    let cell_h = image_side + 22 + 18 * lines;
    let rows = mistakes.len().div_ceil(columns).max(1) as i32;
    let top = 50;
    let size = (
        (columns as i32 * cell_w + 16) as u32,
        (top + rows * cell_h + 10) as u32,
    );
    render(path, size, |area| {
        let title = if mistakes.is_empty() {
            "No mistakes: the model answered every image right".to_string()
        } else {
            format!(
                "The {} mistakes the model was most sure of: true class as predicted (confidence)",
                mistakes.len()
            )
        };
        area.draw(&Text::new(
            title,
            (12, 12),
            (FONT, 22).into_font().style(FontStyle::Bold),
        ))?;
        for (n, (mistake, pixels)) in mistakes.iter().zip(images).enumerate() {
            let x0 = 12 + (n % columns) as i32 * cell_w;
            let y0 = top + (n / columns) as i32 * cell_h;
            for (line, text) in caption(mistake).into_iter().enumerate() {
                area.draw(&Text::new(text, (x0, y0 + 18 * line as i32), (FONT, 15)))?;
            }
            let y0 = y0 + 4 + 18 * lines;
            for (i, &v) in pixels.iter().enumerate() {
                let (r, c) = ((i / IMAGE_SIDE) as i32, (i % IMAGE_SIDE) as i32);
                let x = x0 + c * scale as i32;
                let y = y0 + r * scale as i32;
                // Black ink on white, as people write.
                let ink = 255 - v;
                area.draw(&Rectangle::new(
                    [(x, y), (x + scale as i32, y + scale as i32)],
                    RGBColor(ink, ink, ink).filled(),
                ))?;
            }
            area.draw(&Rectangle::new(
                [(x0 - 1, y0 - 1), (x0 + image_side + 1, y0 + image_side + 1)],
                BLACK.mix(0.3),
            ))?;
        }
        Ok(())
    })
}

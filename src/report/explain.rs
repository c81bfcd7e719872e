//! Figures of what the model sees, for `lenet explain`: one image through every layer (the
//! input with its saliency, each convolution's and subsampling's maps as a labelled grid, the
//! dense layers as bars, the probabilities), and the learned filters.
//!
//! Every layer has one colour scale of its own, its range of values named beside it: red for
//! positive values, blue for negative ones, white for zero, each as deep as the value is large
//! against the layer's largest magnitude.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::eval_report::short;
use super::plots::{Area, DrawResult, FONT, PlotError, render};
use crate::input::IMAGE_SIDE;
use crate::model::layers::LayerValues;

/// What the figure of one image shows.
pub struct ExplainedImage<'a> {
    /// The image's name, for the title.
    pub title: &'a str,
    /// The 28x28 pixels the model saw, in 0..1 (light ink on black).
    pub input: &'a [f32],
    /// The gradient of the answer's logit with respect to each input pixel.
    pub saliency: &'a [f32],
    /// Every layer's output, in order (see `inference::explain`).
    pub layers: &'a [LayerValues],
    pub probabilities: &'a [f32],
    pub classes: &'a [String],
    pub answer: usize,
    /// What the last layer holds: `logits`, or `distances` to the 1998 network's prototypes.
    pub output: &'a str,
}

const WIDTH: i32 = 1240;
const MARGIN: i32 = 16;

/// The figure of one image, written to `path` as a PNG.
pub fn explained_image(path: &Path, image: &ExplainedImage) -> Result<(), PlotError> {
    let rows: Vec<&LayerValues> = image.layers.iter().collect();
    let height = 64 + 230 + rows.iter().map(|l| row_height(l)).sum::<i32>();
    render(path, (WIDTH as u32, height as u32), |area| {
        let answer = image
            .classes
            .get(image.answer)
            .cloned()
            .unwrap_or_else(|| image.answer.to_string());
        area.draw(&Text::new(
            format!(
                "{}: {} ({:.1}%)",
                short(image.title, 60),
                answer,
                100.0
                    * image
                        .probabilities
                        .get(image.answer)
                        .copied()
                        .unwrap_or(0.0)
            ),
            (MARGIN, 14),
            (FONT, 24).into_font().style(FontStyle::Bold),
        ))?;
        let top = 56;
        let scale = 7;
        label(area, MARGIN, top, "input, as the model saw it")?;
        pixels(
            area,
            MARGIN,
            top + 22,
            image.input,
            IMAGE_SIDE,
            scale,
            |v| {
                let light = (255.0 * v.clamp(0.0, 1.0)) as u8;
                RGBColor(light, light, light)
            },
        )?;
        let x = MARGIN + (IMAGE_SIDE * scale) as i32 + 40;
        label(
            area,
            x,
            top,
            &format!("saliency: what moved {}", short(&answer, 12)),
        )?;
        saliency(area, x, top + 22, image.input, image.saliency, scale)?;
        let x = x + (IMAGE_SIDE * scale) as i32 + 48;
        probabilities(area, x, top, image)?;
        let mut y = top + 230;
        for layer in rows {
            // The output's bars are the classes: named under them while the names fit.
            let output = layer.name == "f7";
            let names = (output && layer.values.len() <= 30).then_some(image.classes);
            let meaning = match image.output {
                "distances" if output => {
                    Some("distances to each class's prototype: the nearest is the answer")
                }
                "logits" if output => Some("logits: the largest is the answer"),
                _ => None,
            };
            draw_layer(area, y, layer, names, meaning)?;
            y += row_height(layer);
        }
        Ok(())
    })
}

/// The learned filters, written to `path` as a PNG: C1's kernels, C3's (a column per C3 map, a
/// row per S2 map it reads), and for the 1998 network its connection table and RBF prototypes.
pub fn filters(path: &Path, filters: &[LayerValues]) -> Result<(), PlotError> {
    let height = 56 + filters.iter().map(filter_height).sum::<i32>();
    render(path, (WIDTH as u32, height as u32), |area| {
        area.draw(&Text::new(
            "Learned filters",
            (MARGIN, 14),
            (FONT, 24).into_font().style(FontStyle::Bold),
        ))?;
        let mut y = 56;
        for filter in filters {
            match filter.name.as_str() {
                "c1" | "c3" => kernels(area, y, filter)?,
                "c3_table" => connection_table(area, y, filter)?,
                "f7_prototypes" => prototypes(area, y, filter)?,
                _ => {}
            }
            y += filter_height(filter);
        }
        Ok(())
    })
}

/// Pixels per weight of a drawn kernel, and the room a 5x5 kernel takes with its gap.
const KERNEL_SCALE: usize = 9;
const KERNEL_STEP: i32 = (5 * KERNEL_SCALE + 6) as i32;

/// How tall a set of filters is drawn.
fn filter_height(filter: &LayerValues) -> i32 {
    match (filter.name.as_str(), &filter.shape[..]) {
        ("c1" | "c3", [_, inputs, ..]) => 24 + *inputs as i32 * KERNEL_STEP + 20,
        ("c3_table", _) => 24 + 6 * 22 + 24,
        ("f7_prototypes", _) => 24 + 12 * 6 + 40,
        _ => 0,
    }
}

/// A convolution's kernels `[maps, inputs, kh, kw]`: a column per map, a row per input map.
fn kernels(area: &Area, y: i32, filter: &LayerValues) -> DrawResult {
    let [maps, inputs, kh, kw] = filter.shape[..] else {
        return Ok(());
    };
    let (low, high) = filter.range();
    let many = inputs > 1;
    label(
        area,
        MARGIN,
        y,
        &format!(
            "{0}: {maps} kernels of {kh}x{kw} over {inputs} input map{1} (a column per {0} \
             map{2}), {3}",
            filter.name,
            if many { "s" } else { "" },
            if many { ", a row per input map" } else { "" },
            range_text(low, high)
        ),
    )?;
    for map in 0..maps {
        for input in 0..inputs {
            let start = (map * inputs + input) * kh * kw;
            pixels(
                area,
                MARGIN + map as i32 * KERNEL_STEP,
                y + 22 + input as i32 * KERNEL_STEP,
                &filter.values[start..start + kh * kw],
                kw,
                KERNEL_SCALE,
                |v| signed(v, low, high),
            )?;
        }
    }
    Ok(())
}

/// C3's connection table `[16, 6]`: a column per C3 map, a dark square where it reads an S2
/// map.
fn connection_table(area: &Area, y: i32, filter: &LayerValues) -> DrawResult {
    label(
        area,
        MARGIN,
        y,
        "c3's connection table (Table I): a column per C3 map, a row per S2 map it reads",
    )?;
    for (i, &v) in filter.values.iter().enumerate() {
        let (row, col) = ((i % 6) as i32, (i / 6) as i32);
        let (x, top) = (MARGIN + col * 22, y + 24 + row * 22);
        let fill = if v > 0.5 { RGBColor(60, 60, 60) } else { WHITE };
        let square = [(x, top), (x + 18, top + 18)];
        area.draw(&Rectangle::new(square, fill.filled()))?;
        area.draw(&Rectangle::new(square, BLACK.mix(0.3)))?;
    }
    Ok(())
}

/// The RBF prototypes `[10, 12, 7]`, black where the bitmap is +1.
fn prototypes(area: &Area, y: i32, filter: &LayerValues) -> DrawResult {
    label(
        area,
        MARGIN,
        y,
        "f7's RBF prototypes: the paper's 7x12 bitmaps, one per digit",
    )?;
    for (class, bitmap) in filter.values.chunks_exact(84).enumerate() {
        pixels(
            area,
            MARGIN + class as i32 * 60,
            y + 24,
            bitmap,
            7,
            6,
            |v| if v > 0.0 { BLACK } else { WHITE },
        )?;
    }
    Ok(())
}

/// How tall a layer's row is: a grid of maps, or a row of bars.
fn row_height(layer: &LayerValues) -> i32 {
    match layer.shape[..] {
        [_, h, w] if h * w > 1 => 30 + (h * map_scale(h)) as i32 + 16,
        _ => 30 + 90 + 30,
    }
}

/// Pixels per map cell: large maps are drawn small, small ones large.
fn map_scale(side: usize) -> usize {
    match side {
        s if s >= 28 => 4,
        s if s >= 14 => 5,
        s if s >= 10 => 6,
        _ => 10,
    }
}

fn draw_layer(
    area: &Area,
    y: i32,
    layer: &LayerValues,
    names: Option<&[String]>,
    meaning: Option<&str>,
) -> DrawResult {
    let (low, high) = layer.range();
    let shape = layer
        .shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("x");
    match layer.shape[..] {
        [maps, h, w] if h * w > 1 => {
            label(
                area,
                MARGIN,
                y,
                &format!(
                    "{}: {maps} maps of {h}x{w}, {}",
                    layer.name,
                    range_text(low, high)
                ),
            )?;
            let scale = map_scale(h);
            let step = (w * scale) as i32 + 6;
            // As many maps as fit in a row; LeNet's 6 and 16 always do.
            for map in 0..maps.min(((WIDTH - 2 * MARGIN) / step) as usize) {
                let values = &layer.values[map * h * w..(map + 1) * h * w];
                pixels(
                    area,
                    MARGIN + map as i32 * step,
                    y + 26,
                    values,
                    w,
                    scale,
                    |v| signed(v, low, high),
                )?;
            }
        }
        _ => {
            let what = meaning.map_or_else(|| format!("{shape} units"), str::to_string);
            label(
                area,
                MARGIN,
                y,
                &format!("{}: {what}, {}", layer.name, range_text(low, high)),
            )?;
            let width = bars(area, MARGIN, y + 26, &layer.values, low, high)?;
            for (i, name) in names.unwrap_or_default().iter().enumerate() {
                area.draw(&Text::new(
                    short(name, 3),
                    (MARGIN + i as i32 * width + 4, y + 26 + 92),
                    (FONT, 12),
                ))?;
            }
        }
    }
    Ok(())
}

/// The saliency as red over the input drawn as black ink on white: the deeper the red, the more
/// the pixel moves the answer, either way.
fn saliency(
    area: &Area,
    x: i32,
    y: i32,
    input: &[f32],
    gradient: &[f32],
    scale: usize,
) -> DrawResult {
    let largest = gradient
        .iter()
        .fold(0.0f32, |m, g| m.max(g.abs()))
        .max(1e-12);
    let values: Vec<(f32, f32)> = input
        .iter()
        .zip(gradient)
        .map(|(&v, &g)| (v, g.abs() / largest))
        .collect();
    for (i, &(v, s)) in values.iter().enumerate() {
        let (r, c) = ((i / IMAGE_SIDE) as i32, (i % IMAGE_SIDE) as i32);
        let paper = 255.0 * (1.0 - 0.6 * v.clamp(0.0, 1.0));
        let mix = |base: f32, red: f32| (base * (1.0 - s) + red * s) as u8;
        let colour = RGBColor(mix(paper, 200.0), mix(paper, 20.0), mix(paper, 30.0));
        let (x0, y0) = (x + c * scale as i32, y + r * scale as i32);
        area.draw(&Rectangle::new(
            [(x0, y0), (x0 + scale as i32, y0 + scale as i32)],
            colour.filled(),
        ))?;
    }
    frame(area, x, y, IMAGE_SIDE, IMAGE_SIDE, scale)
}

/// The ten most probable classes as bars, most probable first.
fn probabilities(area: &Area, x: i32, y: i32, image: &ExplainedImage) -> DrawResult {
    let mut ranked: Vec<usize> = (0..image.probabilities.len()).collect();
    ranked.sort_by(|&a, &b| image.probabilities[b].total_cmp(&image.probabilities[a]));
    ranked.truncate(10);
    label(
        area,
        x,
        y,
        if image.probabilities.len() > 10 {
            "the ten most probable classes"
        } else {
            "probability of each class"
        },
    )?;
    for (row, &class) in ranked.iter().enumerate() {
        let p = image.probabilities[class];
        let top = y + 24 + row as i32 * 19;
        let name = image
            .classes
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string());
        area.draw(&Text::new(short(&name, 14), (x, top), (FONT, 14)))?;
        let bar = (300.0 * p) as i32;
        let colour = if class == image.answer {
            RGBColor(194, 65, 12)
        } else {
            RGBColor(120, 120, 120)
        };
        area.draw(&Rectangle::new(
            [(x + 120, top + 2), (x + 120 + bar.max(1), top + 14)],
            colour.filled(),
        ))?;
        area.draw(&Text::new(
            format!("{:.1}%", 100.0 * p),
            (x + 130 + bar, top),
            (FONT, 13),
        ))?;
    }
    Ok(())
}

/// Values as bars from a zero line, one colour scale for the row; returns each bar's width.
fn bars(
    area: &Area,
    x: i32,
    y: i32,
    values: &[f32],
    low: f32,
    high: f32,
) -> Result<i32, Box<dyn std::error::Error>> {
    let height = 90.0;
    let span = (high.max(0.0) - low.min(0.0)).max(1e-12);
    let zero = y + (height * high.max(0.0) / span) as i32;
    let width = ((WIDTH - 2 * MARGIN) / values.len().max(1) as i32).clamp(1, 24);
    for (i, &v) in values.iter().enumerate() {
        let length = (height * v.abs() / span) as i32;
        let x0 = x + i as i32 * width;
        let (a, b) = if v >= 0.0 {
            (zero - length, zero)
        } else {
            (zero, zero + length)
        };
        area.draw(&Rectangle::new(
            [(x0, a), (x0 + (width - 1).max(1), b.max(a + 1))],
            signed(v, low, high).filled(),
        ))?;
    }
    area.draw(&PathElement::new(
        vec![(x, zero), (x + values.len() as i32 * width, zero)],
        BLACK.mix(0.4),
    ))?;
    Ok(width)
}

/// A grid of `values`, `columns` wide, each cell `scale` pixels, coloured by `colour`.
fn pixels(
    area: &Area,
    x: i32,
    y: i32,
    values: &[f32],
    columns: usize,
    scale: usize,
    colour: impl Fn(f32) -> RGBColor,
) -> DrawResult {
    let rows = values.len() / columns;
    for (i, &v) in values.iter().enumerate() {
        let (r, c) = ((i / columns) as i32, (i % columns) as i32);
        let (x0, y0) = (x + c * scale as i32, y + r * scale as i32);
        area.draw(&Rectangle::new(
            [(x0, y0), (x0 + scale as i32, y0 + scale as i32)],
            colour(v).filled(),
        ))?;
    }
    frame(area, x, y, rows, columns, scale)
}

fn frame(area: &Area, x: i32, y: i32, rows: usize, columns: usize, scale: usize) -> DrawResult {
    area.draw(&Rectangle::new(
        [
            (x - 1, y - 1),
            (x + (columns * scale) as i32, y + (rows * scale) as i32),
        ],
        BLACK.mix(0.3),
    ))?;
    Ok(())
}

fn label(area: &Area, x: i32, y: i32, text: &str) -> DrawResult {
    area.draw(&Text::new(text.to_string(), (x, y), (FONT, 15)))?;
    Ok(())
}

fn range_text(low: f32, high: f32) -> String {
    format!("values {low:.3} to {high:.3}")
}

/// Red for positive values, blue for negative ones, as deep as the value is large for the
/// layer (the larger of its two extremes).
fn signed(v: f32, low: f32, high: f32) -> RGBColor {
    let largest = low.abs().max(high.abs()).max(1e-12);
    let t = (v.abs() / largest).clamp(0.0, 1.0);
    let toward = |from: f32, to: f32| (from + (to - from) * t) as u8;
    if v >= 0.0 {
        RGBColor(
            toward(255.0, 178.0),
            toward(255.0, 24.0),
            toward(255.0, 43.0),
        )
    } else {
        RGBColor(
            toward(255.0, 33.0),
            toward(255.0, 102.0),
            toward(255.0, 172.0),
        )
    }
}

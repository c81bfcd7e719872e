//! `lenet explain`: what each layer of a run's model makes of an image, from the model's own
//! forward pass ([`LeNet5::forward_observed`]): C1's and C3's feature maps, the subsampled maps,
//! C5, F6 and the output, with a saliency map (the gradient of the answer's logit with respect
//! to each input pixel, through Burn's autodiff); and the learned filters themselves.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::Serialize;

use super::argmax;
use super::predict::{InputError, Reading, doubts, each_readable};
use crate::data::Class;
use crate::data::batcher::images_tensor;
use crate::data::classes::class_name;
use crate::data::image::Prepared;
use crate::input::{IMAGE_PIXELS, PIXEL_STD};
use crate::model::layers::LayerValues;
use crate::model::{LeNet5, Variant, lecun98};

/// What the model made of one image, layer by layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub file: PathBuf,
    /// The answer's label and name, and its probability.
    pub class: Class,
    pub name: String,
    pub probability: f32,
    /// The probability of every class, in class order.
    pub probabilities: Vec<f32>,
    /// Why the answer may be wrong, as `lenet predict` says it.
    pub warnings: Vec<String>,
    /// What the output layer `f7` holds: `logits`, or for the 1998 network's RBF units
    /// `distances` to each class's prototype (the answer is the nearest; its logit is minus the
    /// distance over 32).
    pub output: &'static str,
    /// The 28x28 image the model saw, each pixel in 0..1 (light ink on black), row-major.
    pub input: Vec<f32>,
    /// Every layer's output for this image, in the order data flows: c1, s2, c3, s4, c5, f6
    /// and f7 (the logits; for the 1998 network, the distances to the RBF prototypes).
    pub layers: Vec<LayerValues>,
    /// How much each input pixel (in 0..1) moves the answer's logit: the gradient, 28x28.
    pub saliency: Vec<f32>,
}

/// Explains each file of `inputs` (found as `lenet predict` finds them); what cannot be read is
/// an error in its place, and the rest are still explained.
pub fn explain_files(
    model: &LeNet5,
    inputs: &[PathBuf],
    device: &Device,
    reading: Reading,
) -> Vec<Result<Explanation, InputError>> {
    each_readable(inputs, reading.decoding, |images| {
        explain_prepared(model, images, device, reading.classes)
    })
}

/// Images explained in one forward and backward pass: enough to use the cores, few enough that
/// a folder of thousands costs no more memory than this many.
const CHUNK: usize = 64;

/// The model's layers for images already in its input form, each named by a file, the answers
/// called by `classes`.
pub fn explain_prepared(
    model: &LeNet5,
    images: &[(&Path, &Prepared)],
    device: &Device,
    classes: &[String],
) -> Vec<Explanation> {
    images
        .chunks(CHUNK)
        .flat_map(|chunk| explain_chunk(model, chunk, device, classes))
        .collect()
}

fn explain_chunk(
    model: &LeNet5,
    images: &[(&Path, &Prepared)],
    device: &Device,
    classes: &[String],
) -> Vec<Explanation> {
    let pixels: Vec<&[u8]> = images
        .iter()
        .map(|(_, image)| image.pixels.as_slice())
        .collect();
    let batch = pixels.len();
    let mut outputs: Vec<(&'static str, Vec<usize>, Vec<f32>)> = Vec::new();
    let logits = model.valid().forward_observed(
        images_tensor(pixels.iter().copied(), device),
        |name, output| outputs.push((name, output.dims()[1..].to_vec(), output.values())),
    );
    let classes_count = logits.dims()[1];
    let probabilities: Vec<f32> = softmax(logits, 1).into_data().iter::<f32>().collect();
    let probabilities: Vec<&[f32]> = probabilities.chunks_exact(classes_count).collect();
    let answers: Vec<Class> = probabilities.iter().map(|p| argmax(p)).collect();
    let saliency = saliency(model, &pixels, &answers, classes_count, device);
    (0..batch)
        .map(|i| {
            let layers = outputs
                .iter()
                .map(|(name, shape, values)| {
                    let size: usize = shape.iter().product();
                    LayerValues {
                        name: name.to_string(),
                        shape: shape.clone(),
                        values: values[i * size..(i + 1) * size].to_vec(),
                    }
                })
                .collect();
            Explanation {
                file: images[i].0.to_path_buf(),
                class: answers[i],
                name: class_name(classes, answers[i]),
                probability: probabilities[i][answers[i] as usize],
                probabilities: probabilities[i].to_vec(),
                warnings: doubts(probabilities[i], classes, images[i].1),
                output: if model.f7.is_some() {
                    "logits"
                } else {
                    "distances"
                },
                input: pixels[i].iter().map(|&p| p as f32 / 255.0).collect(),
                layers,
                saliency: saliency[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS].to_vec(),
            }
        })
        .collect()
}

/// The gradient of each image's answer logit with respect to its pixels (in 0..1), all images
/// in one backward pass: an image's logit depends on its own pixels alone, so the gradient of
/// their sum is each image's own.
fn saliency(
    model: &LeNet5,
    pixels: &[&[u8]],
    answers: &[Class],
    classes: usize,
    device: &Device,
) -> Vec<f32> {
    let autodiff = device.clone().autodiff();
    let model = model.clone().fork(&autodiff);
    let input = images_tensor(pixels.iter().copied(), &autodiff).require_grad();
    let logits = model.forward(input.clone());
    let mut chosen = vec![0.0f32; answers.len() * classes];
    for (i, &answer) in answers.iter().enumerate() {
        chosen[i * classes + answer as usize] = 1.0;
    }
    let chosen =
        Tensor::<2>::from_data(TensorData::new(chosen, [answers.len(), classes]), &autodiff);
    let gradients = (logits * chosen).sum().backward();
    let gradient = input
        .grad(&gradients)
        .expect("the input takes part in the answer's logit");
    // The model sees (pixel - mean) / std: a step of 1 in the 0..1 pixel is 1/std in its input.
    gradient
        .div_scalar(PIXEL_STD)
        .into_data()
        .iter::<f32>()
        .collect()
}

/// The learned filters: C1's kernels `[6, 1, 5, 5]` and C3's `[16, 6, 5, 5]` as the model
/// applies them (for the 1998 network, zero where Table I connects nothing), and for the 1998
/// network its C3 connection table `[16, 6]` (1 where a C3 map sees an S2 map) and its RBF
/// prototypes `[10, 12, 7]` (the paper's 7x12 bitmaps, +1 ink and -1 paper).
pub fn filters(model: &LeNet5) -> Filters {
    let weights = |name: &str, tensor: Tensor<4>| LayerValues {
        name: name.to_string(),
        shape: tensor.dims().to_vec(),
        values: tensor.into_data().iter::<f32>().collect(),
    };
    let paper = model.variant == Variant::Lecun98;
    let c3 = model.c3.weight.val();
    let c3 = if paper {
        let mask = lecun98::c3_mask(&c3.device());
        c3 * mask
    } else {
        c3
    };
    let mut layers = vec![weights("c1", model.c1.weight.val()), weights("c3", c3)];
    if paper {
        layers.push(LayerValues {
            name: "c3_table".to_string(),
            shape: vec![16, 6],
            values: lecun98::c3_mask_values()
                .iter()
                .step_by(25)
                .copied()
                .collect(),
        });
    }
    if model.f7.is_none() {
        layers.push(LayerValues {
            name: "f7_prototypes".to_string(),
            shape: vec![10, 12, 7],
            values: lecun98::prototypes().into_iter().flatten().collect(),
        });
    }
    Filters { layers }
}

/// A model's learned filters, as `lenet explain --filters --json` and the API give them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filters {
    pub layers: Vec<LayerValues>,
}

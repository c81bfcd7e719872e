//! LeNet's convolutions (stride 1, no dilation, no groups, with a bias) on the flex backend as
//! im2col + one batched matrix product, a Burn backend extension with its own backward pass.
//!
//! Why: for C3 (6 -> 16 maps, 14x14) Burn's flex convolution converts the input to NHWC and runs
//! a tiled im2col with one small matrix product per tile; forward and backward took 5.0 ms of an
//! 11.8 ms training step at batch 64, against 1.6 ms in PyTorch on the same machine
//! (`cargo bench --bench ops`, `benches/pytorch_ops.py`). Here the forward pass lays out every
//! image's receptive fields once (`[batch, in * kh * kw, out_h * out_w]`) and multiplies them by
//! the weights in one batched product, which is already NCHW; the backward pass reuses those
//! columns for the weight gradient and folds the column gradient back for the input's.
//!
//! The results equal Burn's convolution up to float rounding (the sums run in another order);
//! `tests` checks outputs and all three gradients against it. Other backends, dtypes and
//! settings use Burn's convolution.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;

/// `conv.forward(x)`, through the fast path where it applies.
pub fn conv2d(x: Tensor<4>, conv: &Conv2d) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    };
    let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    match (padding, &conv.bias) {
        (Some(padding), Some(bias)) if plain => {
            conv2d_stride1(x, conv.weight.val(), bias.val(), padding)
        }
        _ => conv.forward(x),
    }
}

/// Below this many output positions per map, as in C5 (1x1), each image's matrix product is
/// too small to pay for itself, and Burn's convolution was faster (C5's backward: 0.7 ms against
/// 11 ms).
const MIN_POSITIONS: usize = 16;

fn output_positions(x: &Tensor<4>, weight: &Tensor<4>, padding: [usize; 2]) -> usize {
    let [_, _, height, width] = x.dims();
    let [_, _, kh, kw] = weight.dims();
    let out = |size: usize, kernel: usize, pad: usize| (size + 2 * pad + 1).saturating_sub(kernel);
    out(height, kh, padding[0]) * out(width, kw, padding[1])
}

/// A stride-1 convolution with a bias and symmetric zero padding (`[rows, columns]`), through
/// the fast path on flex and Burn's convolution elsewhere.
pub fn conv2d_stride1(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    padding: [usize; 2],
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if flex::applies(&x) && output_positions(&x, &weight, padding) >= MIN_POSITIONS {
        return flex::conv2d_stride1(x, weight, bias, padding);
    }
    burn_conv2d(
        x,
        weight,
        Some(bias),
        ConvOptions::new([1, 1], padding, [1, 1], 1),
    )
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::{FlexTensor, Layout};
    use burn::backend::ops::FloatTensorOps;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, Flex, backend_extension};
    use burn::prelude::*;
    use burn::tensor::{Bytes, DType, Shape};
    use rayon::prelude::*;

    pub fn applies(x: &Tensor<4>) -> bool {
        let on_flex = matches!(
            x.device().without_autodiff().as_dispatch(),
            DispatchDevice::Flex(_)
        );
        on_flex && x.dtype() == DType::F32
    }

    pub fn conv2d_stride1(
        x: Tensor<4>,
        weight: Tensor<4>,
        bias: Tensor<1>,
        padding: [usize; 2],
    ) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as Conv2dStride1>::conv2d_stride1(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            padding,
        ))
    }

    #[backend_extension(Flex, Autodiff)]
    pub trait Conv2dStride1: Backend {
        /// A stride-1 convolution of NCHW `x` by `weight` `[out, in, kh, kw]` plus `bias`
        /// `[out]`, with `padding` zeros on both sides of the rows and the columns.
        fn conv2d_stride1(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self>;
    }

    impl Conv2dStride1 for Flex {
        fn conv2d_stride1(
            x: FlexTensor,
            weight: FlexTensor,
            bias: FlexTensor,
            padding: [usize; 2],
        ) -> FlexTensor {
            let geometry = Geometry::new(&x, &weight, padding);
            geometry.forward(&geometry.im2col(&x), &weight, &bias)
        }
    }

    impl<C: CheckpointStrategy> Conv2dStride1 for Autodiff<Flex, C> {
        fn conv2d_stride1(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            /// What backward needs: the forward pass's columns and weights, and the shapes.
            #[derive(Debug, Clone)]
            struct Saved {
                geometry: Geometry,
                columns: FlexTensor,
                weight: FlexTensor,
            }

            #[derive(Debug)]
            struct Conv2dStride1Backward;

            impl Backward<Flex, 3> for Conv2dStride1Backward {
                type State = Saved;

                fn backward(
                    self,
                    ops: Ops<Saved, 3>,
                    grads: &mut Gradients,
                    _checkpointer: &mut Checkpointer,
                ) {
                    let [node_x, node_weight, node_bias] = ops.parents;
                    let grad = grads.consume::<Flex>(&ops.node);
                    let Saved {
                        geometry,
                        columns,
                        weight,
                    } = ops.state;
                    let grad = geometry.as_rows(&grad);
                    if let Some(node) = node_x {
                        grads.register::<Flex>(node.id, geometry.input_grad(&grad, &weight));
                    }
                    if let Some(node) = node_weight {
                        grads.register::<Flex>(node.id, geometry.weight_grad(&grad, &columns));
                    }
                    if let Some(node) = node_bias {
                        grads.register::<Flex>(node.id, geometry.bias_grad(&grad));
                    }
                }
            }

            let prepared = Conv2dStride1Backward
                .prepare::<C>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful();
            let (x, weight, bias) = (
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            );
            let geometry = Geometry::new(&x, &weight, padding);
            let columns = geometry.im2col(&x);
            let output = geometry.forward(&columns, &weight, &bias);
            match prepared {
                OpsKind::Tracked(prep) => prep.finish(
                    Saved {
                        geometry,
                        columns,
                        weight,
                    },
                    output,
                ),
                OpsKind::UnTracked(prep) => prep.finish(output),
            }
        }
    }

    /// The sizes of one convolution.
    #[derive(Debug, Clone, Copy)]
    struct Geometry {
        batch: usize,
        channels: usize,
        height: usize,
        width: usize,
        out_channels: usize,
        kernel: [usize; 2],
        padding: [usize; 2],
        out_height: usize,
        out_width: usize,
    }

    impl Geometry {
        fn new(x: &FlexTensor, weight: &FlexTensor, padding: [usize; 2]) -> Self {
            let x = x.layout().shape();
            let w = weight.layout().shape();
            assert_eq!(
                x[1], w[1],
                "conv2d: input channels differ from the weight's"
            );
            let out = |size: usize, kernel: usize, pad: usize| {
                (size + 2 * pad + 1).saturating_sub(kernel)
            };
            Self {
                batch: x[0],
                channels: x[1],
                height: x[2],
                width: x[3],
                out_channels: w[0],
                kernel: [w[2], w[3]],
                padding,
                out_height: out(x[2], w[2], padding[0]),
                out_width: out(x[3], w[3], padding[1]),
            }
        }

        /// Rows of the column matrix: one per input channel and kernel position.
        fn patch(&self) -> usize {
            self.channels * self.kernel[0] * self.kernel[1]
        }

        fn positions(&self) -> usize {
            self.out_height * self.out_width
        }

        /// For kernel position `(ki, kj)`: the output rows whose input row is inside the image
        /// and the output columns likewise, as ranges, with the input offsets.
        fn valid(&self, ki: usize, kj: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
            let range = |out: usize, size: usize, pad: usize, k: usize| {
                let start = pad.saturating_sub(k).min(out);
                let end = (size + pad).saturating_sub(k).min(out).max(start);
                start..end
            };
            (
                range(self.out_height, self.height, self.padding[0], ki),
                range(self.out_width, self.width, self.padding[1], kj),
            )
        }

        /// Calls `each(row, ci, ki, kj)` for every row of one image's column matrix: input
        /// channel `ci` at kernel position `(ki, kj)`.
        fn rows(&self, mut each: impl FnMut(usize, usize, usize, usize)) {
            let [kh, kw] = self.kernel;
            for ci in 0..self.channels {
                for ki in 0..kh {
                    for kj in 0..kw {
                        each((ci * kh + ki) * kw + kj, ci, ki, kj);
                    }
                }
            }
        }

        /// `[batch, in * kh * kw, out_h * out_w]`: each output position's receptive field.
        ///
        /// (Measured against one `[patch, batch * positions]` matrix, which makes every product
        /// one large gemm instead of one per image: that was slower here, 7.5 s per epoch
        /// against 6.9 s, for the reordering it needs around the products.)
        fn im2col(&self, x: &FlexTensor) -> FlexTensor {
            let x = x.to_contiguous();
            let input: &[f32] = x.storage();
            let (image_len, columns_len) = (
                self.channels * self.height * self.width,
                self.patch() * self.positions(),
            );
            let mut columns = vec![0.0f32; self.batch * columns_len];
            let (ow, [ph, pw]) = (self.out_width, self.padding);
            if columns_len > 0 && image_len > 0 {
                columns
                    .par_chunks_mut(columns_len)
                    .zip(input.par_chunks(image_len))
                    .for_each(|(columns, image)| {
                        self.rows(|row, ci, ki, kj| {
                            let (rows, cols) = self.valid(ki, kj);
                            let dst = &mut columns[row * self.positions()..][..self.positions()];
                            for y in rows {
                                let source =
                                    &image[(ci * self.height + y + ki - ph) * self.width..];
                                dst[y * ow + cols.start..][..cols.len()]
                                    .copy_from_slice(&source[cols.start + kj - pw..][..cols.len()]);
                            }
                        })
                    });
            }
            tensor(columns, &[self.batch, self.patch(), self.positions()])
        }

        /// The output `[batch, out, out_h, out_w]`: weights `[out, patch]` x each image's
        /// columns, plus the bias.
        fn forward(
            &self,
            columns: &FlexTensor,
            weight: &FlexTensor,
            bias: &FlexTensor,
        ) -> FlexTensor {
            let weight = weight.reshape(Shape::new([1, self.out_channels, self.patch()]));
            let mut output = Flex::float_matmul(weight, columns.clone()).to_contiguous();
            let bias = bias.to_contiguous();
            let bias: &[f32] = bias.storage();
            let positions = self.positions().max(1);
            for (map, values) in output
                .storage_mut::<f32>()
                .chunks_mut(positions)
                .enumerate()
            {
                let b = bias[map % self.out_channels];
                values.iter_mut().for_each(|v| *v += b);
            }
            output.reshape(Shape::new([
                self.batch,
                self.out_channels,
                self.out_height,
                self.out_width,
            ]))
        }

        /// The output gradient as `[batch, out, positions]`.
        fn as_rows(&self, grad: &FlexTensor) -> FlexTensor {
            grad.to_contiguous().reshape(Shape::new([
                self.batch,
                self.out_channels,
                self.positions(),
            ]))
        }

        fn bias_grad(&self, grad: &FlexTensor) -> FlexTensor {
            let values: &[f32] = grad.storage();
            let mut sums = vec![0.0f32; self.out_channels];
            for (map, chunk) in values.chunks(self.positions().max(1)).enumerate() {
                sums[map % self.out_channels] += chunk.iter().sum::<f32>();
            }
            tensor(sums, &[self.out_channels])
        }

        /// The sum over images of grad `[out, positions]` x columns^T `[positions, patch]`.
        fn weight_grad(&self, grad: &FlexTensor, columns: &FlexTensor) -> FlexTensor {
            let per_image = Flex::float_matmul(grad.clone(), columns.transpose(1, 2));
            Flex::float_sum_dim(per_image, 0)
                .to_contiguous()
                .reshape(Shape::new([
                    self.out_channels,
                    self.channels,
                    self.kernel[0],
                    self.kernel[1],
                ]))
        }

        /// weight^T `[patch, out]` x grad `[out, positions]` per image, each column folded back
        /// onto the input positions it came from.
        fn input_grad(&self, grad: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
            let weight_t = weight
                .reshape(Shape::new([1, self.out_channels, self.patch()]))
                .transpose(1, 2);
            let column_grad = Flex::float_matmul(weight_t, grad.clone()).to_contiguous();
            let column_grad: &[f32] = column_grad.storage();
            let (image_len, columns_len) = (
                self.channels * self.height * self.width,
                self.patch() * self.positions(),
            );
            let mut input_grad = vec![0.0f32; self.batch * image_len];
            let (ow, [ph, pw]) = (self.out_width, self.padding);
            if image_len > 0 && columns_len > 0 {
                input_grad
                    .par_chunks_mut(image_len)
                    .zip(column_grad.par_chunks(columns_len))
                    .for_each(|(image, columns)| {
                        self.rows(|row, ci, ki, kj| {
                            let (rows, cols) = self.valid(ki, kj);
                            let source = &columns[row * self.positions()..][..self.positions()];
                            for y in rows {
                                let target = &mut image
                                    [(ci * self.height + y + ki - ph) * self.width..]
                                    [cols.start + kj - pw..][..cols.len()];
                                let source = &source[y * ow + cols.start..][..cols.len()];
                                for (t, s) in target.iter_mut().zip(source) {
                                    *t += s;
                                }
                            }
                        })
                    });
            }
            tensor(
                input_grad,
                &[self.batch, self.channels, self.height, self.width],
            )
        }
    }

    fn tensor(values: Vec<f32>, dims: &[usize]) -> FlexTensor {
        FlexTensor::new(
            Bytes::from_elems(values),
            Layout::contiguous(Shape::from(dims.to_vec())),
            DType::F32,
        )
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    use super::*;

    fn padding_of(conv: &Conv2d) -> [usize; 2] {
        match conv.padding {
            PaddingConfig2d::Explicit(top, left, ..) => [top, left],
            _ => [0, 0],
        }
    }

    /// Output and gradients (input, weight, bias) of a convolution, flattened; the loss is the
    /// sum of the outputs times `weights`, which makes each output's gradient distinct.
    fn run(conv: &Conv2d, input: &Tensor<4>, weights: &Tensor<4>, fast: bool) -> [Vec<f32>; 4] {
        let x = input.clone().require_grad();
        let y = if fast {
            conv2d(x.clone(), conv)
        } else {
            conv.forward(x.clone())
        };
        let grads = (y.clone() * weights.clone()).sum().backward();
        let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        [
            values(y),
            values(x.grad(&grads).expect("input gradient")),
            values(conv.weight.val().grad(&grads).expect("weight gradient")),
            conv.bias
                .as_ref()
                .unwrap()
                .val()
                .grad(&grads)
                .expect("bias gradient")
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        ]
    }

    #[test]
    fn matches_burns_convolution_and_its_gradients() {
        let device = Device::flex().autodiff();
        // C1 (padded), C3 and C5 of LeNet, and an odd shape with uneven padding per axis.
        let cases = [
            (
                [1, 6],
                [5, 5],
                PaddingConfig2d::Explicit(2, 2, 2, 2),
                [8, 1, 28, 28],
            ),
            ([6, 16], [5, 5], PaddingConfig2d::Valid, [8, 6, 14, 14]),
            ([16, 120], [5, 5], PaddingConfig2d::Valid, [8, 16, 5, 5]),
            (
                [3, 4],
                [3, 2],
                PaddingConfig2d::Explicit(1, 0, 1, 0),
                [2, 3, 7, 5],
            ),
        ];
        for (channels, kernel, padding, shape) in cases {
            let conv = Conv2dConfig::new(channels, kernel)
                .with_padding(padding.clone())
                .init(&device);
            let input = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            // All but C5 (1x1 outputs) must take the fast path, or this compares Burn to itself.
            let positions = output_positions(&input, &conv.weight.val(), padding_of(&conv));
            assert_eq!(
                flex::applies(&input) && positions >= MIN_POSITIONS,
                channels != [16, 120]
            );
            let output_shape = conv.forward(input.clone()).shape();
            let weights =
                Tensor::<4>::random(output_shape, Distribution::Normal(0.0, 1.0), &device);
            let fast = run(&conv, &input, &weights, true);
            let burn = run(&conv, &input, &weights, false);
            for (what, (fast, burn)) in ["output", "input grad", "weight grad", "bias grad"]
                .iter()
                .zip(fast.iter().zip(&burn))
            {
                assert_eq!(fast.len(), burn.len(), "{what} of {channels:?} {padding:?}");
                let scale = burn.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                for (f, b) in fast.iter().zip(burn) {
                    assert!(
                        (f - b).abs() <= 1e-5 * scale,
                        "{what} of {channels:?} {padding:?}: {f} vs {b}"
                    );
                }
            }
        }
    }
}

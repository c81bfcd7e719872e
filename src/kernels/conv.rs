//! LeNet's convolutions (stride 1, no dilation, no groups, with a bias) on the CPU backends as
//! im2col + matrix products, a Burn backend extension with its own backward pass.
//!
//! Why: for C3 (6 -> 16 maps, 14x14) Burn's flex convolution converts the input to NHWC and runs
//! a tiled im2col with one small matrix product per tile; forward and backward took 5.0 ms of an
//! 11.8 ms training step at batch 64, against 1.6 ms in PyTorch on the same machine
//! (`cargo bench --bench ops`, `benches/pytorch_ops.py`). Here each thread takes whole images,
//! lays out one image's receptive fields (`[in * kh * kw, out_h * out_w]`) in a buffer it reuses
//! and multiplies them by the weights with gemm, giving that image's NCHW output directly; the
//! backward pass lays the columns out again for the weight gradient and folds the column
//! gradient back for the input's. A kernel that covers its whole input (C5) is a dense layer,
//! computed as one product over the batch.
//!
//! The same kernel serves flex and ndarray (whose own convolution, direct loops, made a training
//! step 25 times flex's). The results equal Burn's convolution up to float rounding (the sums run
//! in another order); `tests` checks outputs and all three gradients against it on each CPU
//! backend compiled in. Other backends, dtypes and settings use Burn's convolution.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;

/// `conv.forward(x)`, through the fast path where it applies.
pub fn conv2d(x: Tensor<4>, conv: &Conv2d) -> Tensor<4> {
    match (stride1_padding(conv), &conv.bias) {
        (Some(padding), Some(bias)) => conv2d_stride1(x, conv.weight.val(), bias.val(), padding),
        _ => conv.forward(x),
    }
}

/// The padding (`[rows, columns]`, the same on both sides) of a stride-1 convolution without
/// dilation or groups, the kind the fast paths take; `None` for any other.
pub(super) fn stride1_padding(conv: &Conv2d) -> Option<[usize; 2]> {
    let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    match conv.padding {
        _ if !plain => None,
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    }
}

/// A stride-1 convolution with a bias and symmetric zero padding (`[rows, columns]`), through
/// the fast path on the CPU backends and Burn's convolution elsewhere.
pub fn conv2d_stride1(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    padding: [usize; 2],
) -> Tensor<4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if super::cpu::serves(&x) {
        return extension::conv2d_stride1(x, weight, bias, padding);
    }
    burn_conv2d(
        x,
        weight,
        Some(bias),
        ConvOptions::new([1, 1], padding, [1, 1], 1),
    )
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
#[allow(deprecated)] // ndarray stays available: docs/design.md#backends says why
pub(super) mod extension {
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, Dispatch, backend_extension};
    use burn::prelude::*;
    use rayon::prelude::*;

    use crate::kernels::cpu::CpuF32;
    use crate::kernels::gemm::{Matrix, multiply};
    use crate::kernels::im2col::Geometry;

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

    #[backend_extension(
        Flex: cfg(feature = "flex"),
        NdArray: cfg(feature = "ndarray"),
        Autodiff
    )]
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

    /// The forward pass on any CPU backend.
    fn forward<B: CpuF32>(
        x: &FloatTensor<B>,
        weight: &FloatTensor<B>,
        bias: &FloatTensor<B>,
        padding: [usize; 2],
    ) -> (Geometry, FloatTensor<B>) {
        let geometry = Geometry::new(&B::dims(x), &B::dims(weight), padding);
        let output = B::with_values(x, |x| {
            B::with_values(weight, |w| {
                B::with_values(bias, |b| geometry.forward(x, w, b))
            })
        });
        let dims = [
            geometry.batch,
            geometry.out_channels,
            geometry.out_height,
            geometry.out_width,
        ];
        (geometry, B::tensor(output, &dims))
    }

    #[cfg(feature = "flex")]
    impl Conv2dStride1 for burn::backend::Flex {
        fn conv2d_stride1(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            forward::<Self>(&x, &weight, &bias, padding).1
        }
    }

    #[cfg(feature = "ndarray")]
    impl Conv2dStride1 for burn::backend::NdArray {
        fn conv2d_stride1(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            forward::<Self>(&x, &weight, &bias, padding).1
        }
    }

    /// The fewest planes of `plane` values a rayon task takes in per-plane work: at least 16K
    /// values, below which waking another thread costs more than the work (C5's "planes" are
    /// single values).
    fn planes_per_task(plane: usize) -> usize {
        (16 * 1024usize).div_ceil(plane.max(1))
    }

    /// What backward needs: the input and the weights (the columns are laid out again, an
    /// image at a time, rather than kept), and the shapes.
    #[derive(Debug, Clone)]
    struct Saved<B: Backend> {
        geometry: Geometry,
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
    }

    #[derive(Debug)]
    struct Conv2dStride1Backward;

    impl<B: CpuF32> Backward<B, 3> for Conv2dStride1Backward {
        type State = Saved<B>;

        fn backward(
            self,
            ops: Ops<Saved<B>, 3>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let parents = ops.parents.map(|parent| parent.map(|node| node.id));
            let grad = grads.consume::<B>(&ops.node);
            let Saved {
                geometry,
                x,
                weight,
            } = ops.state;
            B::with_values(&grad, |grad| {
                register_gradients::<B>(&geometry, &x, &weight, grad, parents, grads)
            });
        }
    }

    /// Registers the gradients of the convolution's input, weights and bias (those whose node
    /// is given, in that order) for its output's gradient `grad`.
    fn register_gradients<B: CpuF32>(
        g: &Geometry,
        x: &FloatTensor<B>,
        weight: &FloatTensor<B>,
        grad: &[f32],
        [node_x, node_weight, node_bias]: [Option<NodeId>; 3],
        grads: &mut Gradients,
    ) {
        if let Some(node) = node_bias {
            grads.register::<B>(node, B::tensor(g.bias_grad(grad), &[g.out_channels]));
        }
        if node_x.is_none() && node_weight.is_none() {
            return;
        }
        let (input_grad, weight_grad) = B::with_values(x, |x| {
            B::with_values(weight, |w| g.backward(x, w, grad, node_x.is_some()))
        });
        if let (Some(node), Some(input_grad)) = (node_x, input_grad) {
            let dims = [g.batch, g.channels, g.height, g.width];
            grads.register::<B>(node, B::tensor(input_grad, &dims));
        }
        if let Some(node) = node_weight {
            let [kh, kw] = g.kernel;
            let dims = [g.out_channels, g.channels, kh, kw];
            grads.register::<B>(node, B::tensor(weight_grad, &dims));
        }
    }

    impl<B: CpuF32 + Conv2dStride1, C: CheckpointStrategy> Conv2dStride1 for Autodiff<B, C> {
        fn conv2d_stride1(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            let prepared = Conv2dStride1Backward
                .prepare::<C>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful();
            let (x, weight, bias) = (
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            );
            let (geometry, output) = forward::<B>(&x, &weight, &bias, padding);
            match prepared {
                OpsKind::Tracked(prep) => prep.finish(
                    Saved {
                        geometry,
                        x,
                        weight,
                    },
                    output,
                ),
                OpsKind::UnTracked(prep) => prep.finish(output),
            }
        }
    }

    /// One image's share of `Geometry::backward`: its input, its output gradient, its slot of
    /// the weight gradient, and its input gradient when one is wanted.
    type ImageWork<'a> = (
        ((&'a [f32], &'a [f32]), &'a mut [f32]),
        Option<&'a mut [f32]>,
    );

    impl Geometry {
        /// `[batch, out, out_h, out_w]`: per image, weights `[out, patch]` x its columns, plus
        /// the bias. Images are spread over threads; each thread reuses one column buffer,
        /// which stays in its cache.
        fn forward(&self, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
            let mut output = vec![0.0f32; self.batch * self.output_len()];
            if self.is_empty() {
                return output;
            }
            let weight = Matrix::rows(weight, self.out_channels, self.patch());
            if self.is_dense() {
                // images `[batch, patch]` x weights^T: one product for the whole batch.
                let images = Matrix::rows(x, self.batch, self.patch());
                multiply(&mut output, images, weight.transposed(), true);
                for row in output.chunks_mut(self.out_channels) {
                    row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
                }
                return output;
            }
            output
                .par_chunks_mut(self.output_len())
                .zip(x.par_chunks(self.image_len()))
                .for_each_init(
                    || vec![0.0f32; self.patch() * self.positions()],
                    |columns, (output, image)| {
                        self.im2col(image, columns);
                        let columns = Matrix::rows(columns, self.patch(), self.positions());
                        multiply(output, weight, columns, false);
                        for (map, b) in output.chunks_mut(self.positions()).zip(bias) {
                            map.iter_mut().for_each(|v| *v += b);
                        }
                    },
                );
            output
        }

        /// The bias's gradient from the output's: each plane summed in order (on all
        /// threads), then the planes' sums added map by map in image order.
        fn bias_grad(&self, grad: &[f32]) -> Vec<f32> {
            let plane = self.positions().max(1);
            let plane_sums: Vec<f32> = grad
                .par_chunks(plane)
                .with_min_len(planes_per_task(plane))
                .map(|plane| plane.iter().sum::<f32>())
                .collect();
            self.bias_grad_from(&plane_sums)
        }

        /// The weights' gradient from each image's (`[batch, out, patch]`), added in image
        /// order, so that the result does not depend on how the images were spread over threads.
        pub(crate) fn weight_grad_from(&self, per_image: &[f32]) -> Vec<f32> {
            let mut weight_grad = vec![0.0f32; self.weight_len()];
            for image in per_image.chunks(self.weight_len().max(1)) {
                for (total, g) in weight_grad.iter_mut().zip(image) {
                    *total += g;
                }
            }
            weight_grad
        }

        /// The bias's gradient from each output plane's sum (`[batch, out]`), added in image
        /// order, so that the result does not depend on how the planes were spread over threads.
        pub(crate) fn bias_grad_from(&self, plane_sums: &[f32]) -> Vec<f32> {
            let mut sums = vec![0.0f32; self.out_channels];
            for image in plane_sums.chunks(self.out_channels.max(1)) {
                for (sum, plane_sum) in sums.iter_mut().zip(image) {
                    *sum += plane_sum;
                }
            }
            sums
        }

        /// The input's gradient (when `want_input`) and the weights', from the output's `grad`
        /// `[batch, out, out_h, out_w]`. Per image: the weight gradient grad `[out, positions]`
        /// x columns^T (the columns laid out again rather than kept from forward), and the
        /// columns' gradient weight^T x grad folded back onto the input. Each image's weight
        /// gradient goes to its own slot and the slots are summed in image order, so the result
        /// does not depend on how the images were spread over threads.
        fn backward(
            &self,
            x: &[f32],
            weight: &[f32],
            grad: &[f32],
            want_input: bool,
        ) -> (Option<Vec<f32>>, Vec<f32>) {
            if self.is_dense() && !self.is_empty() {
                return self.dense_backward(x, weight, grad, want_input);
            }
            let mut per_image = vec![0.0f32; self.batch * self.weight_len()];
            let input_len = if want_input {
                self.batch * self.image_len()
            } else {
                0
            };
            let mut input_grad = vec![0.0f32; input_len];
            if !self.is_empty() {
                let weight_t = Matrix::rows(weight, self.out_channels, self.patch()).transposed();
                let input_grads = input_grad.par_chunks_mut(self.image_len()).map(Some);
                let no_input_grads = (0..self.batch).into_par_iter().map(|_| None);
                let work = |scratch: &mut (Vec<f32>, Vec<f32>), item: ImageWork| {
                    let (((image, grad), weight_grad), input_grad) = item;
                    let (columns, column_grad) = scratch;
                    self.im2col(image, columns);
                    let grad = Matrix::rows(grad, self.out_channels, self.positions());
                    let columns_t =
                        Matrix::rows(columns, self.patch(), self.positions()).transposed();
                    multiply(weight_grad, grad, columns_t, false);
                    if let Some(input_grad) = input_grad {
                        multiply(column_grad, weight_t, grad, false);
                        self.col2im(column_grad, input_grad);
                    }
                };
                let scratch = || {
                    let len = self.patch() * self.positions();
                    (vec![0.0f32; len], vec![0.0f32; len])
                };
                let images = x
                    .par_chunks(self.image_len())
                    .zip(grad.par_chunks(self.output_len()))
                    .zip(per_image.par_chunks_mut(self.weight_len()));
                if want_input {
                    images.zip(input_grads).for_each_init(scratch, work);
                } else {
                    images.zip(no_input_grads).for_each_init(scratch, work);
                }
            }
            (
                want_input.then_some(input_grad),
                self.weight_grad_from(&per_image),
            )
        }

        /// `backward` for a dense convolution (see `is_dense`): grad `[batch, out]`, so the
        /// weight gradient is grad^T x images and the input's is grad x weights.
        fn dense_backward(
            &self,
            x: &[f32],
            weight: &[f32],
            grad: &[f32],
            want_input: bool,
        ) -> (Option<Vec<f32>>, Vec<f32>) {
            let images = Matrix::rows(x, self.batch, self.patch());
            let weights = Matrix::rows(weight, self.out_channels, self.patch());
            let grad = Matrix::rows(grad, self.batch, self.out_channels);
            let mut weight_grad = vec![0.0f32; self.weight_len()];
            multiply(&mut weight_grad, grad.transposed(), images, true);
            let input_grad = want_input.then(|| {
                let mut input_grad = vec![0.0f32; self.batch * self.image_len()];
                multiply(&mut input_grad, grad, weights, true);
                input_grad
            });
            (input_grad, weight_grad)
        }
    }
}

#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    use super::*;

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
        for device in crate::kernels::cpu::devices() {
            matches_burns_convolution_on(device);
        }
    }

    fn matches_burns_convolution_on(device: Device) {
        // C1 (padded), C3 and C5 (a kernel covering the input: the dense case) of LeNet, and an
        // odd shape with uneven padding per axis.
        let cases = [
            (
                [1, 6],
                [5, 5],
                PaddingConfig2d::Explicit(2, 2, 2, 2),
                [8, 1, 28, 28],
            ),
            // 20 images: more than the two threads take in one go, so each takes several.
            ([6, 16], [5, 5], PaddingConfig2d::Valid, [20, 6, 14, 14]),
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
            assert!(
                crate::kernels::cpu::serves(&input),
                "the fast path must be the one tested"
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

//! LeNet's convolution blocks, a convolution followed by relu and a 2x2 max pool (C1 and S2, C3
//! and S4 of the modern network), as one Burn backend extension on the CPU backends:
//! [`super::direct`]'s kernels, forward and backward.
//!
//! Why: as three ops, the block wrote the convolution's output, relu's and the pool's, and
//! read them back in backward (pool, then relu), each a pass over memory with its allocation
//! and autodiff node; C1's output alone is 1.2 MB at batch 64; and the convolution's backward
//! multiplied a gradient that is zero at three outputs in four. The outputs are the three ops'
//! to the bit; the gradients equal theirs up to rounding (the tests compare both). Other
//! backends, CPUs without AVX2 and FMA, and other shapes run the three ops.

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::prelude::*;
use burn::tensor::activation::relu;

/// `pool.forward(relu(conv.forward(x)))`, in one pass where the fused kernel applies.
pub fn conv_relu_max_pool(x: Tensor<4>, conv: &Conv2d, pool: &MaxPool2d) -> Tensor<4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if let (Some(padding), Some(bias)) = (super::conv::stride1_padding(conv), &conv.bias) {
        let geometry = super::im2col::Geometry::new(&x.dims(), &conv.weight.dims(), padding);
        if super::pool::is_plain_2x2(pool)
            && super::cpu::serves(&x)
            && super::direct::available()
            && super::direct::serves(&geometry)
        {
            return extension::conv_relu_max_pool(x, conv.weight.val(), bias.val(), padding);
        }
    }
    super::pool::max_pool(relu(super::conv::conv2d(x, conv)), pool)
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
#[allow(deprecated)] // ndarray stays available: docs/design.md#backends says why
mod extension {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, Dispatch, backend_extension};
    use burn::prelude::*;

    use crate::kernels::cpu::CpuF32;
    use crate::kernels::direct;
    use crate::kernels::im2col::Geometry;

    pub fn conv_relu_max_pool(
        x: Tensor<4>,
        weight: Tensor<4>,
        bias: Tensor<1>,
        padding: [usize; 2],
    ) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as ConvReluMaxPool>::conv_relu_max_pool(
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
    pub trait ConvReluMaxPool: Backend {
        /// 2x2 max pool of relu(conv(x) + bias), the convolution as
        /// [`crate::kernels::conv::conv2d_stride1`]'s.
        fn conv_relu_max_pool(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self>;
    }

    /// The forward pass on any CPU backend: the geometry, the pooled output and the picks.
    fn forward<B: CpuF32>(
        x: &FloatTensor<B>,
        weight: &FloatTensor<B>,
        bias: &FloatTensor<B>,
        padding: [usize; 2],
    ) -> (Geometry, FloatTensor<B>, Vec<u8>) {
        let g = Geometry::new(&B::dims(x), &B::dims(weight), padding);
        let (pooled, picks) = B::with_values(x, |x| {
            B::with_values(weight, |w| {
                B::with_values(bias, |b| direct::forward(&g, x, w, b))
            })
        });
        let dims = [g.batch, g.out_channels, g.out_height / 2, g.out_width / 2];
        (g, B::tensor(pooled, &dims), picks)
    }

    #[cfg(feature = "flex")]
    impl ConvReluMaxPool for burn::backend::Flex {
        fn conv_relu_max_pool(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            forward::<Self>(&x, &weight, &bias, padding).1
        }
    }

    #[cfg(feature = "ndarray")]
    impl ConvReluMaxPool for burn::backend::NdArray {
        fn conv_relu_max_pool(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            forward::<Self>(&x, &weight, &bias, padding).1
        }
    }

    /// What backward needs: the convolution's input and weights, and the pool's picks.
    #[derive(Debug, Clone)]
    struct Saved<B: Backend> {
        geometry: Geometry,
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        picks: Vec<u8>,
    }

    #[derive(Debug)]
    struct ConvReluMaxPoolBackward;

    impl<B: CpuF32> Backward<B, 3> for ConvReluMaxPoolBackward {
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
                picks,
            } = ops.state;
            let [node_x, node_weight, node_bias] = parents;
            let gradients = B::with_values(&grad, |grad| {
                B::with_values(&x, |x| {
                    B::with_values(&weight, |w| {
                        direct::backward(&geometry, x, w, grad, &picks, node_x.is_some())
                    })
                })
            });
            if let Some(node) = node_bias {
                let bias_grad = geometry.bias_grad_from(&gradients.plane_sums);
                grads.register::<B>(node, B::tensor(bias_grad, &[geometry.out_channels]));
            }
            if let Some(node) = node_weight {
                let dims = B::dims(&weight);
                grads.register::<B>(node, B::tensor(gradients.weight, &dims));
            }
            if let (Some(node), Some(input_grad)) = (node_x, gradients.input) {
                grads.register::<B>(node, B::tensor(input_grad, &B::dims(&x)));
            }
        }
    }

    impl<B: CpuF32 + ConvReluMaxPool, C: CheckpointStrategy> ConvReluMaxPool for Autodiff<B, C> {
        fn conv_relu_max_pool(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            let prepared = ConvReluMaxPoolBackward
                .prepare::<C>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful();
            let (x, weight, bias) = (
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            );
            let (geometry, output, picks) = forward::<B>(&x, &weight, &bias, padding);
            match prepared {
                OpsKind::Tracked(prep) => prep.finish(
                    Saved {
                        geometry,
                        x,
                        weight,
                        picks,
                    },
                    output,
                ),
                OpsKind::UnTracked(prep) => prep.finish(output),
            }
        }
    }
}

#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Distribution;

    use super::*;

    /// The block's output and the gradients of its input (empty unless `input_grad`), weights
    /// and bias, flattened; the loss weighs each output differently so that every gradient is
    /// distinct.
    fn run(
        conv: &Conv2d,
        input: &Tensor<4>,
        weights: &Tensor<4>,
        fused: bool,
        input_grad: bool,
    ) -> [Vec<f32>; 4] {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let x = if input_grad {
            input.clone().require_grad()
        } else {
            input.clone()
        };
        let y = if fused {
            conv_relu_max_pool(x.clone(), conv, &pool)
        } else {
            crate::kernels::pool::max_pool(
                relu(crate::kernels::conv::conv2d(x.clone(), conv)),
                &pool,
            )
        };
        let grads = (y.clone() * weights.clone()).sum().backward();
        let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        let bias = conv.bias.as_ref().unwrap().val();
        [
            values(y),
            x.grad(&grads).map(values).unwrap_or_default(),
            values(conv.weight.val().grad(&grads).expect("weight gradient")),
            bias.grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        ]
    }

    const PARTS: [&str; 4] = ["output", "input grad", "weight grad", "bias grad"];

    /// Asserts that the fused block's values equal the three ops' up to rounding: within 1e-5
    /// of the largest value (or of 1).
    fn assert_close(fused: &[f32], three: &[f32], what: &str) {
        assert_eq!(fused.len(), three.len(), "{what}: lengths");
        let scale = three.iter().fold(1.0f32, |m, t| m.max(t.abs()));
        for (i, (f, t)) in fused.iter().zip(three).enumerate() {
            assert!(
                (f - t).abs() <= 1e-5 * scale,
                "{what} at {i}: {f} fused, {t} as three ops"
            );
        }
    }

    #[test]
    fn outputs_equal_the_three_ops_to_the_bit_and_gradients_up_to_rounding() {
        for device in crate::kernels::cpu::devices() {
            // C1 and C3 of LeNet (one and two registers of maps), then a block with an odd
            // number of windows a row in one register, nine maps with a small kernel and
            // padding on the rows only, every other kernel height up to the largest (7x7), and
            // C1 with zero weights and a positive bias, whose windows are all four-way ties.
            let cases = [
                ([1, 6], [5, 5], [2, 2], [5, 1, 28, 28], false),
                ([6, 16], [5, 5], [0, 0], [9, 6, 14, 14], false),
                ([2, 4], [3, 3], [1, 1], [3, 2, 10, 10], false),
                ([3, 9], [3, 2], [1, 0], [3, 3, 8, 7], false),
                ([3, 4], [1, 3], [0, 1], [2, 3, 6, 6], false),
                ([3, 4], [2, 5], [0, 1], [2, 3, 9, 8], false),
                ([2, 5], [4, 7], [1, 0], [2, 2, 11, 12], false),
                ([2, 3], [6, 3], [0, 0], [2, 2, 13, 10], false),
                ([2, 3], [7, 7], [1, 1], [2, 2, 12, 12], false),
                ([1, 6], [5, 5], [2, 2], [2, 1, 28, 28], true),
            ];
            for (channels, kernel, [ph, pw], shape, ties) in cases {
                let mut conv = Conv2dConfig::new(channels, kernel)
                    .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                    .init(&device);
                if ties {
                    let [input, out] = channels;
                    let [kh, kw] = kernel;
                    let zeros = Tensor::<4>::zeros([out, input, kh, kw], &device);
                    conv.weight = burn::module::Param::from_tensor(zeros);
                    let bias = Tensor::<1>::full([out], 0.5, &device);
                    conv.bias = Some(burn::module::Param::from_tensor(bias));
                }
                let input = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                // A NaN in the second image spreads over a patch of every map; whole windows
                // of zeros (all four below relu's threshold) are common by themselves.
                let with_nan = if shape[0] > 1 {
                    let nan = Tensor::<4>::full([1, 1, 1, 1], f32::NAN, &device);
                    input.clone().slice_assign([1..2, 0..1, 3..4, 4..5], nan)
                } else {
                    input.clone()
                };
                // Elsewhere than x86-64 both sides are the three ops, and this test says
                // nothing; every x86-64 CPU it runs on (CI's included) must take the kernel.
                #[cfg(target_arch = "x86_64")]
                {
                    let g = crate::kernels::im2col::Geometry::new(
                        &shape,
                        &conv.weight.dims(),
                        [ph, pw],
                    );
                    assert!(
                        crate::kernels::direct::available(),
                        "this CPU lacks AVX2 or FMA"
                    );
                    assert!(
                        crate::kernels::direct::serves(&g),
                        "{channels:?} {kernel:?} takes the kernel"
                    );
                }
                let [n, _, h, w] = shape;
                let pooled = [
                    n,
                    channels[1],
                    (h + 2 * ph + 1 - kernel[0]) / 2,
                    (w + 2 * pw + 1 - kernel[1]) / 2,
                ];
                let weights = Tensor::<4>::random(pooled, Distribution::Normal(0.0, 1.0), &device);
                let case = format!("{channels:?} {kernel:?}");
                // With a NaN: the outputs to the bit, NaN's spread included, and the input's
                // and bias's gradients, which see the input only through the picks (the dense
                // weight gradient multiplies NaN by the zero gradients the picks skip).
                let fused = run(&conv, &with_nan, &weights, true, true);
                let three = run(&conv, &with_nan, &weights, false, true);
                assert_eq!(fused[0].len(), three[0].len(), "outputs of {case}");
                for (i, (f, t)) in fused[0].iter().zip(&three[0]).enumerate() {
                    assert!(
                        f.to_bits() == t.to_bits() || (f.is_nan() && t.is_nan()),
                        "output of {case} at {i}: {f} fused, {t} as three ops"
                    );
                }
                for part in [1, 3] {
                    let what = format!("{} of {case} with a NaN", PARTS[part]);
                    assert_close(&fused[part], &three[part], &what);
                }
                // Without: every gradient, with the input's (as C3 in training) and without
                // (as C1, whose input is the batch).
                for input_grad in [true, false] {
                    let fused = run(&conv, &input, &weights, true, input_grad);
                    let three = run(&conv, &input, &weights, false, input_grad);
                    assert_eq!(fused[1].is_empty(), !input_grad, "input grad of {case}");
                    for (part, (fused, three)) in fused.iter().zip(&three).enumerate() {
                        let what = format!("{} of {case}", PARTS[part]);
                        assert_close(fused, three, &what);
                    }
                }
            }
        }
    }
}

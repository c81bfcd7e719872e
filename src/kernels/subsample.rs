//! The 1998 network's trainable subsampling (S2, S4) on the CPU backends: each map's 2x2 sums
//! times the map's coefficient plus its bias, in one pass, with its own backward pass.
//!
//! Why: through Burn's ops it is a reshape to six dimensions, two sums, a reshape and a
//! broadcast multiply-add, each a pass over memory with its own allocation, and their backward
//! passes as many again: several times the cost of the modern network's max pool in the same
//! place. Sums per map are taken image by image and added in image order, so the gradients do
//! not depend on how the work was spread over threads.

use burn::prelude::*;

/// `coefficient[m] * (x[2i, 2j] + x[2i, 2j+1] + x[2i+1, 2j] + x[2i+1, 2j+1]) + bias[m]` for each
/// map `m` of NCHW `x` (even height and width), through the fast path on the CPU backends.
pub fn subsample(x: Tensor<4>, coefficient: Tensor<1>, bias: Tensor<1>) -> Tensor<4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if super::cpu::serves(&x) {
        return extension::subsample(x, coefficient, bias);
    }
    by_burns_ops(x, coefficient, bias)
}

/// The same with Burn's tensor ops, on every other backend.
pub fn by_burns_ops(x: Tensor<4>, coefficient: Tensor<1>, bias: Tensor<1>) -> Tensor<4> {
    let [batch, maps, height, width] = x.dims();
    let sums = x
        .reshape([batch, maps, height / 2, 2, width / 2, 2])
        .sum_dim(5)
        .sum_dim(3)
        .reshape([batch, maps, height / 2, width / 2]);
    sums * coefficient.reshape([1, maps, 1, 1]) + bias.reshape([1, maps, 1, 1])
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
    use rayon::prelude::*;

    use crate::kernels::cpu::CpuF32;

    pub fn subsample(x: Tensor<4>, coefficient: Tensor<1>, bias: Tensor<1>) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as TrainableSubsampling>::trainable_subsampling(
            x.into_dispatch(),
            coefficient.into_dispatch(),
            bias.into_dispatch(),
        ))
    }

    #[backend_extension(
        Flex: cfg(feature = "flex"),
        NdArray: cfg(feature = "ndarray"),
        Autodiff
    )]
    pub trait TrainableSubsampling: Backend {
        /// Each map's 2x2 sums of NCHW `x` times `coefficient[map]` plus `bias[map]`.
        fn trainable_subsampling(
            x: FloatTensor<Self>,
            coefficient: FloatTensor<Self>,
            bias: FloatTensor<Self>,
        ) -> FloatTensor<Self>;
    }

    /// The sizes: batch, maps, input height and width.
    #[derive(Debug, Clone, Copy)]
    struct Sizes {
        batch: usize,
        maps: usize,
        height: usize,
        width: usize,
    }

    impl Sizes {
        fn of<B: CpuF32>(x: &FloatTensor<B>) -> Self {
            let [batch, maps, height, width]: [usize; 4] =
                B::dims(x).try_into().expect("an NCHW tensor");
            assert!(
                height % 2 == 0 && width % 2 == 0,
                "subsampling needs even sides"
            );
            Sizes {
                batch,
                maps,
                height,
                width,
            }
        }

        fn plane(&self) -> usize {
            self.height * self.width
        }

        fn out_plane(&self) -> usize {
            self.plane() / 4
        }

        /// Calls `each(out, [four inputs])` for every output of one map, with the positions of
        /// the inputs in the map's plane.
        fn windows(&self, mut each: impl FnMut(usize, [usize; 4])) {
            let (w, ow) = (self.width, self.width / 2);
            for i in 0..self.height / 2 {
                for j in 0..ow {
                    let top = 2 * i * w + 2 * j;
                    each(i * ow + j, [top, top + 1, top + w, top + w + 1]);
                }
            }
        }
    }

    fn forward<B: CpuF32>(
        x: &FloatTensor<B>,
        coefficient: &FloatTensor<B>,
        bias: &FloatTensor<B>,
    ) -> FloatTensor<B> {
        let s = Sizes::of::<B>(x);
        let mut output = vec![0.0f32; s.batch * s.maps * s.out_plane()];
        B::with_values(x, |x| {
            B::with_values(coefficient, |coefficient| {
                B::with_values(bias, |bias| {
                    output
                        .par_chunks_mut(s.out_plane().max(1))
                        .zip(x.par_chunks(s.plane().max(1)))
                        .enumerate()
                        .for_each(|(plane, (out, x))| {
                            let (c, b) = (coefficient[plane % s.maps], bias[plane % s.maps]);
                            s.windows(|o, [p, q, r, t]| {
                                out[o] = c * (x[p] + x[q] + x[r] + x[t]) + b
                            });
                        });
                })
            })
        });
        B::tensor(output, &[s.batch, s.maps, s.height / 2, s.width / 2])
    }

    #[cfg(feature = "flex")]
    impl TrainableSubsampling for burn::backend::Flex {
        fn trainable_subsampling(
            x: FloatTensor<Self>,
            coefficient: FloatTensor<Self>,
            bias: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            forward::<Self>(&x, &coefficient, &bias)
        }
    }

    #[cfg(feature = "ndarray")]
    impl TrainableSubsampling for burn::backend::NdArray {
        fn trainable_subsampling(
            x: FloatTensor<Self>,
            coefficient: FloatTensor<Self>,
            bias: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            forward::<Self>(&x, &coefficient, &bias)
        }
    }

    /// What backward needs: the input (for the coefficient's gradient) and the coefficients
    /// (for the input's).
    #[derive(Debug, Clone)]
    struct Saved<B: Backend> {
        x: FloatTensor<B>,
        coefficient: FloatTensor<B>,
    }

    #[derive(Debug)]
    struct SubsamplingBackward;

    impl<B: CpuF32> Backward<B, 3> for SubsamplingBackward {
        type State = Saved<B>;

        fn backward(
            self,
            ops: Ops<Saved<B>, 3>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let [node_x, node_coefficient, node_bias] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let Saved { x, coefficient } = ops.state;
            let s = Sizes::of::<B>(&x);
            let (input_grad, coefficient_grad, bias_grad) = B::with_values(&grad, |g| {
                B::with_values(&x, |x| {
                    B::with_values(&coefficient, |c| gradients(s, x, c, g))
                })
            });
            if let Some(node) = node_x {
                let dims = [s.batch, s.maps, s.height, s.width];
                grads.register::<B>(node.id, B::tensor(input_grad, &dims));
            }
            if let Some(node) = node_coefficient {
                grads.register::<B>(node.id, B::tensor(coefficient_grad, &[s.maps]));
            }
            if let Some(node) = node_bias {
                grads.register::<B>(node.id, B::tensor(bias_grad, &[s.maps]));
            }
        }
    }

    /// The input's, the coefficients' and the biases' gradients from the output's `g`.
    fn gradients(
        s: Sizes,
        x: &[f32],
        coefficient: &[f32],
        g: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let planes = s.batch * s.maps;
        let mut input_grad = vec![0.0f32; planes * s.plane()];
        // Per plane (image and map): sum of grad x window sum, and sum of grad.
        let mut per_plane = vec![(0.0f32, 0.0f32); planes];
        input_grad
            .par_chunks_mut(s.plane().max(1))
            .zip(x.par_chunks(s.plane().max(1)))
            .zip(g.par_chunks(s.out_plane().max(1)))
            .zip(per_plane.par_iter_mut())
            .enumerate()
            .for_each(|(plane, (((dx, x), g), sums))| {
                let c = coefficient[plane % s.maps];
                s.windows(|o, [p, q, r, t]| {
                    let share = c * g[o];
                    dx[p] = share;
                    dx[q] = share;
                    dx[r] = share;
                    dx[t] = share;
                    sums.0 += g[o] * (x[p] + x[q] + x[r] + x[t]);
                    sums.1 += g[o];
                });
            });
        let mut coefficient_grad = vec![0.0f32; s.maps];
        let mut bias_grad = vec![0.0f32; s.maps];
        for (plane, (c, b)) in per_plane.into_iter().enumerate() {
            coefficient_grad[plane % s.maps] += c;
            bias_grad[plane % s.maps] += b;
        }
        (input_grad, coefficient_grad, bias_grad)
    }

    impl<B: CpuF32 + TrainableSubsampling, C: CheckpointStrategy> TrainableSubsampling
        for Autodiff<B, C>
    {
        fn trainable_subsampling(
            x: FloatTensor<Self>,
            coefficient: FloatTensor<Self>,
            bias: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            let prepared = SubsamplingBackward
                .prepare::<C>([x.node(), coefficient.node(), bias.node()])
                .compute_bound()
                .stateful();
            let (x, coefficient, bias) = (
                x.into_primitive(),
                coefficient.into_primitive(),
                bias.into_primitive(),
            );
            let output = forward::<B>(&x, &coefficient, &bias);
            match prepared {
                OpsKind::Tracked(prep) => prep.finish(Saved { x, coefficient }, output),
                OpsKind::UnTracked(prep) => prep.finish(output),
            }
        }
    }
}

#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests {
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    fn matches_burns_ops_and_their_gradients() {
        for device in crate::kernels::cpu::devices() {
            let input =
                Tensor::<4>::random([5, 6, 28, 28], Distribution::Normal(0.0, 1.0), &device);
            let coefficient = Tensor::<1>::random([6], Distribution::Normal(0.25, 0.2), &device);
            let bias = Tensor::<1>::random([6], Distribution::Normal(0.0, 0.1), &device);
            let weights =
                Tensor::<4>::random([5, 6, 14, 14], Distribution::Normal(0.0, 1.0), &device);
            let run = |fast: bool| {
                let (x, c, b) = (
                    input.clone().require_grad(),
                    coefficient.clone().require_grad(),
                    bias.clone().require_grad(),
                );
                let y = if fast {
                    subsample(x.clone(), c.clone(), b.clone())
                } else {
                    by_burns_ops(x.clone(), c.clone(), b.clone())
                };
                let grads = (y.clone() * weights.clone()).sum().backward();
                let values = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
                [
                    values(y.flatten(0, 3)),
                    values(x.grad(&grads).unwrap().flatten(0, 3)),
                    values(c.grad(&grads).unwrap()),
                    values(b.grad(&grads).unwrap()),
                ]
            };
            assert!(crate::kernels::cpu::serves(&input));
            let (fast, burn) = (run(true), run(false));
            for (what, (fast, burn)) in ["output", "input", "coefficient", "bias"]
                .iter()
                .zip(fast.iter().zip(&burn))
            {
                let scale = burn.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                for (f, b) in fast.iter().zip(burn) {
                    assert!((f - b).abs() <= 1e-5 * scale, "{what}: {f} vs {b}");
                }
            }
        }
    }
}

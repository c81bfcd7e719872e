//! tanh and the 1998 network's scaled tanh, A tanh(S x) (A = 1.7159, S = 2/3), on the CPU
//! backends in one pass, spread over threads, with its own backward pass from the saved output.
//!
//! Why: through Burn's ops it is three passes (scale, tanh, scale), and flex's tanh calls libm's
//! `tanhf` one element at a time on one thread: 55% of a training step of `configs/lecun98.json`
//! went there (`perf record`), and its epochs took 4 to 5 times the modern network's. Here tanh is
//! computed by a branch-free formula that the compiler turns into vector instructions, within a
//! few units in the last place of libm's, and backward needs no tanh at all: the derivative of
//! A tanh(Sx) is S (A - y^2 / A) for the output y.

use burn::prelude::*;

/// `outer * tanh(inner * x)`, through the fast path on the CPU backends.
pub fn scaled_tanh<const D: usize>(x: Tensor<D>, outer: f32, inner: f32) -> Tensor<D> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if super::cpu::serves(&x) {
        return extension::scaled_tanh(x, outer, inner);
    }
    burn::tensor::activation::tanh(x.mul_scalar(inner)).mul_scalar(outer)
}

/// tanh(x) with branch-free arithmetic the compiler can vectorise: an odd polynomial near 0,
/// where the exponential form loses digits, and (1 - e) / (1 + e) with e = exp(-2|x|) beyond.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // Taylor series of tanh to x^9: below 0.25 its error is under 1e-8.
    let a2 = a * a;
    let small = a
        * (1.0
            + a2 * (-1.0 / 3.0 + a2 * (2.0 / 15.0 + a2 * (-17.0 / 315.0 + a2 * (62.0 / 2835.0)))));
    let e = exp_negative(-2.0 * a);
    let large = (1.0 - e) / (1.0 + e);
    let magnitude = if a < 0.25 { small } else { large };
    magnitude.copysign(x)
}

/// e^t for t <= 0, down to where it is 0 in f32: t = n ln 2 + r with |r| <= ln 2 / 2, 2^n put
/// in the exponent bits, e^r from its Taylor series to r^7 (relative error under 1e-8).
#[inline(always)]
fn exp_negative(t: f32) -> f32 {
    let t = t.max(-87.0);
    // Round to nearest by adding and subtracting 1.5 x 2^23: `f32::round` is a libm call on
    // x86-64 without SSE4.1, which would stop the loop from being vectorised.
    const ROUND: f32 = 12_582_912.0;
    let n = (t * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = t - n * std::f32::consts::LN_2;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    // 2^n from n's bits: n + 127 + 2^23 holds the integer n + 127 in its mantissa, which
    // then goes to the exponent field. (`n as i32` saturates, and its checks stopped the loop
    // from being vectorised: 1.5 instead of 2.8 ns per element here.)
    let biased = n + (127.0 + 8_388_608.0);
    let scale = f32::from_bits((biased.to_bits() - 0x4B00_0000) << 23);
    p * scale
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
#[allow(deprecated)] // ndarray stays available: docs/design.md#backends says why
mod extension {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, Dispatch, backend_extension};
    use burn::prelude::*;
    use rayon::prelude::*;

    use super::tanh;
    use crate::kernels::cpu::CpuF32;

    /// Elements a rayon task takes at least: below that, waking a thread costs more.
    const CHUNK: usize = 16 * 1024;

    pub fn scaled_tanh<const D: usize>(x: Tensor<D>, outer: f32, inner: f32) -> Tensor<D> {
        Tensor::from_dispatch(<Dispatch as ScaledTanh>::scaled_tanh(
            x.into_dispatch(),
            outer,
            inner,
        ))
    }

    #[backend_extension(
        Flex: cfg(feature = "flex"),
        NdArray: cfg(feature = "ndarray"),
        Autodiff
    )]
    pub trait ScaledTanh: Backend {
        /// `outer * tanh(inner * x)` of every element.
        fn scaled_tanh(x: FloatTensor<Self>, outer: f32, inner: f32) -> FloatTensor<Self>;
    }

    #[cfg(feature = "flex")]
    impl ScaledTanh for burn::backend::Flex {
        fn scaled_tanh(x: FloatTensor<Self>, outer: f32, inner: f32) -> FloatTensor<Self> {
            forward::<Self>(&x, outer, inner)
        }
    }

    #[cfg(feature = "ndarray")]
    impl ScaledTanh for burn::backend::NdArray {
        fn scaled_tanh(x: FloatTensor<Self>, outer: f32, inner: f32) -> FloatTensor<Self> {
            forward::<Self>(&x, outer, inner)
        }
    }

    fn forward<B: CpuF32>(x: &FloatTensor<B>, outer: f32, inner: f32) -> FloatTensor<B> {
        let output = B::with_values(x, |x| {
            let mut output = vec![0.0f32; x.len()];
            output
                .par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK))
                .for_each(|(out, x)| {
                    for (o, &v) in out.iter_mut().zip(x) {
                        *o = outer * tanh(inner * v);
                    }
                });
            output
        });
        B::tensor(output, &B::dims(x))
    }

    /// The input's gradient from the output `y` of A tanh(S x): grad S (A - y^2 / A).
    fn backward<B: CpuF32>(saved: &Saved<B>, grad: &FloatTensor<B>) -> FloatTensor<B> {
        let Saved {
            output: y,
            outer,
            inner,
        } = saved;
        let (outer, inner) = (*outer, *inner);
        let values = B::with_values(y, |y| {
            B::with_values(grad, |grad| {
                let mut out = vec![0.0f32; y.len()];
                out.par_chunks_mut(CHUNK)
                    .zip(y.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
                    .for_each(|(out, (y, g))| {
                        for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
                            *o = g * inner * (outer - y * y / outer);
                        }
                    });
                out
            })
        });
        B::tensor(values, &B::dims(y))
    }

    /// Keeps the output, from which the derivative follows without another tanh.
    #[derive(Debug, Clone)]
    struct Saved<B: Backend> {
        output: FloatTensor<B>,
        outer: f32,
        inner: f32,
    }

    #[derive(Debug)]
    struct ScaledTanhBackward;

    impl<B: CpuF32> Backward<B, 1> for ScaledTanhBackward {
        type State = Saved<B>;

        fn backward(
            self,
            ops: Ops<Saved<B>, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let saved = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                backward::<B>(&saved, &grad)
            });
        }
    }

    impl<B: CpuF32 + ScaledTanh, C: CheckpointStrategy> ScaledTanh for Autodiff<B, C> {
        fn scaled_tanh(x: FloatTensor<Self>, outer: f32, inner: f32) -> FloatTensor<Self> {
            match ScaledTanhBackward
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let output = forward::<B>(&x.into_primitive(), outer, inner);
                    let saved = Saved {
                        output: output.clone(),
                        outer,
                        inner,
                    };
                    prep.finish(saved, output)
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(forward::<B>(&x.into_primitive(), outer, inner))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_is_within_a_few_ulp_of_libm() {
        let mut worst = 0.0f32;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // -20 .. 20, through both formulas and the switch
            let (fast, libm) = (tanh(x), x.tanh());
            let error = (fast - libm).abs() / libm.abs().max(f32::MIN_POSITIVE);
            worst = worst.max(error);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert!(tanh(-1e-30).is_sign_negative());
    }

    #[cfg(any(feature = "flex", feature = "ndarray"))]
    #[test]
    fn matches_burns_scaled_tanh_and_its_gradient() {
        for (outer, inner) in [(1.7159, 2.0 / 3.0), (1.0, 1.0)] {
            matches_burn_with(outer, inner);
        }
    }

    #[cfg(any(feature = "flex", feature = "ndarray"))]
    fn matches_burn_with(outer: f32, inner: f32) {
        use burn::tensor::Distribution;
        for device in crate::kernels::cpu::devices() {
            let input =
                Tensor::<4>::random([4, 6, 28, 28], Distribution::Normal(0.0, 2.0), &device);
            // One set of weights for both runs, drawn here: reseeding the device before each
            // run raced with other tests drawing from the same generator.
            let weights = Tensor::<4>::random(input.shape(), Distribution::Default, &device);
            let run = |fast: bool| {
                let x = input.clone().require_grad();
                let y = if fast {
                    scaled_tanh(x.clone(), outer, inner)
                } else {
                    burn::tensor::activation::tanh(x.clone().mul_scalar(inner)).mul_scalar(outer)
                };
                let grads = (y.clone() * weights.clone()).sum().backward();
                let grad = x.grad(&grads).unwrap();
                (
                    y.into_data().try_to_vec::<f32>().unwrap(),
                    grad.into_data().try_to_vec::<f32>().unwrap(),
                )
            };
            assert!(crate::kernels::cpu::serves(&input));
            let fast = run(true);
            let burn = run(false);
            for (a, b) in fast.0.iter().zip(&burn.0).chain(fast.1.iter().zip(&burn.1)) {
                assert!((a - b).abs() <= 2e-6 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}

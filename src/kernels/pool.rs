//! 2x2, stride-2 max pooling on the CPU backends (flex and ndarray), as a Burn backend extension
//! with its own backward pass: S2 and S4 where they do not run inside their convolution block
//! ([`super::conv_block`]: in `lenet explain`, on CPUs without AVX2 and FMA), and the picks
//! that block reproduces.
//!
//! Why: Burn's flex max pool is written for every window, stride, padding and dilation, and
//! writes an i64 argmax index per output for the backward pass. At batch 64 it took 2.7 ms of an
//! 11.8 ms training step for S2 and 0.7 ms for S4 (`cargo bench --bench ops`), more than C1's
//! convolution. For LeNet's one case (2x2 windows that tile the map) a forward pass is four
//! loads and three compares per output, and the backward pass can find each window's maximum
//! again from the input instead of storing indices.
//!
//! The result is the same as Burn's `MaxPool2d` to the bit, ties and NaN included: the first
//! maximum of a window in row-major order wins, and a NaN wins over numbers (the last NaN if
//! there are several), so the gradient goes to the same input. Other backends, dtypes and pool
//! settings use Burn's `MaxPool2d`.

use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2d;
use burn::prelude::*;

/// `pool.forward(x)`, through the fast path when `pool` is a plain 2x2, stride-2 max pool and
/// `x` is an f32 tensor on a CPU backend.
pub fn max_pool(x: Tensor<4>, pool: &MaxPool2d) -> Tensor<4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if is_plain_2x2(pool) && super::cpu::serves(&x) {
        return extension::max_pool_2x2(x);
    }
    pool.forward(x)
}

/// Whether `pool` is the kind the fast paths take: 2x2 windows that tile the map.
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub(super) fn is_plain_2x2(pool: &MaxPool2d) -> bool {
    pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && matches!(pool.padding, PaddingConfig2d::Valid)
        && !pool.ceil_mode
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

    use crate::kernels::cpu::CpuF32;

    /// Rayon splits plane-wise work into tasks of at least this many values: below that, waking
    /// its workers costs more than the work, and a single task runs on one thread.
    const PARALLEL_OUTPUTS: usize = 16 * 1024;

    pub fn max_pool_2x2(x: Tensor<4>) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as MaxPool2x2>::max_pool_2x2(x.into_dispatch()))
    }

    #[backend_extension(
        Flex: cfg(feature = "flex"),
        NdArray: cfg(feature = "ndarray"),
        Autodiff
    )]
    pub trait MaxPool2x2: Backend {
        /// 2x2, stride-2 max pooling of an NCHW f32 tensor; an odd last row or column is dropped.
        fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
    }

    #[cfg(feature = "flex")]
    impl MaxPool2x2 for burn::backend::Flex {
        fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
            forward::<Self>(&x)
        }
    }

    #[cfg(feature = "ndarray")]
    impl MaxPool2x2 for burn::backend::NdArray {
        fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
            forward::<Self>(&x)
        }
    }

    #[derive(Debug)]
    struct MaxPool2x2Backward;

    /// Keeps the input, from which backward finds each window's maximum again: cheaper than
    /// storing where they were (measured both ways).
    impl<B: CpuF32> Backward<B, 1> for MaxPool2x2Backward {
        type State = FloatTensor<B>;

        fn backward(
            self,
            ops: Ops<FloatTensor<B>, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let input = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                backward::<B>(&input, &grad)
            });
        }
    }

    impl<B: CpuF32 + MaxPool2x2, C: CheckpointStrategy> MaxPool2x2 for Autodiff<B, C> {
        fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
            match MaxPool2x2Backward
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let input = x.into_primitive();
                    let output = forward::<B>(&input);
                    prep.finish(input, output)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward::<B>(&x.into_primitive())),
            }
        }
    }

    /// Whether Burn's max pool moves from `current` to `candidate`, the next value of a window
    /// in row-major order.
    #[inline(always)]
    fn takes(current: f32, candidate: f32) -> bool {
        (candidate > current) | candidate.is_nan()
    }

    /// `if condition { yes } else { no }` through bit masks. Which value of a window wins is
    /// unpredictable on real data, and the compiler turned plain `if`s into branches that
    /// mispredicted: the first version of this file was 5x slower for it.
    #[inline(always)]
    fn select(condition: bool, yes: u32, no: u32) -> u32 {
        let mask = 0u32.wrapping_sub(condition as u32);
        (yes & mask) | (no & !mask)
    }

    /// The value of the window `[a, b, c, d]` that Burn's max pool picks.
    #[inline(always)]
    fn winner(a: f32, b: f32, c: f32, d: f32) -> f32 {
        let pick = |value: f32, candidate: f32| {
            f32::from_bits(select(
                takes(value, candidate),
                candidate.to_bits(),
                value.to_bits(),
            ))
        };
        pick(pick(pick(a, b), c), d)
    }

    /// The position (0..4, row-major) of the value `winner` picks: the first value equal to the
    /// maximum, or the last NaN if there is one. Integer arithmetic on comparisons, so that it
    /// stays branch-free.
    #[inline(always)]
    fn winner_position(a: f32, b: f32, c: f32, d: f32) -> u8 {
        let max = winner(a, b, c, d);
        let [e0, e1, e2] = [a == max, b == max, c == max];
        let first_equal = (!e0) as u8 + (!(e0 | e1)) as u8 + (!(e0 | e1 | e2)) as u8;
        let [n1, n2, n3] = [b.is_nan(), c.is_nan(), d.is_nan()];
        let last_nan = (n1 | n2 | n3) as u8 + (n2 | n3) as u8 + n3 as u8;
        let nan = max.is_nan() as u8;
        nan * last_nan + (1 - nan) * first_equal
    }

    /// The fewest planes of `plane_len` values a rayon task takes (see `PARALLEL_OUTPUTS`).
    fn min_planes(plane_len: usize) -> usize {
        PARALLEL_OUTPUTS.div_ceil(plane_len.max(1))
    }

    fn forward<B: CpuF32>(x: &FloatTensor<B>) -> FloatTensor<B> {
        let [n, c, h, w]: [usize; 4] = B::dims(x).try_into().expect("an NCHW tensor");
        let (oh, ow) = (h / 2, w / 2);
        let mut output = vec![0.0; n * c * oh * ow];
        if !output.is_empty() {
            B::with_values(x, |input| {
                output
                    .par_chunks_mut(oh * ow)
                    .zip(input.par_chunks(h * w))
                    .with_min_len(min_planes(oh * ow))
                    .for_each(|(out, src)| {
                        for (row, out_row) in out.chunks_exact_mut(ow).enumerate() {
                            let top = &src[2 * row * w..][..w];
                            let bottom = &src[(2 * row + 1) * w..][..w];
                            let done = simd::pool_row(top, bottom, out_row);
                            for (col, value) in out_row.iter_mut().enumerate().skip(done) {
                                let (a, b) = (top[2 * col], top[2 * col + 1]);
                                let (c, d) = (bottom[2 * col], bottom[2 * col + 1]);
                                *value = winner(a, b, c, d);
                            }
                        }
                    });
            });
        }
        B::tensor(output, &[n, c, oh, ow])
    }

    /// The input's gradient: each output's gradient goes to the input its window picked.
    fn backward<B: CpuF32>(x: &FloatTensor<B>, grad: &FloatTensor<B>) -> FloatTensor<B> {
        let [n, c, h, w]: [usize; 4] = B::dims(x).try_into().expect("an NCHW tensor");
        let (oh, ow) = (h / 2, w / 2);
        let mut grad_in = vec![0.0f32; n * c * h * w];
        if oh > 0 && ow > 0 && !grad_in.is_empty() {
            B::with_values(x, |input| {
                B::with_values(grad, |grad_out| {
                    grad_in
                        .par_chunks_mut(h * w)
                        .zip(input.par_chunks(h * w))
                        .zip(grad_out.par_chunks(oh * ow))
                        .with_min_len(min_planes(h * w))
                        .for_each(|((dst, src), g)| route(dst, src, g, w, ow));
                })
            });
        }
        B::tensor(grad_in, &[n, c, h, w])
    }

    /// One map's gradient: each of `g`'s values to the input of its window that won.
    fn route(dst: &mut [f32], src: &[f32], g: &[f32], w: usize, ow: usize) {
        for (row, g_row) in g.chunks_exact(ow).enumerate() {
            let top = &src[2 * row * w..][..w];
            let bottom = &src[(2 * row + 1) * w..][..w];
            let (dst_top, rest) = dst[2 * row * w..].split_at_mut(w);
            let dst_bottom = &mut rest[..w];
            let done = simd::route_row(top, bottom, g_row, dst_top, dst_bottom);
            for (col, &g) in g_row.iter().enumerate().skip(done) {
                let (a, b) = (top[2 * col], top[2 * col + 1]);
                let (c, d) = (bottom[2 * col], bottom[2 * col + 1]);
                let at = winner_position(a, b, c, d);
                let share = |p: u8| f32::from_bits(select(at == p, g.to_bits(), 0));
                dst_top[2 * col] = share(0);
                dst_top[2 * col + 1] = share(1);
                dst_bottom[2 * col] = share(2);
                dst_bottom[2 * col + 1] = share(3);
            }
        }
    }

    /// Four windows at a time in SSE2's 128-bit registers, which every x86-64 CPU has. The
    /// compiler kept the branch-free scalar code above scalar (a window's pick is a chain of
    /// compares and selects on values two apart), and the two pools took 1.4 ms of a 4.6 ms
    /// training step (`cargo bench --bench ops`), half of it S2's backward pass. The picks are
    /// the scalar code's to the bit: `cmpgt` is false for NaN like `>`, and `cmpunord` of a
    /// value with itself is the NaN test. Each function does the row's first multiple of four
    /// windows and returns how many; the scalar code does the rest (S2's rows have 14, S4's 5).
    #[cfg(target_arch = "x86_64")]
    mod simd {
        use std::arch::x86_64::*;

        /// Deinterleaves `2 * 4` values of an input row into the windows' left and right
        /// inputs.
        #[target_feature(enable = "sse2")]
        fn pairs(row: &[f32]) -> (__m128, __m128) {
            let row = &row[..8];
            // SAFETY: `row` holds 8 values; unaligned loads.
            let (low, high) = unsafe {
                (
                    _mm_loadu_ps(row.as_ptr()),
                    _mm_loadu_ps(row.as_ptr().add(4)),
                )
            };
            (
                _mm_shuffle_ps::<0b10_00_10_00>(low, high),
                _mm_shuffle_ps::<0b11_01_11_01>(low, high),
            )
        }

        /// Burn's max pool's pick over four windows, `[a, b, c, d]` row-major, and the masks
        /// of which input won: it moves to the next value when that is greater or NaN.
        #[target_feature(enable = "sse2")]
        fn winners(a: __m128, b: __m128, c: __m128, d: __m128) -> (__m128, [__m128; 4]) {
            let takes = |current: __m128, candidate: __m128| {
                _mm_or_ps(
                    _mm_cmpgt_ps(candidate, current),
                    _mm_cmpunord_ps(candidate, candidate),
                )
            };
            let pick = |take: __m128, candidate: __m128, current: __m128| {
                _mm_or_ps(_mm_and_ps(take, candidate), _mm_andnot_ps(take, current))
            };
            let tb = takes(a, b);
            let m = pick(tb, b, a);
            let tc = takes(m, c);
            let m = pick(tc, c, m);
            let td = takes(m, d);
            let m = pick(td, d, m);
            let later_c = _mm_or_ps(tc, td);
            let later_b = _mm_or_ps(tb, later_c);
            (
                m,
                [
                    _mm_andnot_ps(later_b, _mm_castsi128_ps(_mm_set1_epi32(-1))),
                    _mm_andnot_ps(later_c, tb),
                    _mm_andnot_ps(td, tc),
                    td,
                ],
            )
        }

        /// Pools the row's first multiple of four windows into `out`; returns how many.
        pub fn pool_row(top: &[f32], bottom: &[f32], out: &mut [f32]) -> usize {
            // SAFETY: SSE2 is part of x86-64.
            unsafe { pool_row_sse2(top, bottom, out) }
        }

        /// Routes the gradients of the row's first multiple of four windows; returns how many.
        pub fn route_row(
            top: &[f32],
            bottom: &[f32],
            g: &[f32],
            dst_top: &mut [f32],
            dst_bottom: &mut [f32],
        ) -> usize {
            // SAFETY: SSE2 is part of x86-64.
            unsafe { route_row_sse2(top, bottom, g, dst_top, dst_bottom) }
        }

        #[target_feature(enable = "sse2")]
        fn pool_row_sse2(top: &[f32], bottom: &[f32], out: &mut [f32]) -> usize {
            let done = out.len() / 4 * 4;
            for (i, out) in out[..done].chunks_exact_mut(4).enumerate() {
                let (a, b) = pairs(&top[8 * i..]);
                let (c, d) = pairs(&bottom[8 * i..]);
                // SAFETY: `out` is a chunk of exactly 4 values; an unaligned store.
                unsafe { _mm_storeu_ps(out.as_mut_ptr(), winners(a, b, c, d).0) };
            }
            done
        }

        #[target_feature(enable = "sse2")]
        fn route_row_sse2(
            top: &[f32],
            bottom: &[f32],
            g: &[f32],
            dst_top: &mut [f32],
            dst_bottom: &mut [f32],
        ) -> usize {
            let done = g.len() / 4 * 4;
            for (i, g) in g[..done].chunks_exact(4).enumerate() {
                let (dst_top, dst_bottom) =
                    (&mut dst_top[8 * i..][..8], &mut dst_bottom[8 * i..][..8]);
                let (a, b) = pairs(&top[8 * i..]);
                let (c, d) = pairs(&bottom[8 * i..]);
                let picks = winners(a, b, c, d).1;
                // SAFETY: `g` is a chunk of exactly 4 values, and `dst_top` and `dst_bottom`
                // slices of exactly 8; unaligned loads and stores.
                unsafe {
                    let g = _mm_loadu_ps(g.as_ptr());
                    let [p0, p1, p2, p3] = picks.map(|p| _mm_and_ps(p, g));
                    _mm_storeu_ps(dst_top.as_mut_ptr(), _mm_unpacklo_ps(p0, p1));
                    _mm_storeu_ps(dst_top.as_mut_ptr().add(4), _mm_unpackhi_ps(p0, p1));
                    _mm_storeu_ps(dst_bottom.as_mut_ptr(), _mm_unpacklo_ps(p2, p3));
                    _mm_storeu_ps(dst_bottom.as_mut_ptr().add(4), _mm_unpackhi_ps(p2, p3));
                }
            }
            done
        }
    }

    /// Elsewhere the scalar code does every window.
    #[cfg(not(target_arch = "x86_64"))]
    mod simd {
        pub fn pool_row(_: &[f32], _: &[f32], _: &mut [f32]) -> usize {
            0
        }

        pub fn route_row(_: &[f32], _: &[f32], _: &[f32], _: &mut [f32], _: &mut [f32]) -> usize {
            0
        }
    }
}

#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests {
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Distribution;

    use super::*;

    /// Forward values and input gradients of the fast path and Burn's max pool on `input`.
    fn both(input: Tensor<4>) -> [(Vec<f32>, Vec<f32>); 2] {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let run = |fast: bool| {
            let x = input.clone().require_grad();
            let y = if fast {
                max_pool(x.clone(), &pool)
            } else {
                pool.forward(x.clone())
            };
            // Weights 1, 2, 3, ... make every output's gradient distinct and non-zero, so a
            // misrouted one shows.
            let weights =
                Tensor::<1, Int>::arange(1..y.shape().num_elements() as i64 + 1, &y.device())
                    .float()
                    .reshape(y.shape());
            let grads = (y.clone() * weights).sum().backward();
            let grad = x.grad(&grads).expect("input gradient");
            (
                y.into_data().try_to_vec::<f32>().unwrap(),
                grad.into_data().try_to_vec::<f32>().unwrap(),
            )
        };
        [run(true), run(false)]
    }

    #[test]
    fn matches_burns_max_pool_on_random_maps() {
        // Big enough for the parallel path (S2 at batch 16), small enough for the other, and
        // odd sizes, whose last row or column both drop.
        for device in crate::kernels::cpu::devices() {
            for shape in [[16, 6, 28, 28], [2, 16, 10, 10], [2, 3, 11, 9]] {
                let input = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                assert!(
                    crate::kernels::cpu::serves(&input),
                    "the fast path must be the one tested"
                );
                let [fast, burn] = both(input);
                assert_eq!(fast, burn, "shape {shape:?} on {device:?}");
            }
        }
    }

    #[test]
    fn ties_and_nan_pick_the_same_input_as_flex() {
        let nan = f32::NAN;
        #[rustfmt::skip]
        let values = [
            1.0, 1.0,   nan, 2.0,   3.0, nan,   0.0, -1.0,
            1.0, 1.0,   2.0, nan,   nan, 3.0,   -1.0, 0.0,
        ];
        for device in crate::kernels::cpu::devices() {
            let input =
                Tensor::<4>::from_data(TensorData::new(values.to_vec(), [1, 1, 2, 8]), &device);
            let [fast, burn] = both(input);
            // NaN != NaN, so compare the bits. The kernel lets a NaN win, as flex's own max pool
            // (and PyTorch's) do; ndarray's skips it, so only flex's answer is the reference.
            let bits = |(y, g): &(Vec<f32>, Vec<f32>)| {
                (
                    y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                )
            };
            let on_flex = matches!(
                device.clone().without_autodiff().as_dispatch(),
                burn::backend::DispatchDevice::Flex(_)
            );
            if on_flex {
                assert_eq!(bits(&fast), bits(&burn));
            }
            assert!(fast.0[1].is_nan() && fast.0[2].is_nan(), "{:?}", fast.0);
            // The first 1.0 of the tied window got its gradient, and so did the first of the
            // last window's two tied zeros, the top-left.
            assert_eq!(
                (fast.1[0], fast.1[1], fast.1[8], fast.1[9]),
                (1.0, 0.0, 0.0, 0.0)
            );
            assert_eq!(fast.1[6], 4.0);
            assert_eq!(fast.1[15], 0.0);
        }
    }

    /// Six windows: the first four go through the four-at-a-time path, the last two through
    /// the scalar code, each with a NaN or a tie that only the right rule routes correctly.
    #[test]
    fn nan_and_ties_route_alike_in_both_paths() {
        let nan = f32::NAN;
        #[rustfmt::skip]
        let values = [
            // NaN first   -0 and 0     two NaNs     tied 2s      two NaNs     NaN at 2
            nan, 1.0,      -0.0, 0.0,   nan, 5.0,    1.0, 2.0,    nan, 1.0,    0.0, -0.0,
            2.0, 3.0,      0.0, -0.0,   nan, 1.0,    2.0, 1.0,    -0.0, nan,   nan, 0.0,
        ];
        // Window k's gradient is k + 1; where it must land (top row 0-11, bottom 12-23).
        let landing = [0, 2, 16, 7, 21, 22];
        for device in crate::kernels::cpu::devices() {
            let input =
                Tensor::<4>::from_data(TensorData::new(values.to_vec(), [1, 1, 2, 12]), &device);
            let [(pooled, grad), _] = both(input);
            let mut expected = vec![0.0f32; 24];
            for (window, &at) in landing.iter().enumerate() {
                expected[at] = window as f32 + 1.0;
            }
            assert_eq!(grad, expected, "on {device:?}");
            let picked: Vec<u32> = landing.iter().map(|&at| values[at].to_bits()).collect();
            let pooled: Vec<u32> = pooled.iter().map(|v| v.to_bits()).collect();
            assert_eq!(pooled, picked, "on {device:?}");
        }
    }
}

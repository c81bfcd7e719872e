//! A convolution block (stride-1 convolution, bias, relu, 2x2 max pool) as one direct
//! convolution whose outputs never leave the registers before they are pooled, and its backward
//! pass from the pool's picks alone.
//!
//! Why, forward: im2col + gemm, then relu, then the pool, is four passes over C1's 1.2 MB output
//! at batch 64, each with its allocation, autodiff node and rayon hand-over; with 6 and 16 output
//! maps the products are too small for gemm to reach its speed. Here the output maps sit in the
//! lanes of AVX2 registers (8 maps a register, so C1 takes one and C3 two) or, for more than
//! eight maps on a CPU with AVX-512, of one AVX-512 register (C3's 16); a tile is one or two
//! pool windows, and each of its outputs is a chain of fused multiply-adds over the weights in
//! im2col's row order, started from zero: the order gemm's microkernel sums them in, so the
//! outputs equal the unfused path's to the bit (the tests compare every value). Bias, relu and
//! the window's pick follow in the registers, and the pick's position is kept for backward.
//!
//! Why, backward: only one output in four gets a gradient (the window's pick, where relu let it
//! through), so the weights' and the input's gradients are sums over the picks alone, a quarter
//! of the multiply-adds of the dense products over the whole output, and the input's gradient
//! is added straight into the image with no column buffer to fold back (col2im). The sums run in
//! another order than gemm's, so the gradients equal the unfused path's up to rounding.
//!
//! Every lane's chain is the same at either width, so the two give the same bits. CPUs without
//! AVX2 and FMA take the unfused path ([`available`]), since a forward chain rounded differently
//! would change the bits.

use super::im2col::Geometry;

/// A window position (as [`forward`] records them) whose value relu made zero: its gradient is
/// zero, wherever it came from.
const NO_GRADIENT: u8 = 4;

/// The largest kernel height and width the backward pass takes: a window's region of the input
/// (one more row and column than the kernel) is one register a row, eight registers at most.
const MAX_KERNEL: usize = 7;

/// Whether this CPU runs the kernel.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the kernels serve a convolution of this shape, forward bit for bit: up to 16 output
/// maps (two registers), kernels up to [`MAX_KERNEL`] a side, and outputs that 2x2 windows tile;
/// and the shapes for which gemm sums as the forward kernel does, in one chain of multiply-adds
/// over the whole patch. gemm cuts a patch longer than 512 into blocks and adds their sums (at
/// 512 for small products, at no less for large ones: `gemm-common`'s `gemm.rs` and
/// `cache.rs`), and takes other routes for a single output map (gemv) or a patch of one or two
/// (gevv).
pub(super) fn serves(g: &Geometry) -> bool {
    (2..=16).contains(&g.out_channels)
        && g.kernel.iter().all(|&k| k <= MAX_KERNEL)
        && (3..=512).contains(&g.patch())
        && g.out_height.is_multiple_of(2)
        && g.out_width.is_multiple_of(2)
        && !g.is_empty()
}

/// The pooled outputs `[batch, out, out_h / 2, out_w / 2]` of relu(conv(x) + bias), and for
/// each the position in its window (0..4, row-major) that the pool picked, or [`NO_GRADIENT`].
/// Panics unless `available()` and `serves(g)`.
pub(super) fn forward(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
) -> (Vec<f32>, Vec<u8>) {
    assert!(
        available() && serves(g),
        "the direct kernel cannot run this"
    );
    #[cfg(target_arch = "x86_64")]
    {
        x86::forward(g, x, weight, bias, x86::Width::for_maps(g.out_channels))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, x, weight, bias);
        unreachable!("the direct kernel is only offered where `available()`")
    }
}

/// The gradients of a block's weights, its bias (as each image's per-map sums, `[batch, out]`)
/// and, when asked for, its input.
pub(super) struct BlockGradients {
    pub(super) input: Option<Vec<f32>>,
    pub(super) weight: Vec<f32>,
    pub(super) plane_sums: Vec<f32>,
}

/// The gradients of the block that [`forward`] ran on `x`, from its pooled outputs' `grad` and
/// the `picks` it recorded; the input's only when `want_input`. Panics unless `available()`
/// and `serves(g)`.
pub(super) fn backward(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    grad: &[f32],
    picks: &[u8],
    want_input: bool,
) -> BlockGradients {
    assert!(
        available() && serves(g),
        "the direct kernel cannot run this"
    );
    #[cfg(target_arch = "x86_64")]
    {
        x86::backward(g, x, weight, grad, picks, want_input)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, x, weight, grad, picks, want_input);
        unreachable!("the direct kernel is only offered where `available()`")
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use rayon::prelude::*;

    use crate::kernels::direct::{BlockGradients, MAX_KERNEL, NO_GRADIENT};
    use crate::kernels::im2col::Geometry;

    /// The picks a window can record: its four positions and [`NO_GRADIENT`].
    const PICKS: usize = NO_GRADIENT as usize + 1;

    /// The backward pass's width: AVX2's.
    const LANES: usize = <Avx2 as Register>::LANES;

    /// An image with its zero padding around it, as the kernels read it: `[in, padded_h,
    /// padded_w]`. A receptive field's row `(ci, ki)` for the output at `(y, x)` starts at
    /// `offset(ci, ki, 0) + y * width + x`.
    #[derive(Clone, Copy)]
    struct Padded {
        height: usize,
        width: usize,
        len: usize,
    }

    impl Padded {
        fn new(g: &Geometry) -> Self {
            let height = g.height + 2 * g.padding[0];
            let width = g.width + 2 * g.padding[1];
            Self {
                height,
                width,
                len: g.channels * height * width,
            }
        }

        fn offset(&self, ci: usize, ki: usize, kj: usize) -> usize {
            (ci * self.height + ki) * self.width + kj
        }

        /// Where row `y` of channel `ci` of the unpadded image starts.
        fn inside(&self, g: &Geometry, ci: usize, y: usize) -> usize {
            self.offset(ci, y + g.padding[0], g.padding[1])
        }

        /// Copies `image` into `padded`, whose padding stays as it is (zero).
        fn pad(&self, g: &Geometry, image: &[f32], padded: &mut [f32]) {
            for (ci, plane) in image.chunks(g.height * g.width).enumerate() {
                for (y, row) in plane.chunks(g.width).enumerate() {
                    padded[self.inside(g, ci, y)..][..g.width].copy_from_slice(row);
                }
            }
        }

        /// Copies the inside of `padded` to `image`.
        fn unpad(&self, g: &Geometry, padded: &[f32], image: &mut [f32]) {
            for (ci, plane) in image.chunks_mut(g.height * g.width).enumerate() {
                for (y, row) in plane.chunks_mut(g.width).enumerate() {
                    row.copy_from_slice(&padded[self.inside(g, ci, y)..][..g.width]);
                }
            }
        }
    }

    /// The layout the forward kernel reads: the weights transposed to `[patch, maps rounded up
    /// to whole registers of `lanes`]` (zeros in the extra lanes), the bias likewise, and each
    /// patch row's offset in the padded image.
    struct Plan {
        weights: Vec<f32>,
        bias: Vec<f32>,
        offsets: Vec<usize>,
        padded: Padded,
    }

    impl Plan {
        fn new(g: &Geometry, weight: &[f32], bias: &[f32], lanes: usize) -> Self {
            let maps = g.out_channels.div_ceil(lanes) * lanes;
            let mut weights = vec![0.0f32; g.patch() * maps];
            for (map, row) in weight.chunks(g.patch()).enumerate() {
                for (k, w) in row.iter().enumerate() {
                    weights[k * maps + map] = *w;
                }
            }
            let mut padded_bias = vec![0.0f32; maps];
            padded_bias[..g.out_channels].copy_from_slice(bias);
            let padded = Padded::new(g);
            let mut offsets = vec![0; g.patch()];
            g.rows(|row, ci, ki, kj| offsets[row] = padded.offset(ci, ki, kj));
            Self {
                weights,
                bias: padded_bias,
                offsets,
                padded,
            }
        }
    }

    /// Which kernel the forward pass runs: eight maps a register (AVX2), or sixteen (AVX-512)
    /// where there are more than eight maps and the CPU has AVX-512.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Width {
        Avx2,
        Avx512,
    }

    impl Width {
        pub(super) fn for_maps(maps: usize) -> Self {
            if maps > Avx2::LANES && is_x86_feature_detected!("avx512f") {
                Width::Avx512
            } else {
                Width::Avx2
            }
        }
    }

    /// The forward pass at `width`: `Width::Avx512` only where the CPU has it.
    pub(super) fn forward(
        g: &Geometry,
        x: &[f32],
        weight: &[f32],
        bias: &[f32],
        width: Width,
    ) -> (Vec<f32>, Vec<u8>) {
        assert!(width == Width::Avx2 || is_x86_feature_detected!("avx512f"));
        let lanes = match width {
            Width::Avx2 => Avx2::LANES,
            Width::Avx512 => Avx512::LANES,
        };
        let plan = Plan::new(g, weight, bias, lanes);
        let plane = (g.out_height / 2) * (g.out_width / 2);
        let mut pooled = vec![0.0f32; g.batch * g.out_channels * plane];
        let mut picks = vec![0u8; pooled.len()];
        pooled
            .par_chunks_mut(g.out_channels * plane)
            .zip(picks.par_chunks_mut(g.out_channels * plane))
            .zip(x.par_chunks(g.image_len()))
            .for_each_init(
                // The padding stays zero from image to image: only the inside is overwritten.
                || vec![0.0f32; plan.padded.len],
                |padded, ((pooled, picks), image)| {
                    plan.padded.pad(g, image, padded);
                    // SAFETY: `available()` held (the caller's contract), so the CPU has AVX2
                    // and FMA, and it has AVX-512 where `width` says so (checked above); the
                    // slices have the lengths `image_blocks` documents.
                    unsafe {
                        match width {
                            Width::Avx512 => image_blocks_avx512(g, &plan, padded, pooled, picks),
                            Width::Avx2 if g.out_channels <= Avx2::LANES => {
                                image_blocks_avx2::<1>(g, &plan, padded, pooled, picks)
                            }
                            Width::Avx2 => image_blocks_avx2::<2>(g, &plan, padded, pooled, picks),
                        }
                    }
                },
            );
        (pooled, picks)
    }

    /// `image_blocks` at AVX2's width, `V` registers of maps.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn image_blocks_avx2<const V: usize>(
        g: &Geometry,
        plan: &Plan,
        padded: &[f32],
        pooled: &mut [f32],
        picks: &mut [u8],
    ) {
        // SAFETY: the caller's contract, and this function's features.
        unsafe { image_blocks::<Avx2, V>(g, plan, padded, pooled, picks) }
    }

    /// `image_blocks` at AVX-512's width, one register of up to 16 maps.
    #[target_feature(enable = "avx512f")]
    unsafe fn image_blocks_avx512(
        g: &Geometry,
        plan: &Plan,
        padded: &[f32],
        pooled: &mut [f32],
        picks: &mut [u8],
    ) {
        // SAFETY: the caller's contract, and this function's features.
        unsafe { image_blocks::<Avx512, 1>(g, plan, padded, pooled, picks) }
    }

    /// One image: every pool window of every map, `V` registers of maps at a time, two windows
    /// side by side where there is one register (eight chains in flight cover the FMA units'
    /// latency), else one. `padded` holds the image as `Padded::pad` lays it out; `pooled` and
    /// `picks` the image's `[out, out_h / 2, out_w / 2]`.
    ///
    /// # Safety
    /// The CPU has `R`'s features, and this is inlined into a function that enables them.
    #[inline(always)]
    unsafe fn image_blocks<R: Register, const V: usize>(
        g: &Geometry,
        plan: &Plan,
        padded: &[f32],
        pooled: &mut [f32],
        picks: &mut [u8],
    ) {
        let (rows, cols) = (g.out_height / 2, g.out_width / 2);
        assert!(padded.len() >= plan.padded.len);
        assert_eq!(plan.weights.len(), g.patch() * V * R::LANES);
        assert!(pooled.len() >= g.out_channels * rows * cols && picks.len() >= pooled.len());
        for r in 0..rows {
            let mut c = 0;
            while c < cols {
                let pair = V == 1 && c + 1 < cols;
                // SAFETY: the windows at (r, c) and (r, c + 1) when `pair` are inside the
                // output, so every input they read is inside `padded` (checked above); the
                // features are the caller's.
                let windows = unsafe {
                    if pair {
                        tile::<R, V, 2>(plan, padded, r, c)
                    } else {
                        let [one] = tile::<R, V, 1>(plan, padded, r, c);
                        [one, one]
                    }
                };
                let count = if pair { 2 } else { 1 };
                for (w, (values, positions)) in windows.iter().take(count).enumerate() {
                    for v in 0..V {
                        let mut value_lanes = [0.0f32; MAX_LANES];
                        let mut position_lanes = [0i32; MAX_LANES];
                        // SAFETY: the arrays hold a register's lanes; the features are the
                        // caller's.
                        unsafe {
                            R::store(
                                values[v],
                                positions[v],
                                &mut value_lanes,
                                &mut position_lanes,
                            )
                        };
                        let maps = (v * R::LANES)..g.out_channels.min((v + 1) * R::LANES);
                        for (lane, map) in maps.enumerate() {
                            let at = (map * rows + r) * cols + c + w;
                            pooled[at] = value_lanes[lane];
                            picks[at] = position_lanes[lane] as u8;
                        }
                    }
                }
                c += count;
            }
        }
    }

    /// `W` windows side by side from window `(r, c)`: per window and register of maps, the
    /// pooled values and the picked positions (as floats, `NO_GRADIENT` included).
    ///
    /// # Safety
    /// The CPU has `R`'s features, this is inlined into a function that enables them, and
    /// windows `(r, c)` to `(r, c + W - 1)` are inside the output.
    #[inline(always)]
    unsafe fn tile<R: Register, const V: usize, const W: usize>(
        plan: &Plan,
        padded: &[f32],
        r: usize,
        c: usize,
    ) -> [([R; V], [R; V]); W] {
        let width = plan.padded.width;
        // The window's four outputs in the pool's order: top left, top right, bottom left,
        // bottom right; each reads its receptive field from its top-left input on.
        let mut corners = [[0usize; 4]; W];
        for (w, corner) in corners.iter_mut().enumerate() {
            let top_left = 2 * r * width + 2 * (c + w);
            *corner = [
                top_left,
                top_left + 1,
                top_left + width,
                top_left + width + 1,
            ];
        }
        let input = padded.as_ptr();
        let weights = plan.weights.as_ptr();
        // SAFETY (every block below): the features are the caller's; `weights` holds `patch`
        // rows of V registers, the padded bias V registers, and a receptive field of an output
        // inside the output lies inside the padded image (the caller's contract).
        let zero = unsafe { R::zero() };
        let mut sums = [[[zero; V]; 4]; W];
        for (k, &offset) in plan.offsets.iter().enumerate() {
            let mut w_k = [zero; V];
            for (v, w) in w_k.iter_mut().enumerate() {
                *w = unsafe { R::load(weights.add((k * V + v) * R::LANES)) };
            }
            for w in 0..W {
                for p in 0..4 {
                    let x = unsafe { R::splat(*input.add(corners[w][p] + offset)) };
                    for v in 0..V {
                        sums[w][p][v] = unsafe { R::fma(w_k[v], x, sums[w][p][v]) };
                    }
                }
            }
        }
        let mut out = [([zero; V], [zero; V]); W];
        for w in 0..W {
            for v in 0..V {
                unsafe {
                    let bias = R::load(plan.bias.as_ptr().add(v * R::LANES));
                    let mut best = R::relu(R::add(sums[w][0][v], bias));
                    let mut position = zero;
                    for (p, sum) in sums[w].iter().enumerate().skip(1) {
                        let candidate = R::relu(R::add(sum[v], bias));
                        (best, position) = R::later_wins(best, position, candidate, p as f32);
                    }
                    out[w].0[v] = best;
                    out[w].1[v] = R::stopped(best, position);
                }
            }
        }
        out
    }

    /// The most lanes of any register below.
    const MAX_LANES: usize = 16;

    /// A register of output maps at one vector width, and what the forward kernel does with it.
    /// Written once over this rather than once per width: the methods are inlined into the
    /// width's `#[target_feature]` function, so each compiles to that width's instructions.
    ///
    /// # Safety
    /// Every method needs the CPU to have the width's features, and must be inlined into a
    /// function that enables them.
    trait Register: Copy {
        const LANES: usize;
        unsafe fn zero() -> Self;
        unsafe fn splat(value: f32) -> Self;
        unsafe fn load(from: *const f32) -> Self;
        /// `a * b + c`, rounded once.
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
        unsafe fn add(a: Self, b: Self) -> Self;
        /// Burn's relu: the value where it is above zero or NaN, else +0.0.
        unsafe fn relu(value: Self) -> Self;
        /// The pool's step: a later `candidate` (at window position `p`) takes over from `best`
        /// where it is greater, or NaN, as Burn's pool moves.
        unsafe fn later_wins(best: Self, position: Self, candidate: Self, p: f32) -> (Self, Self);
        /// `position`, or `NO_GRADIENT` where relu made `best` zero.
        unsafe fn stopped(best: Self, position: Self) -> Self;
        /// The values and the positions (as integers) into the first `LANES` of each array.
        unsafe fn store(
            values: Self,
            positions: Self,
            value_lanes: &mut [f32; MAX_LANES],
            position_lanes: &mut [i32; MAX_LANES],
        );
    }

    #[derive(Clone, Copy)]
    struct Avx2(__m256);

    #[derive(Clone, Copy)]
    struct Avx512(__m512);

    impl Register for Avx2 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            Self(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn splat(value: f32) -> Self {
            Self(unsafe { _mm256_set1_ps(value) })
        }
        #[inline(always)]
        unsafe fn load(from: *const f32) -> Self {
            Self(unsafe { _mm256_loadu_ps(from) })
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            Self(unsafe { _mm256_add_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn relu(value: Self) -> Self {
            unsafe {
                let keep = _mm256_or_ps(
                    _mm256_cmp_ps::<_CMP_GT_OQ>(value.0, _mm256_setzero_ps()),
                    _mm256_cmp_ps::<_CMP_UNORD_Q>(value.0, value.0),
                );
                Self(_mm256_and_ps(value.0, keep))
            }
        }
        #[inline(always)]
        unsafe fn later_wins(best: Self, position: Self, candidate: Self, p: f32) -> (Self, Self) {
            unsafe {
                let takes = _mm256_or_ps(
                    _mm256_cmp_ps::<_CMP_GT_OQ>(candidate.0, best.0),
                    _mm256_cmp_ps::<_CMP_UNORD_Q>(candidate.0, candidate.0),
                );
                (
                    Self(_mm256_blendv_ps(best.0, candidate.0, takes)),
                    Self(_mm256_blendv_ps(position.0, _mm256_set1_ps(p), takes)),
                )
            }
        }
        #[inline(always)]
        unsafe fn stopped(best: Self, position: Self) -> Self {
            unsafe {
                let zeroed = _mm256_cmp_ps::<_CMP_EQ_OQ>(best.0, _mm256_setzero_ps());
                let stopped = _mm256_set1_ps(f32::from(NO_GRADIENT));
                Self(_mm256_blendv_ps(position.0, stopped, zeroed))
            }
        }
        #[inline(always)]
        unsafe fn store(
            values: Self,
            positions: Self,
            value_lanes: &mut [f32; MAX_LANES],
            position_lanes: &mut [i32; MAX_LANES],
        ) {
            unsafe {
                _mm256_storeu_ps(value_lanes.as_mut_ptr(), values.0);
                let positions = _mm256_cvtps_epi32(positions.0);
                _mm256_storeu_si256(position_lanes.as_mut_ptr().cast(), positions);
            }
        }
    }

    impl Register for Avx512 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            Self(unsafe { _mm512_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn splat(value: f32) -> Self {
            Self(unsafe { _mm512_set1_ps(value) })
        }
        #[inline(always)]
        unsafe fn load(from: *const f32) -> Self {
            Self(unsafe { _mm512_loadu_ps(from) })
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            Self(unsafe { _mm512_add_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn relu(value: Self) -> Self {
            unsafe {
                let keep = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value.0, _mm512_setzero_ps())
                    | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(value.0, value.0);
                Self(_mm512_maskz_mov_ps(keep, value.0))
            }
        }
        #[inline(always)]
        unsafe fn later_wins(best: Self, position: Self, candidate: Self, p: f32) -> (Self, Self) {
            unsafe {
                let takes = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(candidate.0, best.0)
                    | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(candidate.0, candidate.0);
                (
                    Self(_mm512_mask_blend_ps(takes, best.0, candidate.0)),
                    Self(_mm512_mask_blend_ps(takes, position.0, _mm512_set1_ps(p))),
                )
            }
        }
        #[inline(always)]
        unsafe fn stopped(best: Self, position: Self) -> Self {
            unsafe {
                let zeroed = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(best.0, _mm512_setzero_ps());
                let stopped = _mm512_set1_ps(f32::from(NO_GRADIENT));
                Self(_mm512_mask_blend_ps(zeroed, position.0, stopped))
            }
        }
        #[inline(always)]
        unsafe fn store(
            values: Self,
            positions: Self,
            value_lanes: &mut [f32; MAX_LANES],
            position_lanes: &mut [i32; MAX_LANES],
        ) {
            unsafe {
                _mm512_storeu_ps(value_lanes.as_mut_ptr(), values.0);
                let positions = _mm512_cvtps_epi32(positions.0);
                _mm512_storeu_si512(position_lanes.as_mut_ptr().cast(), positions);
            }
        }
    }

    pub(super) fn backward(
        g: &Geometry,
        x: &[f32],
        weight: &[f32],
        grad: &[f32],
        picks: &[u8],
        want_input: bool,
    ) -> BlockGradients {
        let padded = Padded::new(g);
        let pooled_len = g.out_channels * (g.out_height / 2) * (g.out_width / 2);
        assert!(
            x.len() == g.batch * g.image_len()
                && weight.len() == g.weight_len()
                && grad.len() == g.batch * pooled_len
                && picks.len() == grad.len(),
            "block gradients of mismatched shapes"
        );
        let shifted = if want_input {
            shifted_weights(g, weight)
        } else {
            Vec::new()
        };
        let mut per_image = vec![0.0f32; g.batch * g.weight_len()];
        let mut plane_sums = vec![0.0f32; g.batch * g.out_channels];
        let mut input = vec![0.0f32; if want_input { x.len() } else { 0 }];
        let images = x
            .par_chunks(g.image_len())
            .zip(grad.par_chunks(pooled_len))
            .zip(picks.par_chunks(pooled_len))
            .zip(per_image.par_chunks_mut(g.weight_len()))
            .zip(plane_sums.par_chunks_mut(g.out_channels));
        // The buffers run LANES past the padded image: a register's load or store at a row's
        // end reaches past it (the lanes beyond the kernel are dropped or add zero).
        let scratch = || Scratch {
            image: vec![0.0f32; padded.len + LANES],
            input_grad: vec![0.0f32; if want_input { padded.len + LANES } else { 0 }],
            passed: Vec::new(),
        };
        let work = |scratch: &mut Scratch, item: ImageWork| {
            let (((((image, grad), picks), weight_grad), sums), input_grad) = item;
            padded.pad(g, image, &mut scratch.image);
            let one = Image {
                grad,
                picks,
                weight_grad,
                sums,
            };
            image_backward(g, padded, &shifted, one, scratch);
            if let Some(input_grad) = input_grad {
                padded.unpad(g, &scratch.input_grad, input_grad);
            }
        };
        if want_input {
            let input_grads = input.par_chunks_mut(g.image_len()).map(Some);
            images.zip(input_grads).for_each_init(scratch, work);
        } else {
            let none = (0..g.batch).into_par_iter().map(|_| None);
            images.zip(none).for_each_init(scratch, work);
        }
        BlockGradients {
            input: want_input.then_some(input),
            weight: g.weight_grad_from(&per_image),
            plane_sums,
        }
    }

    /// Each map's weights placed as a window's region would take them from each pick: for a
    /// pick at `(py, px)` of its window, row `ki` of the kernel at the region's row `ki + py`,
    /// from lane `px` (zeros elsewhere), and all zeros for [`NO_GRADIENT`]; laid out as
    /// `[in][out][pick][kh + 1][LANES]`, so that every pick adds the same rows, with no branch.
    fn shifted_weights(g: &Geometry, weight: &[f32]) -> Vec<f32> {
        let [kh, kw] = g.kernel;
        let block = (kh + 1) * LANES;
        let mut shifted = vec![0.0f32; g.channels * g.out_channels * PICKS * block];
        for ci in 0..g.channels {
            for map in 0..g.out_channels {
                for pick in 0..NO_GRADIENT {
                    let (py, px) = (usize::from(pick / 2), usize::from(pick % 2));
                    let at = ((ci * g.out_channels + map) * PICKS + usize::from(pick)) * block;
                    for ki in 0..kh {
                        let row = &weight[((map * g.channels + ci) * kh + ki) * kw..][..kw];
                        shifted[at + (ki + py) * LANES + px..][..kw].copy_from_slice(row);
                    }
                }
            }
        }
        shifted
    }

    /// One thread's buffers: the padded image, its gradient (empty when the input's is not
    /// wanted), and a slot per window of a map, the passed picks compacted at its front as
    /// (offset of the picked output's receptive field in the padded image, gradient).
    struct Scratch {
        image: Vec<f32>,
        input_grad: Vec<f32>,
        passed: Vec<(usize, f32)>,
    }

    /// One image's slices: its pooled gradient and picks `[out, out_h / 2, out_w / 2]`, its
    /// weight-gradient slot and its per-map gradient sums.
    struct Image<'a> {
        grad: &'a [f32],
        picks: &'a [u8],
        weight_grad: &'a mut [f32],
        sums: &'a mut [f32],
    }

    /// One image's share of `backward`, as rayon hands it over.
    type ImageWork<'a> = (
        (
            (((&'a [f32], &'a [f32]), &'a [u8]), &'a mut [f32]),
            &'a mut [f32],
        ),
        Option<&'a mut [f32]>,
    );

    /// One image, with the kernel's height as a constant so that a field's rows are registers.
    fn image_backward(
        g: &Geometry,
        padded: Padded,
        shifted: &[f32],
        image: Image,
        scratch: &mut Scratch,
    ) {
        // SAFETY: `available()` held (the caller's contract), so the CPU has AVX2 and FMA; the
        // bounds are checked on entry.
        unsafe {
            match g.kernel[0] {
                1 => image_backward_with::<1>(g, padded, shifted, image, scratch),
                2 => image_backward_with::<2>(g, padded, shifted, image, scratch),
                3 => image_backward_with::<3>(g, padded, shifted, image, scratch),
                4 => image_backward_with::<4>(g, padded, shifted, image, scratch),
                5 => image_backward_with::<5>(g, padded, shifted, image, scratch),
                6 => image_backward_with::<6>(g, padded, shifted, image, scratch),
                7 => image_backward_with::<7>(g, padded, shifted, image, scratch),
                _ => unreachable!("`serves` takes kernels up to {MAX_KERNEL} high"),
            }
        }
    }

    /// The weights' gradient, map by map: the picks that passed a gradient (in the pool's
    /// row-major order, their sum the bias's share), and per input channel each field row's
    /// sum of picked inputs times gradients, `KH` rows of up to two channels in registers while
    /// the picks go by. Then the input's, when `scratch.input_grad` is not empty.
    #[target_feature(enable = "avx2,fma")]
    fn image_backward_with<const KH: usize>(
        g: &Geometry,
        padded: Padded,
        shifted: &[f32],
        image: Image,
        scratch: &mut Scratch,
    ) {
        let [kh, kw] = g.kernel;
        let (rows, cols) = (g.out_height / 2, g.out_width / 2);
        // The bounds below hold for the outputs `forward` computed: a picked output's field
        // lies inside the padded image, and a register from its rows' start inside the buffer.
        assert!(kh == KH && KH <= MAX_KERNEL && kw <= MAX_KERNEL);
        assert!(g.out_height + kh == padded.height + 1 && g.out_width + kw == padded.width + 1);
        assert!(image.weight_grad.len() == g.weight_len() && image.sums.len() == g.out_channels);
        assert!(image.grad.len() == g.out_channels * rows * cols);
        assert!(image.picks.len() == image.grad.len());
        // A fold, which the compiler vectorises, where `all` would test byte by byte.
        assert!(image.picks.iter().fold(0, |most, &pick| pick.max(most)) <= NO_GRADIENT);
        assert!(scratch.image.len() >= padded.len + LANES);
        let field_lanes = first_lanes(kw);
        let input = scratch.image.as_ptr();
        // Every window writes its slot and only a passed one advances the count: which windows
        // pass is unpredictable, so a branch on it would miss about as often as not.
        scratch.passed.resize(rows * cols, (0, 0.0));
        let negative_zero = _mm_set_ss(-0.0);
        for map in 0..g.out_channels {
            let plane = map * rows * cols..(map + 1) * rows * cols;
            let (grad, picks) = (&image.grad[plane.clone()], &image.picks[plane]);
            let mut passed = 0;
            let mut sum = _mm_setzero_ps();
            for r in 0..rows {
                let (grad, picks) = (&grad[r * cols..][..cols], &picks[r * cols..][..cols]);
                for (c, (&gradient, &pick)) in grad.iter().zip(picks).enumerate() {
                    let (y, x) = (2 * r + usize::from(pick / 2), 2 * c + usize::from(pick % 2));
                    scratch.passed[passed] = (y * padded.width + x, gradient);
                    let passes = pick != NO_GRADIENT;
                    passed += usize::from(passes);
                    // Adding -0.0 leaves every value as it is, +0.0 and -0.0 included. Chosen
                    // by a mask in a vector register: on scalars the compiler turns the mask
                    // back into a branch.
                    let keep = _mm_castsi128_ps(_mm_set1_epi32(-i32::from(passes)));
                    let addend = _mm_blendv_ps(negative_zero, _mm_set_ss(gradient), keep);
                    sum = _mm_add_ss(sum, addend);
                }
            }
            image.sums[map] = _mm_cvtss_f32(sum);
            let passed = &scratch.passed[..passed];
            // Two input channels at a time: twice the independent chains of multiply-adds
            // while the picks go by, each weight's sum still in the picks' order.
            let mut ci = 0;
            while ci < g.channels {
                let weight_grad = image.weight_grad.as_mut_ptr();
                // `sums` as `[KH][count]`, flattened: each row's sums for the channels.
                let store = |sums: &[__m256], count: usize| {
                    for (i, row_sum) in sums.iter().enumerate() {
                        let k = ((map * g.channels + ci + i % count) * KH + i / count) * kw;
                        // SAFETY: the row's kw values lie inside the map's slot (checked on
                        // entry); the masked lanes are not written.
                        unsafe { _mm256_maskstore_ps(weight_grad.add(k), field_lanes, *row_sum) };
                    }
                };
                // SAFETY (both): the fields of the passed picks lie inside the buffer (the
                // asserts above), and the channels are the image's (`ci + 1 < g.channels` for
                // two).
                let count = if ci + 1 < g.channels {
                    let sums = unsafe { field_rows::<KH, 2>(input, padded, ci, passed) };
                    store(sums.as_flattened(), 2);
                    2
                } else {
                    let sums = unsafe { field_rows::<KH, 1>(input, padded, ci, passed) };
                    store(sums.as_flattened(), 1);
                    1
                };
                ci += count;
            }
        }
        if !scratch.input_grad.is_empty() {
            input_backward::<KH>(g, padded, shifted, &image, &mut scratch.input_grad);
        }
    }

    /// A mask of a register's first `count` lanes (all bits set), the others clear.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn first_lanes(count: usize) -> __m256i {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), lane)
    }

    /// For `C` input channels from `ci`, each field row's sum of the passed picks' inputs
    /// times their gradients, in the picks' order: `[KH][C]` registers.
    ///
    /// # Safety
    /// Channels `ci` to `ci + C - 1` are the image's, and every passed pick's field in them, and
    /// a register from each of its rows' start, lies inside `input`'s buffer.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn field_rows<const KH: usize, const C: usize>(
        input: *const f32,
        padded: Padded,
        ci: usize,
        passed: &[(usize, f32)],
    ) -> [[__m256; C]; KH] {
        let mut sums = [[_mm256_setzero_ps(); C]; KH];
        for &(at, gradient) in passed {
            let gradient = _mm256_set1_ps(gradient);
            for (ki, row_sums) in sums.iter_mut().enumerate() {
                for (c, sum) in row_sums.iter_mut().enumerate() {
                    // SAFETY: the caller's contract.
                    let x =
                        unsafe { _mm256_loadu_ps(input.add(padded.offset(ci + c, ki, 0) + at)) };
                    *sum = _mm256_fmadd_ps(gradient, x, *sum);
                }
            }
        }
        sums
    }

    /// The input's gradient, window by window: the maps' picked weights times their gradients
    /// added in registers over the window's region (`KH + 1` rows of `kw + 1` columns: a pick
    /// in the window's bottom row lands a row lower, one in its right column a lane further
    /// right), then the region added to `input_grad` (the padded image's) once. Where the three
    /// ops would fold back a column buffer, this adds each window's region as it goes. A pick
    /// without a gradient adds zero times zeros and every pick adds all the region's rows, so
    /// that nothing branches on the picks (a branch would miss about every other time); the
    /// zeros added change no value of the input's gradient (which starts at +0.0 and is only
    /// added to), and the regions are added in the windows' order as before.
    /// An infinite gradient, times a region's zero weights, also spreads NaN to the rest of its
    /// region (to inputs whose gradient is then meaningless anyway).
    #[target_feature(enable = "avx2,fma")]
    fn input_backward<const KH: usize>(
        g: &Geometry,
        padded: Padded,
        shifted: &[f32],
        image: &Image,
        input_grad: &mut [f32],
    ) {
        let cols = g.out_width / 2;
        assert!(shifted.len() == g.channels * g.out_channels * PICKS * (KH + 1) * LANES);
        input_grad.fill(0.0);
        for ci in 0..g.channels {
            for r in 0..g.out_height / 2 {
                // Two windows at a time: twice the independent chains of multiply-adds.
                let mut c = 0;
                while c + 2 <= cols {
                    windows::<KH, 2>(g, padded, shifted, image, input_grad, [ci, r, c]);
                    c += 2;
                }
                if c < cols {
                    windows::<KH, 1>(g, padded, shifted, image, input_grad, [ci, r, c]);
                }
            }
        }
    }

    /// `W` neighbouring windows of `input_backward`, from the one at `[ci, r, c]`: their regions
    /// summed over the maps in registers, then added to `input_grad` window by window.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn windows<const KH: usize, const W: usize>(
        g: &Geometry,
        padded: Padded,
        shifted: &[f32],
        image: &Image,
        input_grad: &mut [f32],
        [ci, r, c]: [usize; 3],
    ) {
        let (rows, cols, kw) = (g.out_height / 2, g.out_width / 2, g.kernel[1]);
        // With `image_backward_with`'s asserts (a window's region lies inside the padded image),
        // these keep the stores below inside `input_grad`.
        assert!(ci < g.channels && r < rows && c + W <= cols);
        assert!(input_grad.len() >= padded.len + LANES);
        let region_lanes = _mm256_castsi256_ps(first_lanes(kw + 1));
        let block = (KH + 1) * LANES;
        let mut regions = [[_mm256_setzero_ps(); MAX_KERNEL + 1]; W];
        for map in 0..g.out_channels {
            let at = (map * rows + r) * cols + c;
            for (window, region) in regions.iter_mut().enumerate() {
                let pick = image.picks[at + window];
                let passes = pick != NO_GRADIENT;
                // Zero by a mask in a vector register, where the compiler keeps it a mask.
                let keep = _mm256_castsi256_ps(_mm256_set1_epi32(-i32::from(passes)));
                let gradient = _mm256_and_ps(_mm256_set1_ps(image.grad[at + window]), keep);
                let weights = ((ci * g.out_channels + map) * PICKS + usize::from(pick)) * block;
                let weights = &shifted[weights..][..block];
                for (row, chunk) in region.iter_mut().zip(weights.chunks_exact(LANES)) {
                    // SAFETY: the chunk holds a register's eight values.
                    let weight = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
                    *row = _mm256_fmadd_ps(gradient, weight, *row);
                }
            }
        }
        let input_grad = input_grad.as_mut_ptr();
        for (window, region) in regions.iter().enumerate() {
            for (row, sum) in region.iter().enumerate().take(KH + 1) {
                // The lanes past the region hold zeros times the gradients (NaN for an
                // infinite one): cleared, so that they add +0.0 to the inputs beyond.
                let sum = _mm256_and_ps(*sum, region_lanes);
                // SAFETY: the region's rows lie inside the padded image (`forward`'s outputs,
                // `image_backward_with`'s asserts), and a register from a row's start inside
                // the buffer (the asserts above).
                unsafe {
                    let to = input_grad.add(padded.offset(ci, 2 * r + row, 2 * (c + window)));
                    _mm256_storeu_ps(to, _mm256_add_ps(_mm256_loadu_ps(to), sum));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(x: [usize; 4], w: [usize; 4], padding: [usize; 2]) -> Geometry {
        Geometry::new(&x, &w, padding)
    }

    /// On a CPU with AVX-512, C3's forward pass runs at AVX-512's width; it must give AVX2's
    /// bits (which CPUs without it run, and `conv_block`'s test compares with the three ops).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn both_widths_give_the_same_bits() {
        use super::x86::{Width, forward};
        if !(available() && std::arch::is_x86_feature_detected!("avx512f")) {
            return;
        }
        let values = |n: usize, seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    let h = (i as u32 ^ seed)
                        .wrapping_mul(2_654_435_761)
                        .rotate_left(13);
                    (h % 2001) as f32 / 1000.0 - 1.0
                })
                .collect()
        };
        for (maps, padding) in [(16, [0, 0]), (9, [1, 1]), (12, [2, 0])] {
            let g = geometry([3, 6, 14, 14], [maps, 6, 5, 5], padding);
            let x = values(g.batch * g.image_len(), 1);
            let (w, b) = (values(g.weight_len(), 2), values(maps, 3));
            let wide = forward(&g, &x, &w, &b, Width::Avx512);
            let narrow = forward(&g, &x, &w, &b, Width::Avx2);
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&wide.0), bits(&narrow.0), "{maps} maps: values");
            assert_eq!(wide.1, narrow.1, "{maps} maps: picks");
            assert!(wide.1.contains(&NO_GRADIENT) && wide.1.contains(&3));
        }
    }

    #[test]
    fn serves_lenets_blocks_and_refuses_what_gemm_sums_otherwise_or_kernels_over_7() {
        assert!(serves(&geometry([64, 1, 28, 28], [6, 1, 5, 5], [2, 2])));
        assert!(serves(&geometry([64, 6, 14, 14], [16, 6, 5, 5], [0, 0])));
        // One map (gemm's gemv), a patch of two (gevv), a patch over 512 (gemm's blocks),
        // more maps than two registers, outputs that windows do not tile, and kernels whose
        // window regions are wider or higher than eight.
        assert!(!serves(&geometry([4, 6, 14, 14], [1, 6, 5, 5], [0, 0])));
        assert!(!serves(&geometry([4, 2, 14, 14], [6, 2, 1, 1], [0, 0])));
        assert!(!serves(&geometry([4, 21, 14, 14], [6, 21, 5, 5], [0, 0])));
        assert!(!serves(&geometry([4, 6, 14, 14], [17, 6, 5, 5], [0, 0])));
        assert!(!serves(&geometry([4, 6, 15, 14], [16, 6, 5, 5], [0, 0])));
        assert!(serves(&geometry([4, 2, 14, 14], [6, 2, 7, 7], [0, 0])));
        assert!(!serves(&geometry([4, 2, 14, 14], [6, 2, 3, 8], [0, 0])));
        assert!(!serves(&geometry([4, 2, 14, 14], [6, 2, 8, 3], [0, 0])));
    }
}

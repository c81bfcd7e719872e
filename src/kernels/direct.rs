//! The forward pass of a convolution block (stride-1 convolution, bias, relu, 2x2 max pool) as
//! one direct convolution whose outputs never leave the registers before they are pooled.
//!
//! Why: im2col + gemm, then relu, then the pool, is four passes over C1's 1.2 MB output at batch
//! 64, each with its allocation, autodiff node and rayon hand-over; with 6 and 16 output maps the
//! products are too small for gemm to reach its speed. Here the output maps sit in the lanes of
//! AVX2 registers (8 maps a register, so C1 takes one and C3 two), a tile is one or two pool
//! windows, and each of its outputs is a chain of fused multiply-adds over the weights in
//! im2col's row order, started from zero: the order gemm's microkernel sums them in, so the
//! outputs equal the unfused path's to the bit and no run's figures change (the tests compare
//! every value and gradient). Bias, relu and the window's pick follow in the registers, and the
//! pick's position is kept for the backward pass.
//!
//! CPUs without AVX2 and FMA take the unfused path ([`available`]), since a chain rounded
//! differently would change the bits.

use super::im2col::Geometry;

/// A window position (as [`forward`] records them) whose value relu made zero: its gradient is
/// zero, wherever it came from.
pub(super) const NO_GRADIENT: u8 = 4;

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

/// Whether the kernel serves a convolution of this shape, bit for bit: up to 16 output maps
/// (two registers) and outputs that 2x2 windows tile; and the shapes for which gemm sums as the
/// kernel does, in one chain of multiply-adds over the whole patch. gemm cuts a patch longer
/// than 512 into blocks and adds their sums (at 512 for small products, at no less for large
/// ones: `gemm-common`'s `gemm.rs` and `cache.rs`), and takes other routes for a single output
/// map (gemv) or a patch of one or two (gevv).
pub(super) fn serves(g: &Geometry) -> bool {
    (2..=16).contains(&g.out_channels)
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
        avx2::forward(g, x, weight, bias)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, x, weight, bias);
        unreachable!("the direct kernel is only offered where `available()`")
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use rayon::prelude::*;

    use crate::kernels::direct::NO_GRADIENT;
    use crate::kernels::im2col::Geometry;

    const LANES: usize = 8;

    /// The layout the kernel reads: the weights transposed to `[patch, maps rounded up to 8]`
    /// (zeros in the extra lanes), the bias likewise, and each patch row's offset in a padded
    /// image.
    struct Plan {
        weights: Vec<f32>,
        bias: Vec<f32>,
        offsets: Vec<usize>,
        padded_height: usize,
        padded_width: usize,
    }

    impl Plan {
        fn new(g: &Geometry, weight: &[f32], bias: &[f32]) -> Self {
            let maps = g.out_channels.div_ceil(LANES) * LANES;
            let mut weights = vec![0.0f32; g.patch() * maps];
            for (map, row) in weight.chunks(g.patch()).enumerate() {
                for (k, w) in row.iter().enumerate() {
                    weights[k * maps + map] = *w;
                }
            }
            let mut padded_bias = vec![0.0f32; maps];
            padded_bias[..g.out_channels].copy_from_slice(bias);
            let padded_height = g.height + 2 * g.padding[0];
            let padded_width = g.width + 2 * g.padding[1];
            let mut offsets = vec![0; g.patch()];
            g.rows(|row, ci, ki, kj| {
                offsets[row] = (ci * padded_height + ki) * padded_width + kj;
            });
            Self {
                weights,
                bias: padded_bias,
                offsets,
                padded_height,
                padded_width,
            }
        }

        fn padded_len(&self, g: &Geometry) -> usize {
            g.channels * self.padded_height * self.padded_width
        }

        /// Copies `image` into `padded`, zeros around it.
        fn pad(&self, g: &Geometry, image: &[f32], padded: &mut [f32]) {
            let [ph, pw] = g.padding;
            for (ci, plane) in image.chunks(g.height * g.width).enumerate() {
                for (y, row) in plane.chunks(g.width).enumerate() {
                    let start = (ci * self.padded_height + y + ph) * self.padded_width + pw;
                    padded[start..][..g.width].copy_from_slice(row);
                }
            }
        }
    }

    pub(super) fn forward(
        g: &Geometry,
        x: &[f32],
        weight: &[f32],
        bias: &[f32],
    ) -> (Vec<f32>, Vec<u8>) {
        let plan = Plan::new(g, weight, bias);
        let plane = (g.out_height / 2) * (g.out_width / 2);
        let mut pooled = vec![0.0f32; g.batch * g.out_channels * plane];
        let mut picks = vec![0u8; pooled.len()];
        pooled
            .par_chunks_mut(g.out_channels * plane)
            .zip(picks.par_chunks_mut(g.out_channels * plane))
            .zip(x.par_chunks(g.image_len()))
            .for_each_init(
                // The padding stays zero from image to image: only the inside is overwritten.
                || vec![0.0f32; plan.padded_len(g)],
                |padded, ((pooled, picks), image)| {
                    plan.pad(g, image, padded);
                    // SAFETY: `available()` held (the caller's contract), so the CPU has AVX2
                    // and FMA; the slices have the lengths `image` documents.
                    unsafe {
                        if g.out_channels <= LANES {
                            image_blocks::<1>(g, &plan, padded, pooled, picks);
                        } else {
                            image_blocks::<2>(g, &plan, padded, pooled, picks);
                        }
                    }
                },
            );
        (pooled, picks)
    }

    /// One image: every pool window of every map, `V` registers of maps at a time, two windows
    /// side by side where there is one register (eight chains in flight cover the FMA units'
    /// latency), else one. `padded` holds the image as `Plan::pad` lays it out; `pooled` and
    /// `picks` the image's `[out, out_h / 2, out_w / 2]`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn image_blocks<const V: usize>(
        g: &Geometry,
        plan: &Plan,
        padded: &[f32],
        pooled: &mut [f32],
        picks: &mut [u8],
    ) {
        let (rows, cols) = (g.out_height / 2, g.out_width / 2);
        assert!(padded.len() >= plan.padded_len(g));
        assert_eq!(plan.weights.len(), g.patch() * V * LANES);
        assert!(pooled.len() >= g.out_channels * rows * cols && picks.len() >= pooled.len());
        for r in 0..rows {
            let mut c = 0;
            while c < cols {
                let pair = V == 1 && c + 1 < cols;
                // SAFETY: the windows at (r, c) and (r, c + 1) when `pair` are inside the
                // output, so every input they read is inside `padded` (checked above).
                let windows = unsafe {
                    if pair {
                        tile::<V, 2>(plan, padded, r, c)
                    } else {
                        let [one] = tile::<V, 1>(plan, padded, r, c);
                        [one, one]
                    }
                };
                let count = if pair { 2 } else { 1 };
                for (w, (values, positions)) in windows.iter().take(count).enumerate() {
                    for v in 0..V {
                        let mut value_lanes = [0.0f32; LANES];
                        let mut position_lanes = [0i32; LANES];
                        // SAFETY: each array holds one register's eight lanes.
                        unsafe {
                            _mm256_storeu_ps(value_lanes.as_mut_ptr(), values[v]);
                            _mm256_storeu_si256(
                                position_lanes.as_mut_ptr().cast(),
                                _mm256_cvtps_epi32(positions[v]),
                            );
                        }
                        let maps = (v * LANES)..g.out_channels.min((v + 1) * LANES);
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
    /// The CPU has AVX2 and FMA, and windows `(r, c)` to `(r, c + W - 1)` are inside the output.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const V: usize, const W: usize>(
        plan: &Plan,
        padded: &[f32],
        r: usize,
        c: usize,
    ) -> [([__m256; V], [__m256; V]); W] {
        let width = plan.padded_width;
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
        let mut sums = [[[_mm256_setzero_ps(); V]; 4]; W];
        for (k, &offset) in plan.offsets.iter().enumerate() {
            let mut w_k = [_mm256_setzero_ps(); V];
            for (v, w) in w_k.iter_mut().enumerate() {
                // SAFETY: `weights` holds `patch` rows of V * 8 values.
                *w = unsafe { _mm256_loadu_ps(weights.add((k * V + v) * LANES)) };
            }
            for w in 0..W {
                for p in 0..4 {
                    // SAFETY: a receptive field of an output inside the output lies inside the
                    // padded image (the caller's contract).
                    let x = unsafe { _mm256_broadcast_ss(&*input.add(corners[w][p] + offset)) };
                    for v in 0..V {
                        sums[w][p][v] = _mm256_fmadd_ps(w_k[v], x, sums[w][p][v]);
                    }
                }
            }
        }
        let zero = _mm256_setzero_ps();
        let mut out = [([zero; V], [zero; V]); W];
        for w in 0..W {
            for v in 0..V {
                // SAFETY: the padded bias holds V * 8 values.
                let bias = unsafe { _mm256_loadu_ps(plan.bias.as_ptr().add(v * LANES)) };
                let mut best = relu(_mm256_add_ps(sums[w][0][v], bias));
                let mut position = zero;
                for (p, sum) in sums[w].iter().enumerate().skip(1) {
                    let candidate = relu(_mm256_add_ps(sum[v], bias));
                    // Burn's pool moves to a later value that is greater, or NaN.
                    let takes = _mm256_or_ps(
                        _mm256_cmp_ps::<_CMP_GT_OQ>(candidate, best),
                        _mm256_cmp_ps::<_CMP_UNORD_Q>(candidate, candidate),
                    );
                    best = _mm256_blendv_ps(best, candidate, takes);
                    position = _mm256_blendv_ps(position, _mm256_set1_ps(p as f32), takes);
                }
                let zeroed = _mm256_cmp_ps::<_CMP_EQ_OQ>(best, zero);
                out[w].0[v] = best;
                out[w].1[v] =
                    _mm256_blendv_ps(position, _mm256_set1_ps(f32::from(NO_GRADIENT)), zeroed);
            }
        }
        out
    }

    /// Burn's relu: the value where it is above zero or NaN, else +0.0.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn relu(value: __m256) -> __m256 {
        let keep = _mm256_or_ps(
            _mm256_cmp_ps::<_CMP_GT_OQ>(value, _mm256_setzero_ps()),
            _mm256_cmp_ps::<_CMP_UNORD_Q>(value, value),
        );
        _mm256_and_ps(value, keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(x: [usize; 4], w: [usize; 4], padding: [usize; 2]) -> Geometry {
        Geometry::new(&x, &w, padding)
    }

    #[test]
    fn serves_lenets_blocks_and_refuses_what_gemm_sums_otherwise() {
        assert!(serves(&geometry([64, 1, 28, 28], [6, 1, 5, 5], [2, 2])));
        assert!(serves(&geometry([64, 6, 14, 14], [16, 6, 5, 5], [0, 0])));
        // One map (gemm's gemv), a patch of two (gevv), a patch over 512 (gemm's blocks),
        // more maps than two registers, and outputs that windows do not tile.
        assert!(!serves(&geometry([4, 6, 14, 14], [1, 6, 5, 5], [0, 0])));
        assert!(!serves(&geometry([4, 2, 14, 14], [6, 2, 1, 1], [0, 0])));
        assert!(!serves(&geometry([4, 21, 14, 14], [6, 21, 5, 5], [0, 0])));
        assert!(!serves(&geometry([4, 6, 14, 14], [17, 6, 5, 5], [0, 0])));
        assert!(!serves(&geometry([4, 6, 15, 14], [16, 6, 5, 5], [0, 0])));
    }
}

//! The layout side of the convolutions in [`super::conv`]: a convolution's sizes, and an
//! image's receptive fields laid out as the columns of a matrix (im2col) and folded back
//! (col2im). The products over those columns are in `conv.rs`, the matrix views in `gemm.rs`.

/// The sizes of one convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub(super) batch: usize,
    pub(super) channels: usize,
    pub(super) height: usize,
    pub(super) width: usize,
    pub(super) out_channels: usize,
    pub(super) kernel: [usize; 2],
    pub(super) padding: [usize; 2],
    pub(super) out_height: usize,
    pub(super) out_width: usize,
}

impl Geometry {
    /// The sizes of a convolution of NCHW `x` by `w` `[out, in, kh, kw]` with `padding`.
    pub(super) fn new(x: &[usize], w: &[usize], padding: [usize; 2]) -> Self {
        assert_eq!(
            x[1], w[1],
            "conv2d: input channels differ from the weight's"
        );
        let out =
            |size: usize, kernel: usize, pad: usize| (size + 2 * pad + 1).saturating_sub(kernel);
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

    /// Rows of an image's column matrix: one per input channel and kernel position.
    pub(super) fn patch(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    pub(super) fn positions(&self) -> usize {
        self.out_height * self.out_width
    }

    pub(super) fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub(super) fn output_len(&self) -> usize {
        self.out_channels * self.positions()
    }

    pub(super) fn weight_len(&self) -> usize {
        self.out_channels * self.patch()
    }

    /// Whether there is anything to compute: no empty dimension anywhere.
    pub(super) fn is_empty(&self) -> bool {
        self.batch == 0 || self.image_len() == 0 || self.output_len() == 0 || self.patch() == 0
    }

    /// For kernel position `(ki, kj)`: the output rows whose input row is inside the image,
    /// and the output columns likewise.
    pub(super) fn valid(
        &self,
        ki: usize,
        kj: usize,
    ) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
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

    /// Calls `each(row, ci, ki, kj)` for every row of an image's column matrix: input
    /// channel `ci` at kernel position `(ki, kj)`.
    pub(super) fn rows(&self, mut each: impl FnMut(usize, usize, usize, usize)) {
        let [kh, kw] = self.kernel;
        for ci in 0..self.channels {
            for ki in 0..kh {
                for kj in 0..kw {
                    each((ci * kh + ki) * kw + kj, ci, ki, kj);
                }
            }
        }
    }

    /// Lays out `image`'s receptive fields as `columns` `[patch, positions]`.
    pub(super) fn im2col(&self, image: &[f32], columns: &mut [f32]) {
        if self.padding != [0, 0] {
            // Positions in the padding read zeros; the rest is overwritten below.
            columns.fill(0.0);
        }
        let (ow, [ph, pw]) = (self.out_width, self.padding);
        self.rows(|row, ci, ki, kj| {
            let (rows, cols) = self.valid(ki, kj);
            let dst = &mut columns[row * self.positions()..][..self.positions()];
            for y in rows {
                let source = &image[(ci * self.height + y + ki - ph) * self.width..]
                    [cols.start + kj - pw..][..cols.len()];
                for (d, s) in dst[y * ow + cols.start..][..cols.len()]
                    .iter_mut()
                    .zip(source)
                {
                    *d = *s;
                }
            }
        });
    }

    /// Adds each entry of `columns` `[patch, positions]` onto the input position it was
    /// laid out from, in `image`.
    pub(super) fn col2im(&self, columns: &[f32], image: &mut [f32]) {
        let (ow, [ph, pw]) = (self.out_width, self.padding);
        self.rows(|row, ci, ki, kj| {
            let (rows, cols) = self.valid(ki, kj);
            let source = &columns[row * self.positions()..][..self.positions()];
            for y in rows {
                let target = &mut image[(ci * self.height + y + ki - ph) * self.width..]
                    [cols.start + kj - pw..][..cols.len()];
                for (t, s) in target.iter_mut().zip(&source[y * ow + cols.start..]) {
                    *t += s;
                }
            }
        });
    }

    /// Whether the kernel covers the whole unpadded input, as in C5: then each image's
    /// columns are the image itself and the convolution is a dense layer, best done as one
    /// product over the batch (per image it is a matrix-vector product, which gemm does
    /// poorly: C5 took 11 ms per backward pass that way at batch 64).
    pub(super) fn is_dense(&self) -> bool {
        self.padding == [0, 0] && self.kernel == [self.height, self.width]
    }
}

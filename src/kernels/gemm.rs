//! Matrix views over f32 slices and their product through the `gemm` crate, the one Burn's
//! flex backend uses: written here because the convolutions multiply strided views of
//! per-thread buffers, which Burn's tensors would have to copy first.

/// A read-only matrix view: `rows x cols`, element `(r, c)` at `r * row_stride + c *
/// col_stride`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// The row-major `rows x cols` matrix at the start of `data`.
    pub(super) fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix larger than its data");
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    pub(super) fn transposed(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `dst` (row-major, `lhs.rows x rhs.cols`) = lhs x rhs, on all threads when `parallel`,
/// else on the calling thread (for callers that already spread images over threads).
pub(super) fn multiply(dst: &mut [f32], lhs: Matrix, rhs: Matrix, parallel: bool) {
    assert_eq!(lhs.cols, rhs.rows, "matrix product of mismatched shapes");
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    assert!(dst.len() >= m * n, "product larger than its destination");
    if m == 0 || n == 0 {
        return;
    }
    // The views were checked against their data when made (`Matrix::rows`, and a transpose
    // swaps strides and sizes together), so every index gemm computes is in bounds.
    // SAFETY: dst holds m x n row-major values, lhs and rhs index only inside their slices
    // (checked above), dst does not alias them (it is a distinct &mut), and gemm writes only
    // inside dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            if parallel {
                gemm::Parallelism::Rayon(0)
            } else {
                gemm::Parallelism::None
            },
        );
    }
}

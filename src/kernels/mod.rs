//! LeNet's own kernels on the flex backend: its stride-1 convolutions (im2col + gemm) and its
//! 2x2 max pools, as Burn backend extensions with their own backward passes. Each public
//! function takes the fast path for f32 tensors on flex and falls back to Burn's own op on
//! every other backend, dtype or setting, so the model calls them unconditionally.
//!
//! - [`conv`]: the convolution and its autodiff glue, over [`im2col`]'s layout and [`gemm`]'s
//!   products;
//! - [`pool`]: the max pool and its backward pass.

pub mod conv;
#[cfg(feature = "flex")]
mod gemm;
#[cfg(feature = "flex")]
mod im2col;
pub mod pool;

pub use conv::{conv2d, conv2d_stride1};
pub use pool::max_pool;

/// Whether `x` is an f32 tensor on flex (with or without autodiff): where these kernels apply.
#[cfg(feature = "flex")]
pub(crate) fn is_flex_f32(x: &burn::prelude::Tensor<4>) -> bool {
    matches!(
        x.device().without_autodiff().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    ) && x.dtype() == burn::tensor::DType::F32
}

/// A contiguous f32 flex tensor of shape `dims` holding `values`.
#[cfg(feature = "flex")]
fn flex_tensor(values: Vec<f32>, dims: &[usize]) -> burn::backend::flex::FlexTensor {
    use burn::backend::flex::{FlexTensor, Layout};
    use burn::tensor::{Bytes, DType, Shape};
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(Shape::from(dims.to_vec())),
        DType::F32,
    )
}

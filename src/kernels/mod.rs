//! LeNet's own kernels on the CPU backends (flex and ndarray): its stride-1 convolutions, as
//! im2col and gemm, its 2x2 max pools, its tanh and the 1998 network's subsampling, as Burn
//! backend extensions with their own backward passes.
//! Each public function takes the fast path for f32 tensors on a CPU backend and falls back to
//! Burn's own op on every other backend, dtype or setting, so the model calls them
//! unconditionally. [`cpu`] is how one kernel reads and writes both backends' tensors.
//!
//! - [`conv`]: the convolution and its autodiff glue, over [`im2col`]'s layout and [`gemm`]'s
//!   products;
//! - [`pool`]: the max pool and its backward pass;
//! - [`conv_block`]: a convolution, relu and max pool as one op, over [`direct`]'s kernels,
//!   forward and backward;
//! - [`tanh`]: tanh and the 1998 network's scaled tanh, vectorised;
//! - [`subsample`]: the 1998 network's trainable subsampling.

pub mod conv;
pub mod conv_block;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod direct;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod gemm;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod im2col;
pub mod pool;
pub mod subsample;
pub mod tanh;

pub use conv::{conv2d, conv2d_stride1};
pub use conv_block::conv_relu_max_pool;
pub use pool::max_pool;
pub use subsample::subsample;
pub use tanh::scaled_tanh;

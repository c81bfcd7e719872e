//! The CPU backends the kernels serve, Flex and NdArray, seen the one way the kernels need them:
//! an f32 tensor's shape and its values as a contiguous slice, and a tensor made from values.
//! The kernels themselves only ever see slices, so one kernel serves both backends.

use burn::backend::Backend;
use burn::backend::tensor::FloatTensor;

/// A CPU backend whose f32 tensors the kernels read and write as slices.
pub trait CpuF32: Backend {
    fn dims(tensor: &FloatTensor<Self>) -> Vec<usize>;

    /// Calls `f` with the tensor's values, row-major (copied first if the tensor is a strided
    /// view).
    fn with_values<R>(tensor: &FloatTensor<Self>, f: impl FnOnce(&[f32]) -> R) -> R;

    /// A contiguous tensor of shape `dims` holding `values`.
    fn tensor(values: Vec<f32>, dims: &[usize]) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
impl CpuF32 for burn::backend::Flex {
    fn dims(tensor: &FloatTensor<Self>) -> Vec<usize> {
        tensor.layout().shape().to_vec()
    }

    fn with_values<R>(tensor: &FloatTensor<Self>, f: impl FnOnce(&[f32]) -> R) -> R {
        f(tensor.to_contiguous().storage())
    }

    fn tensor(values: Vec<f32>, dims: &[usize]) -> FloatTensor<Self> {
        use burn::backend::flex::{FlexTensor, Layout};
        use burn::tensor::{Bytes, DType, Shape};
        FlexTensor::new(
            Bytes::from_elems(values),
            Layout::contiguous(Shape::from(dims.to_vec())),
            DType::F32,
        )
    }
}

#[cfg(feature = "ndarray")]
#[allow(deprecated)] // ndarray stays available: docs/design.md#backends says why
impl CpuF32 for burn::backend::NdArray {
    fn dims(tensor: &FloatTensor<Self>) -> Vec<usize> {
        match tensor {
            burn::backend::ndarray::NdArrayTensor::F32(storage) => storage.shape().to_vec(),
            _ => panic!("the LeNet kernels take f32 tensors only"),
        }
    }

    fn with_values<R>(tensor: &FloatTensor<Self>, f: impl FnOnce(&[f32]) -> R) -> R {
        let burn::backend::ndarray::NdArrayTensor::F32(storage) = tensor else {
            panic!("the LeNet kernels take f32 tensors only");
        };
        let view = storage.view();
        match view.as_slice() {
            Some(values) => f(values),
            None => f(&view.iter().copied().collect::<Vec<f32>>()),
        }
    }

    fn tensor(values: Vec<f32>, dims: &[usize]) -> FloatTensor<Self> {
        burn::backend::ndarray::NdArrayTensor::from_data(burn::tensor::TensorData::new(
            values,
            dims.to_vec(),
        ))
    }
}

/// Whether `x` is an f32 tensor on a backend these kernels serve (with or without autodiff).
pub(crate) fn serves<const D: usize>(x: &burn::prelude::Tensor<D>) -> bool {
    use burn::backend::DispatchDevice;
    let cpu = match x.device().without_autodiff().as_dispatch() {
        #[cfg(feature = "flex")]
        DispatchDevice::Flex(_) => true,
        #[cfg(feature = "ndarray")]
        DispatchDevice::NdArray(_) => true,
        #[allow(unreachable_patterns)]
        _ => false,
    };
    cpu && x.dtype() == burn::tensor::DType::F32
}

/// The autodiff devices of the CPU backends compiled in, for the kernels' tests.
#[cfg(test)]
pub(crate) fn devices() -> Vec<burn::prelude::Device> {
    [
        #[cfg(feature = "flex")]
        burn::prelude::Device::flex().autodiff(),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // as above
        burn::prelude::Device::ndarray().autodiff(),
    ]
    .into_iter()
    .collect()
}

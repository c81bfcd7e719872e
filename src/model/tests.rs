//! The model's shapes, parameter counts and layer table, checked on every CPU backend.

use super::*;
use crate::device::BackendKind;

fn device() -> Device {
    BackendKind::preferred().device().unwrap()
}

#[test]
fn default_model_has_the_designs_parameter_count() {
    let model = LeNet5Config::new().init(&device());
    assert_eq!(model.num_params(), 61_706);
    let per_layer = [
        model.c1.num_params(),
        model.c3.num_params(),
        model.c5.num_params(),
        model.f6.num_params(),
        model.f7.as_ref().unwrap().num_params(),
    ];
    assert_eq!(per_layer, [156, 2_416, 48_120, 10_164, 850]);
}

#[test]
fn pooling_and_activation_add_no_parameters() {
    for pooling in [PoolingKind::Max, PoolingKind::Avg] {
        for activation in [ActivationKind::Relu, ActivationKind::Tanh] {
            let model = LeNet5Config::new()
                .with_pooling(pooling)
                .with_activation(activation)
                .init(&device());
            assert_eq!(model.num_params(), 61_706, "{pooling:?} {activation:?}");
        }
    }
}

#[test]
fn each_layer_has_the_designs_output_shape() {
    let model = LeNet5Config::new().init(&device());
    let shapes = model.layer_shapes(&device());
    let expected: Vec<(&str, Vec<usize>)> = vec![
        ("c1", vec![6, 28, 28]),
        ("s2", vec![6, 14, 14]),
        ("c3", vec![16, 10, 10]),
        ("s4", vec![16, 5, 5]),
        ("c5", vec![120, 1, 1]),
        ("f6", vec![84]),
        ("f7", vec![10]),
    ];
    assert_eq!(shapes, expected);
}

#[test]
fn layer_table_matches_the_design() {
    let model = LeNet5Config::new().init(&device());
    let rows: Vec<(&str, String, usize)> = model
        .layers(&device())
        .into_iter()
        .map(|l| (l.name, l.kind, l.parameters))
        .collect();
    let expected = [
        ("c1", "conv 5x5, 1->6, padding 2, relu", 156),
        ("s2", "max pool 2x2", 0),
        ("c3", "conv 5x5, 6->16, relu", 2_416),
        ("s4", "max pool 2x2", 0),
        ("c5", "conv 5x5, 16->120, relu", 48_120),
        ("f6", "dense 120->84, relu", 10_164),
        ("f7", "dense 84->10", 850),
    ];
    let expected: Vec<(&str, String, usize)> = expected
        .into_iter()
        .map(|(n, k, p)| (n, k.to_string(), p))
        .collect();
    assert_eq!(rows, expected);
}

fn lecun98() -> LeNet5Config {
    LeNet5Config::for_variant(Variant::Lecun98)
}

#[test]
fn lecun98_has_the_papers_trainable_parameters() {
    let model = lecun98().init(&device());
    let rows: Vec<(&str, usize)> = model
        .layers(&device())
        .into_iter()
        .map(|l| (l.name, l.parameters))
        .collect();
    assert_eq!(
        rows,
        [
            ("c1", 156),
            ("s2", 12),
            ("c3", 1_516),
            ("s4", 32),
            ("c5", 48_120),
            ("f6", 10_164),
            ("f7", 0),
        ]
    );
    assert_eq!(model.trainable_params(), 60_000);
    let shapes: Vec<Vec<usize>> = model
        .layer_shapes(&device())
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let modern: Vec<Vec<usize>> = LeNet5Config::new()
        .init(&device())
        .layer_shapes(&device())
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(shapes, modern);
}

#[test]
fn c3_weights_outside_table_one_get_no_gradient() {
    let device = device().autodiff();
    device.seed(3);
    let model = lecun98().init(&device);
    let images = Tensor::<4>::random(
        [4, 1, 28, 28],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let grads = model.forward(images).sum().backward();
    let grad: Vec<f32> = model
        .c3
        .weight
        .grad(&grads)
        .unwrap()
        .into_data()
        .iter::<f32>()
        .collect();
    let mask: Vec<f32> = lecun98::c3_mask(&device.clone().inner())
        .into_data()
        .iter::<f32>()
        .collect();
    for (g, m) in grad.iter().zip(&mask) {
        if *m == 0.0 {
            assert_eq!(*g, 0.0);
        }
    }
    let connected = grad
        .iter()
        .zip(&mask)
        .filter(|(g, m)| **m == 1.0 && **g != 0.0);
    assert!(connected.count() > 1_000, "connected weights learn");
}

#[test]
fn forward_gives_logits_per_image() {
    let model = LeNet5Config::new().init(&device());
    let logits = model.forward(Tensor::zeros([3, 1, 28, 28], &device()));
    assert_eq!(logits.dims(), [3, 10]);
}

#[test]
fn activation_changes_the_output() {
    let device = device();
    device.seed(1);
    let relu_model = LeNet5Config::new().init(&device);
    let mut tanh_model = relu_model.clone();
    tanh_model.activation = ActivationKind::Tanh;
    let images = Tensor::<4>::ones([1, 1, 28, 28], &device);
    let a = relu_model.forward(images.clone()).into_data();
    let b = tanh_model.forward(images).into_data();
    assert_ne!(a, b);
}

#[test]
fn observed_and_unobserved_forward_passes_agree_to_the_bit() {
    // Unobserved, C1+relu+S2 and C3+relu+S4 run fused; observed, as separate ops.
    let device = device();
    device.seed(5);
    let model = LeNet5Config::new().init(&device);
    let images = Tensor::<4>::random(
        [4, 1, 28, 28],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let bits = |t: Tensor<2>| -> Vec<u32> {
        let values = t.into_data().try_to_vec::<f32>().unwrap();
        values.iter().map(|v| v.to_bits()).collect()
    };
    let mut shown = Vec::new();
    let observed = model.forward_observed(images.clone(), |layer, _| shown.push(layer));
    assert_eq!(shown, ["c1", "s2", "c3", "s4", "c5", "f6", "f7"]);
    assert_eq!(bits(model.forward(images)), bits(observed));
}

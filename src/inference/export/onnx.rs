//! The model as an ONNX graph (opset 17) with its weights, for ONNX Runtime, onnxruntime-web,
//! OpenCV's dnn or TensorRT.
//!
//! The graph takes `pixels`, `[batch, 1, 28, 28]` float in 0..1 (light ink on black, as MNIST
//! and as `lenet predict --save-input` writes them), normalises them itself, and gives `logits`
//! `[batch, classes]` and, when asked, `probabilities` (their softmax). The batch size is free.
//! Both networks are written with standard operators: the modern one as Conv, Relu or Tanh,
//! MaxPool or AveragePool and Gemm; the 1998 one with its input scaling and padding, the C3
//! connection table folded into C3's weights, the trainable subsampling as a depthwise
//! convolution, the scaled tanh as Mul-Tanh-Mul and the RBF units as distances to the
//! prototypes.

use prost::Message;

use super::onnx_proto::*;
use crate::input::{IMAGE_SIDE, PIXEL_MEAN, PIXEL_STD};
use crate::model::lecun98::{self, RBF_SHARPNESS, TrainableSubsampling};
use crate::model::{ActivationKind, LeNet5, Subsampling, Variant};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

/// The operator set the graph is written against, and the IR version that goes with it.
pub const OPSET: i64 = 17;
const IR_VERSION: i64 = 8;

/// The model as an ONNX file. `class_names` go into the file's metadata (`classes`, a JSON
/// list); `probabilities` adds the softmax output.
pub fn to_onnx(model: &LeNet5, class_names: &[String], probabilities: bool) -> Vec<u8> {
    let mut graph = Graph::default();
    let logits = graph.network(model);
    let classes = class_names.len() as i64;
    let mut outputs = vec![tensor_info("logits", classes, "class scores (logits)")];
    graph.alias(&logits, "logits");
    if probabilities {
        graph.node(
            "Softmax",
            &["logits"],
            "probabilities",
            vec![int("axis", 1)],
        );
        outputs.push(tensor_info(
            "probabilities",
            classes,
            "softmax of the logits: each class's probability",
        ));
    }
    let input = ValueInfoProto {
        name: Some("pixels".into()),
        r#type: Some(tensor_type(vec![
            batch(),
            fixed(1),
            fixed(IMAGE_SIDE as i64),
            fixed(IMAGE_SIDE as i64),
        ])),
        doc_string: Some(
            "28x28 greyscale digits, 0 (background) to 1 (ink): light ink on black, as in MNIST"
                .into(),
        ),
    };
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        producer_name: Some("lenet".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!(
            "LeNet-5 ({} variant) trained with Burn; input pixels in 0..1, normalised inside",
            model.variant
        )),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: Some("lenet5".into()),
            initializer: graph.initializers,
            doc_string: None,
            input: vec![input],
            output: outputs,
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        metadata_props: vec![StringStringEntryProto {
            key: Some("classes".into()),
            value: Some(serde_json::to_string(class_names).expect("names serialise")),
        }],
    };
    model.encode_to_vec()
}

/// The nodes and weights being written, and a counter for fresh value names.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    names: usize,
}

impl Graph {
    /// The network from `pixels` to the logits; returns the logits' value name.
    fn network(&mut self, model: &LeNet5) -> String {
        let paper = model.variant == Variant::Lecun98;
        let normalised = self.input(paper);
        let x = self.conv(&normalised, &model.c1, None);
        let x = self.activate(&x, model.activation);
        let x = self.subsample(&x, &model.s2, model.activation);
        let mask = paper.then(lecun98::c3_mask_values);
        let x = self.conv(&x, &model.c3, mask.as_deref());
        let x = self.activate(&x, model.activation);
        let x = self.subsample(&x, &model.s4, model.activation);
        let x = self.conv(&x, &model.c5, None);
        let x = self.activate(&x, model.activation);
        let x = self.fresh_node("Flatten", &[&x], vec![int("axis", 1)]);
        let x = self.dense(&x, &model.f6);
        let x = self.activate(&x, model.activation);
        match &model.f7 {
            Some(f7) => self.dense(&x, f7),
            None => self.rbf(&x),
        }
    }

    /// `pixels` as the model's first layer sees them: normalised as training normalised; for
    /// the 1998 network then brought to the paper's scale and padded with its background.
    fn input(&mut self, paper: bool) -> String {
        if paper {
            // The paper's scale straight from 0..1 pixels: background -0.1, ink 1.175.
            let scaled = self.scale_shift(
                "pixels",
                lecun98::FOREGROUND - lecun98::BACKGROUND,
                lecun98::BACKGROUND,
            );
            let pads = self.constant_i64(&[0, 0, 2, 2, 0, 0, 2, 2], &[8]);
            let value = self.constant(&[lecun98::BACKGROUND], &[]);
            self.fresh_node("Pad", &[&scaled, &pads, &value], vec![])
        } else {
            self.scale_shift("pixels", 1.0 / PIXEL_STD, -PIXEL_MEAN / PIXEL_STD)
        }
    }

    /// `x * scale + shift`.
    fn scale_shift(&mut self, x: &str, scale: f32, shift: f32) -> String {
        let scale = self.constant(&[scale], &[]);
        let shift = self.constant(&[shift], &[]);
        let scaled = self.fresh_node("Mul", &[x, &scale], vec![]);
        self.fresh_node("Add", &[&scaled, &shift], vec![])
    }

    /// A convolution with its weights (times `mask` where one is given), bias and padding.
    fn conv(&mut self, x: &str, conv: &Conv2d, mask: Option<&[f32]>) -> String {
        let mut weight = values(conv.weight.val());
        if let Some(mask) = mask {
            weight.iter_mut().zip(mask).for_each(|(w, m)| *w *= m);
        }
        let dims = conv.weight.dims();
        let weight = self.constant(&weight, &dims);
        let bias = conv
            .bias
            .as_ref()
            .expect("LeNet's convolutions have biases");
        let bias = self.constant(&values(bias.val()), &bias.dims());
        let pads = match conv.padding {
            burn::nn::PaddingConfig2d::Explicit(top, left, bottom, right) => {
                [top, left, bottom, right].map(|p| p as i64)
            }
            _ => [0; 4],
        };
        self.fresh_node(
            "Conv",
            &[x, &weight, &bias],
            vec![
                ints("kernel_shape", &[dims[2] as i64, dims[3] as i64]),
                ints("pads", &pads),
                ints("strides", &[1, 1]),
            ],
        )
    }

    /// A dense layer: Burn keeps its weight as `[in, out]`, which Gemm multiplies directly.
    fn dense(&mut self, x: &str, linear: &Linear) -> String {
        let weight = self.constant(&values(linear.weight.val()), &linear.weight.dims());
        let bias = linear
            .bias
            .as_ref()
            .expect("LeNet's dense layers have biases");
        let bias = self.constant(&values(bias.val()), &bias.dims());
        self.fresh_node("Gemm", &[x, &weight, &bias], vec![])
    }

    fn activate(&mut self, x: &str, activation: ActivationKind) -> String {
        match activation {
            ActivationKind::Relu => self.fresh_node("Relu", &[x], vec![]),
            ActivationKind::Tanh => self.fresh_node("Tanh", &[x], vec![]),
            ActivationKind::ScaledTanh => {
                let inner = self.constant(&[2.0 / 3.0], &[]);
                let outer = self.constant(&[1.7159], &[]);
                let scaled = self.fresh_node("Mul", &[x, &inner], vec![]);
                let tanh = self.fresh_node("Tanh", &[&scaled], vec![]);
                self.fresh_node("Mul", &[&tanh, &outer], vec![])
            }
        }
    }

    /// S2 or S4; the paper's trainable subsampling is followed by the activation, as in the
    /// model.
    fn subsample(&mut self, x: &str, layer: &Subsampling, activation: ActivationKind) -> String {
        let window = vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])];
        match layer {
            Subsampling::Max(_) => self.fresh_node("MaxPool", &[x], window),
            Subsampling::Avg(_) => self.fresh_node("AveragePool", &[x], window),
            Subsampling::Trainable(layer) => {
                let x = self.trainable(x, layer);
                self.activate(&x, activation)
            }
        }
    }

    /// Each map's 2x2 sums times its coefficient plus its bias: a depthwise 2x2 convolution,
    /// stride 2, whose kernel is the coefficient in all four places.
    fn trainable(&mut self, x: &str, layer: &TrainableSubsampling) -> String {
        let coefficients = values(layer.coefficient.val());
        let maps = coefficients.len();
        let kernel: Vec<f32> = coefficients.iter().flat_map(|&c| [c; 4]).collect();
        let weight = self.constant(&kernel, &[maps, 1, 2, 2]);
        let bias = self.constant(&values(layer.bias.val()), &[maps]);
        self.fresh_node(
            "Conv",
            &[x, &weight, &bias],
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("group", maps as i64),
            ],
        )
    }

    /// The RBF output: minus the sharpness times each class prototype's squared distance from
    /// F6's output, computed as the model does: differences, squares, sums.
    fn rbf(&mut self, x: &str) -> String {
        let prototypes: Vec<f32> = lecun98::prototypes().into_iter().flatten().collect();
        let classes = prototypes.len() / 84;
        let prototypes = self.constant(&prototypes, &[1, classes, 84]);
        let axis = self.constant_i64(&[1], &[1]);
        let column = self.fresh_node("Unsqueeze", &[x, &axis], vec![]);
        let difference = self.fresh_node("Sub", &[&column, &prototypes], vec![]);
        let squares = self.fresh_node("Mul", &[&difference, &difference], vec![]);
        let last = self.constant_i64(&[2], &[1]);
        let distances = self.fresh_node("ReduceSum", &[&squares, &last], vec![int("keepdims", 0)]);
        let scale = self.constant(&[-RBF_SHARPNESS], &[]);
        self.fresh_node("Mul", &[&distances, &scale], vec![])
    }

    /// Adds a node whose output is a fresh name; returns the name.
    fn fresh_node(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        let output = self.fresh(op);
        self.node(op, inputs, &output, attributes);
        output
    }

    fn node(&mut self, op: &str, inputs: &[&str], output: &str, attributes: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(format!("{op}_{}", self.nodes.len())),
            op_type: Some(op.to_string()),
            attribute: attributes,
        });
    }

    /// Gives the value `from` the name `to` as well (a graph output has a name of its own).
    fn alias(&mut self, from: &str, to: &str) {
        self.node("Identity", &[from], to, vec![]);
    }

    fn fresh(&mut self, what: &str) -> String {
        self.names += 1;
        format!("{}_{}", what.to_lowercase(), self.names)
    }

    /// An f32 weight or constant of shape `dims`; returns its name.
    fn constant(&mut self, values: &[f32], dims: &[usize]) -> String {
        let name = self.fresh("w");
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(FLOAT),
            name: Some(name.clone()),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        });
        name
    }

    /// An i64 constant (axes, pads) of shape `dims`; returns its name.
    fn constant_i64(&mut self, values: &[i64], dims: &[usize]) -> String {
        let name = self.fresh("c");
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(INT64),
            name: Some(name.clone()),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        });
        name
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 weights")
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(value),
        r#type: Some(ATTRIBUTE_INT),
        ..AttributeProto::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: values.to_vec(),
        r#type: Some(ATTRIBUTE_INTS),
        ..AttributeProto::default()
    }
}

fn batch() -> Dimension {
    Dimension {
        dim_value: None,
        dim_param: Some("batch".into()),
    }
}

fn fixed(size: i64) -> Dimension {
    Dimension {
        dim_value: Some(size),
        dim_param: None,
    }
}

fn tensor_type(dims: Vec<Dimension>) -> TypeProto {
    TypeProto {
        tensor_type: Some(TensorTypeProto {
            elem_type: Some(FLOAT),
            shape: Some(TensorShapeProto { dim: dims }),
        }),
    }
}

fn tensor_info(name: &str, classes: i64, doc: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(tensor_type(vec![batch(), fixed(classes)])),
        doc_string: Some(doc.into()),
    }
}

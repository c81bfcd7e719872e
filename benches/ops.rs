//! Where a training step's time goes: forward and backward of each layer of LeNet-5 (the modern
//! network, or the 1998 one with `--variant lecun98`), the loss, the optimizer step and batch
//! building, timed one at a time on a backend.
//!
//!     cargo bench --bench ops -- [--batch-size N] [--device flex|ndarray|wgpu|vulkan] [--reps N]
//!                                [--variant modern|lecun98]
//!
//! Each figure is the median of `--reps` runs after warm-up runs. Backward is timed on its own:
//! the layer's forward runs on an autodiff device, then `sum().backward()` is timed, which gives
//! the layer's gradients for its input and its parameters (C1's input needs none in training,
//! so its backward is timed without it, as in a real step). `benches/pytorch_ops.py` prints the
//! same table for PyTorch.

use std::time::Instant;

// As in the `lenet` binary (see src/main.rs): the flex kernels' buffers are reused, not
// returned to the OS each step.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::data::dataloader::batcher::Batcher;
use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::nn::conv::Conv2d;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::relu;
use burn::train::Learner;
use lenet::data::batcher::{ImageBatch, ImageBatcher};
use lenet::data::split::ImageItem;
use lenet::device::BackendKind;
use lenet::kernels::conv2d_stride1;
use lenet::kernels::{conv_relu_max_pool, conv2d};
use lenet::model::lecun98;
use lenet::model::{LeNet5, LeNet5Config, Variant};

#[path = "ops/roofline.rs"]
mod roofline;
use roofline::Limits;

struct Settings {
    batch_size: usize,
    backend: BackendKind,
    reps: usize,
    variant: Variant,
}

fn settings() -> Settings {
    let mut settings = Settings {
        batch_size: 64,
        backend: BackendKind::preferred(),
        reps: 50,
        variant: Variant::Modern,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--batch-size" => settings.batch_size = value().parse().expect("--batch-size N"),
            "--reps" => settings.reps = value().parse().expect("--reps N"),
            "--device" => {
                settings.backend = <BackendKind as clap::ValueEnum>::from_str(&value(), true)
                    .expect("--device flex|ndarray|wgpu|vulkan")
            }
            "--variant" => {
                settings.variant = match value().as_str() {
                    "modern" => Variant::Modern,
                    "lecun98" => Variant::Lecun98,
                    other => panic!("--variant modern|lecun98, not {other}"),
                }
            }
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    settings
}

/// Median milliseconds of `reps` calls of `timed`, each after an untimed `prepare`.
fn median_ms<T>(
    device: &Device,
    reps: usize,
    mut prepare: impl FnMut() -> T,
    mut timed: impl FnMut(T),
) -> f64 {
    let mut times = Vec::with_capacity(reps);
    for rep in 0..reps + 5 {
        let input = prepare();
        device.sync().expect("device sync");
        let started = Instant::now();
        timed(input);
        device.sync().expect("device sync");
        if rep >= 5 {
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

type Layer = Box<dyn Fn(&LeNet5, Tensor<4>) -> Tensor<4>>;

/// What a layer does per image, for its rate: arithmetic (FLOPs, a multiply-add counted as two)
/// or, for the layers that do next to none, the fewest bytes it must read and write.
#[derive(Clone, Copy)]
enum Work {
    Flops { forward: f64, backward: f64 },
    Bytes { forward: f64, backward: f64 },
    None,
}

impl Work {
    /// A convolution (or dense layer, 1x1 output) of `inputs` maps to `outputs` maps of
    /// `size` x `size`, `kernel` x `kernel`: backward computes the weights' gradient, and the
    /// input's when `input_grad`.
    fn conv(inputs: usize, outputs: usize, size: usize, kernel: usize, input_grad: bool) -> Self {
        let forward = (2 * inputs * outputs * size * size * kernel * kernel) as f64;
        let passes = if input_grad { 2.0 } else { 1.0 };
        Work::Flops {
            forward,
            backward: forward * passes,
        }
    }

    /// The same convolution followed by relu and a 2x2 max pool whose backward pass runs from
    /// the pool's picks: one output in four has a gradient, so a quarter of the backward
    /// products (fewer still where relu stopped a pick, which this does not count). Backends
    /// other than the CPU kernels run the three ops and do all of them, so their rates read low.
    fn picked(self) -> Self {
        match self {
            Work::Flops { forward, backward } => Work::Flops {
                forward,
                backward: backward / 4.0,
            },
            other => other,
        }
    }

    /// An element-wise activation over `values` f32: forward reads and writes each value once;
    /// backward reads the output's gradient and the saved values and writes the input's.
    fn elementwise(values: usize) -> Self {
        Work::Bytes {
            forward: (8 * values) as f64,
            backward: (12 * values) as f64,
        }
    }

    /// A 2x2 pool over `values` f32: forward reads them all and writes a quarter as many;
    /// backward reads the input again (this kernel finds each window's winner anew), reads a
    /// quarter as many gradients and writes the input's gradient.
    fn pool(values: usize) -> Self {
        Work::Bytes {
            forward: (4 * values + values) as f64,
            backward: (4 * values + values + 4 * values) as f64,
        }
    }
}

/// One row of the layer table: its name, its input's shape, whether its input needs a
/// gradient in training, its work per image, and the layer itself.
struct LayerCase {
    name: &'static str,
    shape: [usize; 4],
    input_grad: bool,
    work: Work,
    layer: Layer,
}

fn case(
    name: &'static str,
    shape: [usize; 4],
    input_grad: bool,
    work: Work,
    layer: Layer,
) -> LayerCase {
    LayerCase {
        name,
        shape,
        input_grad,
        work,
        layer,
    }
}

/// A dense layer of the model on the 4-d maps the table passes between layers.
fn dense(layer: fn(&LeNet5) -> &burn::nn::Linear) -> Layer {
    Box::new(move |m, x: Tensor<4>| {
        let [n, c, ..] = x.dims();
        let y = layer(m).forward(x.reshape([n, c]));
        let [n, c] = y.dims();
        y.reshape([n, c, 1, 1])
    })
}

/// The 1998 network's layers, one at a time, at batch size `batch`.
fn lecun98_layers(batch: usize) -> Vec<LayerCase> {
    let tanh = || -> Layer { Box::new(|_, x| lecun98::scaled_tanh(x)) };
    vec![
        // No parameters and an input that needs no gradient: forward only.
        case(
            "input scaled, padded to 32x32",
            [batch, 1, 28, 28],
            false,
            Work::Bytes {
                forward: (4 * (784 + 1024)) as f64,
                backward: 0.0,
            },
            Box::new(|_, x| lecun98::paper_input(x)),
        ),
        case(
            "C1 conv 1->6, 32x32",
            [batch, 1, 32, 32],
            false,
            Work::conv(1, 6, 28, 5, false),
            Box::new(|m, x| conv2d(x, &m.c1)),
        ),
        case(
            "scaled tanh 6x28x28",
            [batch, 6, 28, 28],
            true,
            Work::elementwise(6 * 784),
            tanh(),
        ),
        case(
            "S2 subsampling 6x28x28",
            [batch, 6, 28, 28],
            true,
            Work::pool(6 * 784),
            Box::new(|m, x| m.s2.forward(x)),
        ),
        case(
            "scaled tanh 6x14x14",
            [batch, 6, 14, 14],
            true,
            Work::elementwise(6 * 196),
            tanh(),
        ),
        // Computed as the full 6->16 convolution with masked weights, and counted so.
        case(
            "C3 conv 6->16 by Table I",
            [batch, 6, 14, 14],
            true,
            Work::conv(6, 16, 10, 5, true),
            Box::new(|m, x| {
                let weight = m.c3.weight.val() * lecun98::c3_mask(&x.device());
                let bias = m.c3.bias.as_ref().expect("a bias").val();
                conv2d_stride1(x, weight, bias, [0, 0])
            }),
        ),
        case(
            "scaled tanh 16x10x10",
            [batch, 16, 10, 10],
            true,
            Work::elementwise(1600),
            tanh(),
        ),
        case(
            "S4 subsampling 16x10x10",
            [batch, 16, 10, 10],
            true,
            Work::pool(1600),
            Box::new(|m, x| m.s4.forward(x)),
        ),
        case(
            "scaled tanh 16x5x5",
            [batch, 16, 5, 5],
            true,
            Work::elementwise(400),
            tanh(),
        ),
        case(
            "C5 conv 16->120, 5x5",
            [batch, 16, 5, 5],
            true,
            Work::conv(16, 120, 1, 5, true),
            Box::new(|m, x| conv2d(x, &m.c5)),
        ),
        case(
            "scaled tanh 120",
            [batch, 120, 1, 1],
            true,
            Work::elementwise(120),
            tanh(),
        ),
        case(
            "F6 dense 120->84",
            [batch, 120, 1, 1],
            true,
            Work::conv(120, 84, 1, 1, true),
            dense(|m| &m.f6),
        ),
        case(
            "scaled tanh 84",
            [batch, 84, 1, 1],
            true,
            Work::elementwise(84),
            tanh(),
        ),
        case(
            "RBF 84->10",
            [batch, 84, 1, 1],
            true,
            Work::conv(84, 10, 1, 1, true),
            Box::new(|_, x| {
                let [n, c, ..] = x.dims();
                let y = lecun98::rbf_distances(x.reshape([n, c]));
                y.reshape([n, 10, 1, 1])
            }),
        ),
    ]
}

/// The modern network's layers, one op at a time as its forward pass runs them, at batch size
/// `batch`: each convolution with its relu and pool as one op, then C5 and the dense layers.
fn layers(batch: usize) -> Vec<LayerCase> {
    let block = |conv: fn(&LeNet5) -> &Conv2d| -> Layer {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        Box::new(move |m, x| conv_relu_max_pool(x, conv(m), &pool))
    };
    let relu_layer = || -> Layer { Box::new(|_, x| relu(x)) };
    vec![
        case(
            "C1 + relu + S2 max pool",
            [batch, 1, 28, 28],
            false,
            Work::conv(1, 6, 28, 5, false).picked(),
            block(|m| &m.c1),
        ),
        case(
            "C3 + relu + S4 max pool",
            [batch, 6, 14, 14],
            true,
            Work::conv(6, 16, 10, 5, true).picked(),
            block(|m| &m.c3),
        ),
        case(
            "C5 conv 16->120, 5x5",
            [batch, 16, 5, 5],
            true,
            Work::conv(16, 120, 1, 5, true),
            Box::new(|m, x| conv2d(x, &m.c5)),
        ),
        case(
            "relu 120",
            [batch, 120, 1, 1],
            true,
            Work::elementwise(120),
            relu_layer(),
        ),
        case(
            "F6 dense 120->84",
            [batch, 120, 1, 1],
            true,
            Work::conv(120, 84, 1, 1, true),
            dense(|m| &m.f6),
        ),
        case(
            "relu 84",
            [batch, 84, 1, 1],
            true,
            Work::elementwise(84),
            relu_layer(),
        ),
        case(
            "F7 dense 84->10",
            [batch, 84, 1, 1],
            true,
            Work::conv(84, 10, 1, 1, true),
            dense(|m| m.f7.as_ref().expect("linear output")),
        ),
    ]
}

/// The table's rows as they are printed, with their running total. On a CPU backend each
/// row also gives its rate and what share of the machine's limit that is: every core's FMA
/// peak at the products' vector width, or for the ops that do next to no arithmetic every
/// core's triad in cache, their ceiling (a batch of 64's tensors, 1.2 MB at most each, live in
/// the caches from one op to the next, though not all in the nearest).
struct Table {
    sum: f64,
    /// FLOPs per image of the rows so far, forward and backward.
    flops: f64,
    batch: f64,
    limits: Option<Limits>,
}

impl Table {
    fn header(settings: &Settings, limits: Option<Limits>) -> Self {
        if let Some(limits) = &limits {
            limits.print();
        }
        println!(
            "{} network, {} backend, batch {}, median of {} runs (ms)",
            settings.variant, settings.backend, settings.batch_size, settings.reps
        );
        println!(
            "{:<30} {:>9} {:>9} {:>9}   {:<26} of limit",
            "operation", "forward", "backward", "total", "rate (forward, backward)"
        );
        Table {
            sum: 0.0,
            flops: 0.0,
            batch: settings.batch_size as f64,
            limits,
        }
    }

    fn row(&mut self, name: &str, forward: f64, backward: f64, work: Work) {
        self.sum += forward + backward;
        let rate = |amount: f64, ms: f64| {
            if ms > 0.0 && amount > 0.0 {
                amount * self.batch / ms / 1e6
            } else {
                0.0
            }
        };
        let (unit, limit, amounts) = match work {
            Work::Flops { forward, backward } => {
                self.flops += forward + backward;
                (
                    "GFLOP/s",
                    self.limits.as_ref().map(|l| l.products_peak().all),
                    [forward, backward],
                )
            }
            Work::Bytes { forward, backward } => (
                "GB/s",
                self.limits.as_ref().map(|l| l.cache_all),
                [forward, backward],
            ),
            Work::None => ("", None, [0.0, 0.0]),
        };
        let rates = [rate(amounts[0], forward), rate(amounts[1], backward)];
        let rates_text = if unit.is_empty() {
            String::new()
        } else {
            format!("{:>7.1} {:>7.1} {unit}", rates[0], rates[1])
        };
        let share = limit.map_or(String::new(), |limit| {
            format!(
                "{:>4.0}% {:>4.0}%",
                rates[0] / limit * 100.0,
                rates[1] / limit * 100.0
            )
        });
        println!(
            "{name:<30} {forward:>9.3} {backward:>9.3} {:>9.3}   {rates_text:<26} {share}",
            forward + backward
        );
    }

    fn line(&self, name: &str, value: f64) {
        println!("{name:<30} {value:>29.3}");
    }
}

/// Each layer's forward on `device` and backward on `autodiff`, alone.
fn time_layers(settings: &Settings, device: &Device, autodiff: &Device, table: &mut Table) {
    let config = LeNet5Config::for_variant(settings.variant);
    let model = config.init(device);
    let trained = config.init(autodiff);
    let cases = match settings.variant {
        Variant::Modern => layers(settings.batch_size),
        Variant::Lecun98 => lecun98_layers(settings.batch_size),
    };
    for LayerCase {
        name,
        shape,
        input_grad,
        work,
        layer,
    } in cases
    {
        let random =
            |device: &Device| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
        let forward = median_ms(
            device,
            settings.reps,
            || random(device),
            |x| {
                layer(&model, x);
            },
        );
        let tracked = input_grad || !name.starts_with("input");
        let backward = if tracked {
            median_ms(
                autodiff,
                settings.reps,
                || {
                    let x = random(autodiff);
                    let x = if input_grad { x.require_grad() } else { x };
                    layer(&trained, x).sum()
                },
                |y| {
                    y.backward();
                },
            )
        } else {
            0.0
        };
        table.row(name, forward, backward, work);
    }
}

/// The cross-entropy loss's forward and backward on `batch` random logits.
fn time_loss(settings: &Settings, autodiff: &Device, table: &mut Table) {
    let batch = settings.batch_size;
    let logits = || Tensor::<2>::random([batch, 10], Distribution::Normal(0.0, 1.0), autodiff);
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new((0..batch as i64).map(|i| i % 10).collect(), [batch]),
        autodiff,
    );
    let loss_fn = CrossEntropyLossConfig::new().init(autodiff);
    let forward = median_ms(
        autodiff,
        settings.reps,
        || logits().require_grad(),
        |x| {
            loss_fn.forward(x, targets.clone());
        },
    );
    let backward = median_ms(
        autodiff,
        settings.reps,
        || loss_fn.forward(logits().require_grad(), targets.clone()),
        |loss| {
            loss.backward();
        },
    );
    table.row("cross-entropy loss", forward, backward, Work::None);
}

/// `batch` pseudo-random digits: a fixed pattern trains into degenerate weights.
fn digits(batch: usize) -> Vec<ImageItem> {
    (0..batch)
        .map(|i| ImageItem {
            pixels: (0..784u32)
                .map(|p| (((p + 1) * (i as u32 + 7)).wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
            label: (i % 10) as u16,
        })
        .collect()
}

/// Batch building, the optimizer step alone, and a whole training step.
fn time_steps(settings: &Settings, autodiff: &Device, table: &mut Table) {
    let items = digits(settings.batch_size);
    let batching = median_ms(
        autodiff,
        settings.reps,
        || items.clone(),
        |items| {
            ImageBatcher.batch(items, autodiff);
        },
    );
    table.row("batch building (64 digits)", batching, 0.0, Work::None);

    let mut learner = Learner::new(
        LeNet5Config::for_variant(settings.variant).init(autodiff),
        AdamConfig::new().with_epsilon(1e-8).init(),
        ModuleLrScheduler::from(ConstantLr::new(1e-3)),
    );
    let batch_of = || -> ImageBatch { ImageBatcher.batch(items.clone(), autodiff) };
    let mut grads = Vec::new();
    for _ in 0..settings.reps + 5 {
        grads.push(learner.train_step(batch_of()).grads);
    }
    let optimizer = median_ms(
        autodiff,
        settings.reps,
        || grads.pop().expect("grads"),
        |g| {
            learner.optimizer_step(g);
        },
    );
    table.row("Adam step", 0.0, optimizer, Work::None);
    table.line("sum of the above", table.sum);

    let step = median_ms(autodiff, settings.reps, batch_of, |batch| {
        let output = learner.train_step(batch);
        output.item.loss.clone().into_scalar::<f64>();
        learner.optimizer_step(output.grads);
    });
    table.line("whole training step", step);
    println!(
        "{:<30} {:>29.2}",
        "-> seconds per 60,000 images",
        step * 60_000.0 / settings.batch_size as f64 / 1e3
    );
    let rate = table.flops * table.batch / step / 1e6;
    let share = table.limits.as_ref().map_or(String::new(), |limits| {
        let peak = limits.products_peak();
        format!(
            ", {:.0}% of the {} FMA peak",
            rate / peak.all * 100.0,
            peak.isa
        )
    });
    println!(
        "-> {:.2} MFLOP per image in the rows counted in FLOPs: {rate:.1} GFLOP/s{share}",
        table.flops / 1e6
    );
}

fn main() {
    let settings = settings();
    let device = settings.backend.device().expect("backend compiled in");
    let autodiff = device.clone().autodiff();
    let on_cpu = matches!(settings.backend, BackendKind::Flex | BackendKind::Ndarray);
    let mut table = Table::header(&settings, on_cpu.then(Limits::measure));
    // From a thread of rayon's pool, as training runs its steps (`on_compute_threads` says why).
    lenet::device::on_compute_threads(|| {
        time_layers(&settings, &device, &autodiff, &mut table);
        time_loss(&settings, &autodiff, &mut table);
        time_steps(&settings, &autodiff, &mut table);
    });
}

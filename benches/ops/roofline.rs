//! This machine's limits, measured: the f32 fused-multiply-add peak (one core and every core) and
//! the memory bandwidth (a cache-sized buffer and one far larger than any cache), so the layer
//! table can say how far each op is from what the hardware allows.
//!
//! The peak is a loop of independent FMA chains, enough to cover the FMA latency on every FMA
//! port, with no memory traffic, on each vector width the CPU has (AVX-512, AVX2 with FMA; a
//! scalar loop elsewhere). The products' roof is the AVX2 one even on an AVX-512 CPU: `gemm`,
//! which lenet's and Burn's products run on, compiles its AVX-512 kernels only with its `x86-v4`
//! feature, which this build leaves off (turning it on would change every run's last bits). The
//! bandwidth is a triad, `a[i] = b[i] + s * c[i]`, counting the three arrays' bytes once each
//! (the write's read-for-ownership is not counted, as STREAM does not), compiled for the
//! baseline target, as the element-wise ops are. Each figure is the best of several runs: a
//! limit, not a typical speed.

use std::hint::black_box;
use std::time::Instant;

/// The FMA peak of one vector width, GFLOP/s on one thread and on every thread.
pub struct Peak {
    pub isa: &'static str,
    pub one: f64,
    pub all: f64,
}

/// The measured limits.
pub struct Limits {
    pub threads: usize,
    /// Widest first.
    pub peaks: Vec<Peak>,
    /// GB/s of a triad over 3 x 64 KiB per thread (in each core's cache), one thread and every
    /// thread.
    pub cache_one: f64,
    pub cache_all: f64,
    /// GB/s of a triad over 3 x 128 MiB per thread, one thread and every thread.
    pub memory_one: f64,
    pub memory_all: f64,
}

impl Limits {
    pub fn measure() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limits {
            threads,
            peaks: fma_loops()
                .into_iter()
                .map(|(isa, fma)| Peak {
                    isa,
                    one: best_rate(|| fma_rate(fma, 1)),
                    all: best_rate(|| fma_rate(fma, threads)),
                })
                .collect(),
            cache_one: best_rate(|| triad_rate(16 << 10, 1, 2_000)),
            cache_all: best_rate(|| triad_rate(16 << 10, threads, 2_000)),
            memory_one: best_rate(|| triad_rate(32 << 20, 1, 3)),
            memory_all: best_rate(|| triad_rate(32 << 20, threads, 3)),
        }
    }

    /// The FMA peak on every thread at the width the products run at: AVX2's where the CPU
    /// has it (see the module's comment), else the only one measured.
    pub fn products_peak(&self) -> &Peak {
        self.peaks
            .iter()
            .find(|p| p.isa == "AVX2")
            .unwrap_or(&self.peaks[0])
    }

    pub fn print(&self) {
        let peaks: Vec<String> = self
            .peaks
            .iter()
            .map(|p| format!("{} {:.1} and {:.1}", p.isa, p.one, p.all))
            .collect();
        println!(
            "machine limits, 1 thread and {}: f32 FMA peak {} GFLOP/s (the products run at \
             {}'s); triad bandwidth in cache {:.1} and {:.1} GB/s, from memory {:.1} and {:.1} \
             GB/s",
            self.threads,
            peaks.join(", "),
            self.products_peak().isa,
            self.cache_one,
            self.cache_all,
            self.memory_one,
            self.memory_all,
        );
    }
}

/// The best of five measurements.
fn best_rate(mut measure: impl FnMut() -> f64) -> f64 {
    (0..5).map(|_| measure()).fold(0.0, f64::max)
}

/// A loop of `rounds` FMAs on each of its chains; it returns the FLOPs it did.
type FmaLoop = fn(u64) -> f64;

const FMA_ROUNDS: u64 = 20_000_000;

/// GFLOP/s of `fma` run on `threads` threads at once.
fn fma_rate(fma: FmaLoop, threads: usize) -> f64 {
    let started = Instant::now();
    let flops: f64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(move || fma(black_box(FMA_ROUNDS))))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("FMA loop"))
            .sum()
    });
    flops / started.elapsed().as_secs_f64() / 1e9
}

/// The FMA loops this CPU runs, widest first.
fn fma_loops() -> Vec<(&'static str, FmaLoop)> {
    let mut loops: Vec<(&'static str, FmaLoop)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            loops.push(("AVX-512", |rounds| unsafe { x86::fma_avx512(rounds) }));
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            loops.push(("AVX2", |rounds| unsafe { x86::fma_avx2(rounds) }));
        }
    }
    if loops.is_empty() {
        loops.push(("scalar", fma_scalar));
    }
    loops
}

/// Chains in flight: FMA latency (4 cycles) times FMA ports (2), with room to spare.
const CHAINS: usize = 12;

fn fma_scalar(rounds: u64) -> f64 {
    let mut acc = [0.0f32; CHAINS];
    let (a, b) = (black_box(0.999_999f32), black_box(1e-7f32));
    for _ in 0..rounds {
        for x in &mut acc {
            *x = x.mul_add(a, b);
        }
    }
    black_box(acc);
    (rounds * CHAINS as u64 * 2) as f64
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    use super::CHAINS;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_avx512(rounds: u64) -> f64 {
        let a = _mm512_set1_ps(black_box(0.999_999));
        let b = _mm512_set1_ps(black_box(1e-7));
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..rounds {
            for x in &mut acc {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        black_box(acc);
        (rounds * CHAINS as u64 * 16 * 2) as f64
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_avx2(rounds: u64) -> f64 {
        let a = _mm256_set1_ps(black_box(0.999_999));
        let b = _mm256_set1_ps(black_box(1e-7));
        let mut acc = [_mm256_setzero_ps(); CHAINS];
        for _ in 0..rounds {
            for x in &mut acc {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        black_box(acc);
        (rounds * CHAINS as u64 * 8 * 2) as f64
    }
}

/// GB/s of `threads` threads each running `passes` triads over arrays of its own of `len` f32
/// (so that no thread waits for another between passes).
fn triad_rate(len: usize, threads: usize, passes: usize) -> f64 {
    let s = black_box(0.5f32);
    let ready = std::sync::Barrier::new(threads + 1);
    let seconds = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let ready = &ready;
                scope.spawn(move || {
                    let mut a = vec![0.0f32; len];
                    let b = vec![1.0f32; len];
                    let c = vec![2.0f32; len];
                    // One untimed pass: the pages are touched and, for small arrays, the
                    // cache is warm.
                    triad(&mut a, &b, &c, s);
                    ready.wait();
                    let started = Instant::now();
                    for _ in 0..passes {
                        triad(&mut a, &b, &c, s);
                        black_box(&a);
                    }
                    started.elapsed().as_secs_f64()
                })
            })
            .collect();
        ready.wait();
        workers
            .into_iter()
            .map(|w| w.join().expect("triad"))
            .fold(0.0, f64::max)
    });
    (3 * len * 4 * passes * threads) as f64 / seconds / 1e9
}

fn triad(a: &mut [f32], b: &[f32], c: &[f32], s: f32) {
    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
        *a = b + s * c;
    }
}

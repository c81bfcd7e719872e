//! Which Burn backend a run uses. Backends are compiled in by cargo features; this picks one of
//! the compiled ones at run time, explicitly, because `Device::default()` answers for whatever
//! Burn's own features unified to (flex, even in an ndarray build).

use std::fmt;
use std::path::PathBuf;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A backend this crate can be built with. The names are the cargo features that compile them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Burn's pure-Rust CPU backend.
    Flex,
    /// Burn's ndarray CPU backend.
    Ndarray,
    /// GPU through wgpu, on whichever graphics API the machine offers.
    Wgpu,
    /// GPU through wgpu pinned to Vulkan (SPIR-V kernels).
    Vulkan,
}

#[derive(Debug, Error)]
#[error(
    "device '{backend}' is not compiled into this binary (compiled: {compiled}); \
     rebuild with `--features {backend}`, e.g. `cargo run --release --features {backend} -- ...`"
)]
pub struct NotCompiled {
    pub backend: BackendKind,
    pub compiled: String,
}

impl BackendKind {
    /// Most specific first: the order in which an unspecified device is chosen.
    const PREFERENCE: [BackendKind; 4] = [
        BackendKind::Vulkan,
        BackendKind::Wgpu,
        BackendKind::Ndarray,
        BackendKind::Flex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Vulkan => "vulkan",
        }
    }

    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Vulkan => cfg!(feature = "vulkan"),
        }
    }

    /// The backends compiled into this binary, most specific first.
    pub fn compiled() -> Vec<BackendKind> {
        Self::PREFERENCE
            .into_iter()
            .filter(|b| b.is_compiled())
            .collect()
    }

    /// The backend a run uses when none is named: the most specific compiled one, so that
    /// `--features X` alone makes X the device.
    pub fn preferred() -> BackendKind {
        Self::compiled()
            .into_iter()
            .next()
            .expect("at least one backend feature (flex, ndarray, wgpu, vulkan) must be enabled")
    }

    /// Checks that this backend is compiled in and returns it.
    pub fn ensure_compiled(self) -> Result<BackendKind, NotCompiled> {
        if self.is_compiled() {
            Ok(self)
        } else {
            let compiled = Self::compiled()
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(", ");
            Err(NotCompiled {
                backend: self,
                compiled,
            })
        }
    }

    /// The Burn device of this backend (without autodiff).
    pub fn device(self) -> Result<Device, NotCompiled> {
        let backend = self.ensure_compiled()?;
        #[cfg(any(feature = "wgpu", feature = "vulkan"))]
        if matches!(backend, BackendKind::Wgpu | BackendKind::Vulkan) {
            keep_gpu_cache();
        }
        Ok(match backend {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            // ndarray stays available: docs/design.md#backends says why.
            #[allow(deprecated)]
            BackendKind::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Device::wgpu(DeviceKind::default()),
            #[cfg(feature = "vulkan")]
            BackendKind::Vulkan => Device::vulkan(DeviceKind::default()),
            #[allow(unreachable_patterns)]
            _ => unreachable!("ensure_compiled rejected {backend}"),
        })
    }
}

/// Where the GPU backends keep what CubeCL learns about this machine between runs: autotune
/// results (which kernel is fastest for each shape) and compiled kernels, so that a second run
/// does not spend its first epoch tuning again. `~/.cache/lenet/cubecl` on Linux; deleting it
/// costs the next run its tuning, nothing else.
pub fn gpu_cache_dir() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("lenet")
        .join("cubecl")
}

/// Points CubeCL's persistent cache at [`gpu_cache_dir`], unless a `cubecl.toml` (or
/// `burn.toml`) already names a place for it. CubeCL's own default is the `target/` folder of
/// the Cargo project the program runs in, which an installed `lenet` does not have.
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
fn keep_gpu_cache() {
    use burn::cubecl::config::cache::CacheConfig;
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if matches!(config.environment.path, CacheConfig::Target) {
            config.environment.path = CacheConfig::Directory(gpu_cache_dir());
        }
        CubeClRuntimeConfig::try_set(config);
    });
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs `work` on a thread of rayon's global pool, the one the CPU backends and this crate's
/// kernels split their ops over, and returns its result. Why: every op a thread outside the
/// pool starts is handed over to a pool thread, woken from sleep, while the caller sleeps until
/// it is done, twice per op and dozens of ops a training step; from a pool thread an op starts
/// at once, on that thread, and the other threads steal from it. The results do not change:
/// every op's sums run in the same order on any thread. On a GPU backend the work only
/// launches kernels, and where it runs makes no difference. `work` must not wait on a thread
/// that waits for the pool (with one thread in the pool, nothing would run it): training's
/// loaders and checkpoint writers, which it waits on, use no rayon.
pub fn on_compute_threads<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    // `scope` runs its body on a pool thread (injecting it when called from outside the pool)
    // and waits for it.
    rayon::scope(|_| work())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_work_runs_on_a_thread_of_the_pool_and_returns_its_result() {
        // The test's own thread is not one of the pool's.
        assert_eq!(rayon::current_thread_index(), None);
        let (index, sum) = on_compute_threads(|| {
            use rayon::prelude::*;
            let sum: u64 = (1..=1000u64).into_par_iter().sum();
            (rayon::current_thread_index(), sum)
        });
        assert!(index.is_some(), "the work ran outside rayon's pool");
        assert_eq!(sum, 500_500);
    }

    #[test]
    fn preferred_backend_is_the_most_specific_compiled_one() {
        let expected = if cfg!(feature = "vulkan") {
            BackendKind::Vulkan
        } else if cfg!(feature = "wgpu") {
            BackendKind::Wgpu
        } else if cfg!(feature = "ndarray") {
            BackendKind::Ndarray
        } else {
            BackendKind::Flex
        };
        assert_eq!(BackendKind::preferred(), expected);
    }

    #[test]
    fn a_backend_that_is_not_compiled_names_its_feature() {
        let missing = [
            BackendKind::Flex,
            BackendKind::Ndarray,
            BackendKind::Wgpu,
            BackendKind::Vulkan,
        ]
        .into_iter()
        .find(|b| !b.is_compiled());
        if let Some(backend) = missing {
            let err = backend.device().unwrap_err().to_string();
            assert!(err.contains(&format!("--features {backend}")), "{err}");
        }
    }
}

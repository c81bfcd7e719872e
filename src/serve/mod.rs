//! `lenet serve`: the runs of an artifacts folder in the browser. A local web app on axum and
//! tokio: the runs (live while they train), a run's curves and evaluation, runs compared, and a
//! canvas to draw a digit for any finished run's model. Every page, script and style is
//! embedded in the binary ([`assets`]), so it works offline; [`api`] is the JSON the pages use.
//!
//! It reads run folders as [`crate::run::listing`] does and answers with the code the commands
//! use ([`crate::inference`]), so what the browser shows is what `lenet eval` and
//! `lenet predict` say.

mod api;
mod assets;
mod state;

pub use api::MAX_UPLOAD_BYTES;
pub use state::ServeOptions;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use state::AppState;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("{}: no such folder; train a run first (it writes artifacts/<config name>) or pass --artifacts", dir.display())]
    NoArtifacts { dir: PathBuf },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

impl ServeError {
    /// Whether the error is in what the user asked for rather than met while serving.
    pub fn is_usage(&self) -> bool {
        matches!(self, ServeError::NoArtifacts { .. })
    }
}

/// A server bound to its address, not yet serving: the caller can say where it is first.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Binds the address `options` name (a busy port is an error, not a silent other port).
    pub fn bind(options: &ServeOptions) -> Result<Self, ServeError> {
        if !options.artifacts.is_dir() {
            return Err(ServeError::NoArtifacts {
                dir: options.artifacts.clone(),
            });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let addr = SocketAddr::new(options.host, options.port);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Self {
            runtime,
            listener,
            state: Arc::new(AppState::new(options)),
        })
    }

    /// The address to open in a browser.
    pub fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(addr) => format!("http://{addr}/"),
            Err(_) => "(unknown address)".to_string(),
        }
    }

    /// Serves until Ctrl-C.
    pub fn run(self) -> Result<(), ServeError> {
        let app = api::router(self.state);
        self.runtime.block_on(async move {
            axum::serve(self.listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
        })?;
        Ok(())
    }
}

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
mod error;
mod guard;
mod pool;
mod state;
mod upload;
mod work;

pub use state::ServeOptions;
pub use upload::MAX_UPLOAD_BYTES;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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

/// How long a client may take to send a request's head (and, on a connection kept open, the
/// next one's): a slow or idle client holds nothing for longer.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;

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
        let bound = listener.local_addr()?;
        Ok(Self {
            runtime,
            listener,
            state: Arc::new(AppState::new(options, bound)),
        })
    }

    /// The address to open in a browser, with the token when there is one.
    pub fn url(&self) -> String {
        let bound = self.state.bound;
        match &self.state.token {
            Some(token) => format!("http://{bound}/?token={token}"),
            None => format!("http://{bound}/"),
        }
    }

    /// Whether machines other than this one can reach the server.
    pub fn is_public(&self) -> bool {
        !self.state.bound.ip().is_loopback()
    }

    /// Serves until Ctrl-C. Each connection is served by hyper with a deadline for every
    /// request's head ([`HEADER_TIMEOUT`]); bodies have theirs where they are read.
    pub fn run(self) -> Result<(), ServeError> {
        let app = api::router(self.state);
        let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        self.runtime.block_on(async move {
            let stop = tokio::signal::ctrl_c();
            tokio::pin!(stop);
            loop {
                let permit = connections
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the connection semaphore is never closed");
                let (stream, _) = tokio::select! {
                    accepted = self.listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        // A connection that failed before it was accepted (reset, out of
                        // descriptors for a moment) is that connection's problem alone.
                        Err(_) => continue,
                    },
                    _ = &mut stop => return Ok(()),
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                tokio::spawn(async move {
                    // HTTP/1 only: the auto builder first waits for bytes to tell the
                    // versions apart, with no deadline, so a client that connects and sends
                    // nothing would hold its connection for ever.
                    let mut builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .http1_only();
                    builder
                        .http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT);
                    // A client that goes away mid-request ends its own connection, no other.
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    drop(permit);
                });
            }
        })
    }
}

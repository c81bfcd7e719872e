//! `status.json`: what a run is doing, for those watching from outside (`lenet runs`,
//! `lenet serve`). Written atomically when training starts and when it ends; a run killed
//! outright leaves "training" behind, and its released lock tells the truth.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use super::error::RunError;
use super::layout::STATUS_FILE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Training,
    /// Stopped by the user or killed; resumable from its newest checkpoint.
    Stopped,
    /// Ended by an error (a loss that was not finite, a file that could not be written).
    Failed,
    Finished,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Training => "training",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
            RunState::Finished => "finished",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// The name of the config the run was started with.
    pub config: String,
    /// When the run was first started (RFC 3339, UTC), kept across resumes.
    pub started: String,
    pub state: RunState,
    /// Why it stopped or failed, as the command line said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunStatus {
    /// The status a run starting (or resuming) now has: its first start kept from the folder.
    pub fn starting(dir: &Path, config: &str) -> Self {
        let started = Self::read(dir).map_or_else(now_rfc3339, |s| s.started);
        Self {
            config: config.to_string(),
            started,
            state: RunState::Training,
            message: None,
        }
    }

    /// The status in `dir`, if it has a readable one.
    pub fn read(dir: &Path) -> Option<Self> {
        let bytes = std::fs::read(dir.join(STATUS_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write(&self, dir: &Path) -> Result<(), RunError> {
        let json = serde_json::to_vec_pretty(self).expect("status serialises");
        write_atomic(&dir.join(STATUS_FILE), &json)
    }

    /// The same run, ended in `state`.
    pub fn ended(&self, state: RunState, message: Option<String>) -> Self {
        Self {
            state,
            message,
            ..self.clone()
        }
    }
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

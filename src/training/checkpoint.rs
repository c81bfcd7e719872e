//! Checkpoints a run resumes from: the model, the optimizer and the learning-rate scheduler as
//! Burn records them, plus where in the run they were taken.
//!
//! Each checkpoint is four files in `checkpoints/`, named by the number of optimizer steps taken
//! (`step-00000860.model.ckpt`, `.optim.ckpt`, `.scheduler.ckpt`, `.state.ckpt`), and a fifth,
//! `.average.ckpt`, for a run that averages its weights (`ema`). Every file is
//! sealed (a magic, the payload's length and its SHA-256) and written atomically, and the state
//! file is written last, once the records are on disk: a checkpoint counts only when all
//! its files are there and their seals hold, so a kill at any moment, a truncated file or a
//! hand-damaged one is noticed and the previous checkpoint is used instead.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use burn::optim::OptimizerRecord;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::store::{ModuleRecord, RecordError};
use burn::tensor::Bytes;
use burn::train::checkpoint::{
    Checkpoint, Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn::train::metric::store::EventStoreClient;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::data::loader::Position;
use crate::model::LeNet5;
use crate::run::history::EpochMetrics;
use crate::run::{self, CHECKPOINT_DIR, RunError};

const MAGIC: &[u8; 8] = b"LENETCKP";
const HEADER: usize = MAGIC.len() + 8 + 32;

/// The three records Burn's `LearningCheckpointer` saves, by the names their files carry.
const RECORD_KINDS: [&str; 3] = ["model", "optim", "scheduler"];
const STATE_KIND: &str = "state";
/// The weight average's record, for runs that keep one.
const AVERAGE_KIND: &str = "average";

/// What a checkpoint says about the run beyond Burn's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Where training continues from.
    pub position: Position,
    /// Optimizer steps taken; names the checkpoint's files.
    pub steps: usize,
    /// The name of the config the run was started with.
    pub config_name: String,
    /// The metrics of every epoch completed so far.
    pub history: Vec<EpochMetrics>,
    /// Whether the checkpoint holds a weight average (`.average.ckpt`).
    #[serde(default)]
    pub averaged: bool,
}

/// A checkpoint read back and verified.
pub struct Loaded {
    pub state: CheckpointState,
    pub model: ModuleRecord,
    pub optim: OptimizerRecord,
    pub scheduler: LrSchedulerRecord,
    /// The weight average, in a run that keeps one.
    pub average: Option<ModuleRecord>,
}

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("{}: {problem}", path.display())]
    Damaged { path: PathBuf, problem: String },
    #[error(transparent)]
    Write(#[from] RunError),
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
}

/// The file of one kind of one checkpoint.
fn file(dir: &Path, steps: usize, kind: &str) -> PathBuf {
    dir.join(format!("step-{steps:08}.{kind}.ckpt"))
}

/// The step count and kind a checkpoint file's name gives, if it is one.
fn parse_name(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("step-")?.strip_suffix(".ckpt")?;
    let (steps, kind) = rest.split_once('.')?;
    Some((steps.parse().ok()?, kind))
}

fn seal(payload: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(HEADER + payload.len());
    sealed.extend_from_slice(MAGIC);
    sealed.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    sealed.extend_from_slice(&Sha256::digest(payload));
    sealed.extend_from_slice(payload);
    sealed
}

fn unseal(sealed: &[u8]) -> Result<&[u8], String> {
    if sealed.len() < HEADER || &sealed[..MAGIC.len()] != MAGIC {
        return Err("not a lenet checkpoint file".into());
    }
    let length = u64::from_le_bytes(sealed[8..16].try_into().expect("8 bytes")) as usize;
    let payload = &sealed[HEADER..];
    if payload.len() != length {
        return Err(format!(
            "truncated or extended: {} bytes of payload where the header says {length}",
            payload.len()
        ));
    }
    if Sha256::digest(payload).as_slice() != &sealed[16..HEADER] {
        return Err("checksum mismatch: the file is damaged".into());
    }
    Ok(payload)
}

fn read_sealed(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    let sealed = fs::read(path).map_err(|source| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    unseal(&sealed)
        .map(<[u8]>::to_vec)
        .map_err(|problem| CheckpointError::Damaged {
            path: path.to_path_buf(),
            problem,
        })
}

/// Which saves of which checkpoint have finished, so that the state file goes last.
#[derive(Default)]
struct SaveLog {
    finished: Mutex<Vec<(usize, Result<(), String>)>>,
    changed: Condvar,
}

/// Writes one kind of Burn record as sealed files; Burn's `AsyncCheckpointer` runs it on a thread
/// of its own.
pub struct SealedCheckpointer {
    dir: PathBuf,
    kind: &'static str,
    log: Arc<SaveLog>,
}

impl<R: Checkpoint> Checkpointer<R> for SealedCheckpointer {
    fn save(&self, steps: usize, record: R) -> Result<(), CheckpointerError> {
        let saved = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)
            .and_then(|bytes| {
                run::write_atomic(&file(&self.dir, steps, self.kind), &seal(&bytes))
                    .map_err(|e| CheckpointerError::Unknown(e.to_string()))
            });
        let mut finished = self.log.finished.lock().unwrap();
        finished.push((steps, saved.as_ref().map(|_| ()).map_err(|e| e.to_string())));
        self.log.changed.notify_all();
        saved
    }

    fn delete(&self, steps: usize) -> Result<(), CheckpointerError> {
        match fs::remove_file(file(&self.dir, steps, self.kind)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CheckpointerError::IOError(e)),
            _ => Ok(()),
        }
    }

    fn restore(&self, steps: usize) -> Result<R, CheckpointerError> {
        let payload = read_sealed(&file(&self.dir, steps, self.kind))
            .map_err(|e| CheckpointerError::Unknown(e.to_string()))?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(payload)).map_err(CheckpointerError::Record)
    }
}

/// Saves every checkpoint it is asked for; [`Checkpoints::seal`] removes old ones, because only
/// it knows which are complete.
struct SaveEvery;

impl CheckpointingStrategy for SaveEvery {
    fn checkpointing(&mut self, _: usize, _: &EventStoreClient) -> Vec<CheckpointingAction> {
        vec![CheckpointingAction::Save]
    }
}

/// The checkpoints of one run directory.
#[derive(Clone)]
pub struct Checkpoints {
    dir: PathBuf,
    log: Arc<SaveLog>,
}

/// How many complete checkpoints are kept: the newest, and one to fall back on if it is damaged.
const KEEP: usize = 2;

impl Checkpoints {
    pub fn new(run_dir: &Path) -> Self {
        Self {
            dir: run_dir.join(CHECKPOINT_DIR),
            log: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of the checkpoint taken after `steps` optimizer steps: the file whose
    /// presence makes the checkpoint count.
    pub fn state_file(&self, steps: usize) -> PathBuf {
        file(&self.dir, steps, STATE_KIND)
    }

    /// Creates the folder and removes temporary files a killed run left in it.
    pub fn prepare(&self) -> Result<(), CheckpointError> {
        run::create_dir(&self.dir)?;
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// The three record checkpointers and the strategy to hand to Burn's `SupervisedTraining`.
    pub fn burn_checkpointers(
        &self,
    ) -> (
        SealedCheckpointer,
        SealedCheckpointer,
        SealedCheckpointer,
        impl CheckpointingStrategy + 'static,
    ) {
        let checkpointer = |kind| SealedCheckpointer {
            dir: self.dir.clone(),
            kind,
            log: self.log.clone(),
        };
        (
            checkpointer(RECORD_KINDS[0]),
            checkpointer(RECORD_KINDS[1]),
            checkpointer(RECORD_KINDS[2]),
            SaveEvery,
        )
    }

    /// Writes the weight average of the checkpoint after `steps` steps; before [`Self::seal`],
    /// so that the checkpoint counts only with it.
    pub fn save_average(&self, steps: usize, average: &LeNet5) -> Result<(), CheckpointError> {
        let path = file(&self.dir, steps, AVERAGE_KIND);
        let bytes = run::model_bytes(average).map_err(|problem| CheckpointError::Damaged {
            path: path.clone(),
            problem,
        })?;
        run::write_atomic(&path, &seal(&bytes))?;
        Ok(())
    }

    /// Completes the checkpoint whose records Burn was just asked to save: waits until they are
    /// written, then writes the state file that makes the checkpoint count, then removes
    /// checkpoints older than the ones kept.
    pub fn seal(&self, state: &CheckpointState) -> Result<PathBuf, CheckpointError> {
        let mut finished = self.log.finished.lock().unwrap();
        loop {
            let results: Vec<&Result<(), String>> = finished
                .iter()
                .filter(|(steps, _)| *steps == state.steps)
                .map(|(_, result)| result)
                .collect();
            if let Some(Err(problem)) = results.iter().find(|r| r.is_err()) {
                return Err(CheckpointError::Damaged {
                    path: file(&self.dir, state.steps, "*"),
                    problem: format!("could not be written: {problem}"),
                });
            }
            if results.len() == RECORD_KINDS.len() {
                break;
            }
            finished = self.log.changed.wait(finished).unwrap();
        }
        finished.retain(|(steps, _)| *steps != state.steps);
        drop(finished);

        let path = file(&self.dir, state.steps, STATE_KIND);
        let json = serde_json::to_vec_pretty(state).expect("state serialises");
        run::write_atomic(&path, &seal(&json))?;
        self.prune();
        Ok(path)
    }

    /// Whether the folder holds any complete checkpoint, something a run could resume from.
    pub fn any(&self) -> bool {
        !self.sealed_steps().is_empty()
    }

    /// Step counts of the checkpoints whose state file exists, newest first.
    fn sealed_steps(&self) -> Vec<usize> {
        let mut steps: Vec<usize> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                parse_name(&name)
                    .filter(|(_, kind)| *kind == STATE_KIND)
                    .map(|(steps, _)| steps)
            })
            .collect();
        steps.sort_unstable_by(|a, b| b.cmp(a));
        steps
    }

    /// Removes every checkpoint file older than the oldest checkpoint kept.
    fn prune(&self) {
        let Some(&oldest_kept) = self.sealed_steps().get(KEEP - 1) else {
            return;
        };
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if parse_name(&name).is_some_and(|(steps, _)| steps < oldest_kept) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The newest checkpoint that loads, with a line for each newer one that did not.
    pub fn newest(&self) -> (Option<Loaded>, Vec<String>) {
        let mut problems = Vec::new();
        for steps in self.sealed_steps() {
            match self.load(steps) {
                Ok(loaded) => return (Some(loaded), problems),
                Err(e) => problems.push(e.to_string()),
            }
        }
        (None, problems)
    }

    /// The name of the config the run was started with, as its newest readable checkpoint says.
    pub fn config_name(&self) -> Option<String> {
        self.sealed_steps().into_iter().find_map(|steps| {
            let state = read_sealed(&file(&self.dir, steps, STATE_KIND)).ok()?;
            serde_json::from_slice::<CheckpointState>(&state)
                .ok()
                .map(|state| state.config_name)
        })
    }

    fn load(&self, steps: usize) -> Result<Loaded, CheckpointError> {
        let record = |kind: &str| {
            let path = file(&self.dir, steps, kind);
            read_sealed(&path).map(|payload| (path, Bytes::from_bytes_vec(payload)))
        };
        let damaged = |path: PathBuf| {
            move |e: RecordError| CheckpointError::Damaged {
                path,
                problem: e.to_string(),
            }
        };
        let (path, state) = record(STATE_KIND)?;
        let state: CheckpointState =
            serde_json::from_slice(&state).map_err(|e| CheckpointError::Damaged {
                path: path.clone(),
                problem: e.to_string(),
            })?;
        let (path, bytes) = record(RECORD_KINDS[0])?;
        let model = ModuleRecord::from_bytes(bytes).map_err(damaged(path))?;
        let (path, bytes) = record(RECORD_KINDS[1])?;
        let optim = OptimizerRecord::from_bytes(bytes).map_err(damaged(path))?;
        let (path, bytes) = record(RECORD_KINDS[2])?;
        let scheduler = LrSchedulerRecord::from_bytes(bytes).map_err(damaged(path))?;
        let average = if state.averaged {
            let (path, bytes) = record(AVERAGE_KIND)?;
            Some(ModuleRecord::from_bytes(bytes).map_err(damaged(path))?)
        } else {
            None
        };
        Ok(Loaded {
            state,
            model,
            optim,
            scheduler,
            average,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_detects_truncation_extension_and_flipped_bits() {
        let sealed = seal(b"weights");
        assert_eq!(unseal(&sealed).unwrap(), b"weights");
        assert!(
            unseal(&sealed[..sealed.len() - 1])
                .unwrap_err()
                .contains("truncated")
        );
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(
            unseal(&longer)
                .unwrap_err()
                .contains("truncated or extended")
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(unseal(&flipped).unwrap_err().contains("checksum"));
        assert!(unseal(b"").unwrap_err().contains("not a lenet checkpoint"));
    }

    #[test]
    fn names_round_trip() {
        let path = file(Path::new("c"), 860, "optim");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "step-00000860.optim.ckpt");
        assert_eq!(parse_name(name), Some((860, "optim")));
        assert_eq!(parse_name(".step-00000860.optim.ckpt.1.2.tmp"), None);
    }
}

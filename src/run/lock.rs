//! One process at a time in a run folder: an advisory lock on the folder's `.lock` file, held
//! for as long as the process trains there. The operating system releases it when the process
//! ends, however it ends (a SIGKILL included), so nothing stale is ever left to clean up. The
//! file holds the holder's process id, for the message that refuses a second process.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::error::RunError;
use super::folder::create_dir;

/// The lock file in a run folder. It stays when the lock is released: removing it would let a
/// process that opened it just before lock a file that no longer has a name.
pub const LOCK_FILE: &str = ".lock";

/// A held lock on a run folder; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Locks `dir` (created if missing) for this process, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, RunError> {
        if dir.exists() && !dir.is_dir() {
            return Err(RunError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        create_dir(dir)?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(RunError::io(&path, "open"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(RunError::Locked {
                    dir: dir.to_path_buf(),
                    holder: holder(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(RunError::io(&path, "lock")(e)),
        }
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.flush());
        written.map_err(RunError::io(&path, "write"))?;
        Ok(Self { _file: file })
    }

    /// Whether a process holds the lock on `dir` now: a run is training there.
    pub fn is_held(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
            return false;
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(_)) => false,
        }
    }
}

/// The process id the lock file names, as text for a message.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    match file.read_to_string(&mut text) {
        Ok(_) if !text.trim().is_empty() => format!("process {}", text.trim()),
        _ => "another process".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        let first = RunLock::acquire(&dir).unwrap();
        assert!(RunLock::is_held(&dir));
        let err = RunLock::acquire(&dir).unwrap_err().to_string();
        let pid = std::process::id().to_string();
        assert!(err.contains("in use") && err.contains(&pid), "{err}");
        drop(first);
        assert!(!RunLock::is_held(&dir));
        RunLock::acquire(&dir).unwrap();
    }
}

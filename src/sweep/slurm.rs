//! A sweep on a SLURM cluster: a job array of one task per trial that is not done, each task
//! running `lenet sweep ... --trial $SLURM_ARRAY_TASK_ID` on the shared filesystem, so that its
//! results land in the sweep's folder as a local run's do. Submitting again submits what is left.

use std::path::PathBuf;
use std::process::Command;

use super::error::SweepError;
use super::folder::{self, LOGS_DIR, TrialState, TrialStatus};
use super::plan::SweepPlan;
use crate::run::write_atomic;

/// The script `sbatch` is given, and where it is written.
pub const SCRIPT_FILE: &str = "slurm.sh";

/// A job array for the trials that are not done.
#[derive(Debug, Clone)]
pub struct JobArray {
    /// The trials it runs, by number (the array's task ids).
    pub trials: Vec<usize>,
    /// The batch script.
    pub script: String,
}

/// The job array that runs `plan`'s trials that are neither done nor training now: each task
/// runs `command` (the program and its arguments, without `--trial`) with `--trial` set to its
/// task id, on `cpus` cores. `sbatch_args` are sbatch's own options, passed through
/// (`--partition=debug`, `--time=1:00:00`).
pub fn job_array(
    plan: &SweepPlan,
    command: &[String],
    cpus: usize,
    sbatch_args: &[String],
) -> Result<JobArray, SweepError> {
    for arg in sbatch_args {
        let option = arg.split('=').next().unwrap_or_default();
        if !arg.starts_with('-') || arg.contains(['\n', '\r', '\0']) {
            return Err(SweepError::Usage {
                message: format!(
                    "--slurm-arg {arg:?}: not an sbatch option; pass one option each, e.g. \
                     --slurm-arg=--partition=debug"
                ),
            });
        }
        // sbatch takes `-a1-3` and any unambiguous start of `--array` too.
        let array = (option.starts_with("-a") && !option.starts_with("--"))
            || (option.len() >= 4 && "--array".starts_with(option));
        if array {
            return Err(SweepError::Usage {
                message: format!(
                    "--slurm-arg {arg:?}: the sweep makes the array, one task per trial"
                ),
            });
        }
    }
    let trials: Vec<usize> = plan
        .trials
        .iter()
        .filter(|trial| {
            let state = TrialStatus::read(&plan.trial_dir(trial)).state;
            !state.is_done() && state != TrialState::Training
        })
        .map(|trial| trial.number)
        .collect();
    let dir = absolute(&plan.dir)?;
    let quoted: Vec<String> = command.iter().map(|a| quote(a)).collect();
    let mut script = format!(
        "#!/bin/bash\n\
         # lenet sweep {name}: one array task per trial, each run as `lenet sweep --trial N`\n\
         # runs it (a stopped trial resumes from its checkpoint). Submitted by\n\
         # `lenet sweep --slurm`; submitting again runs the trials that are not done.\n\
         #SBATCH --job-name=lenet-{name}\n\
         #SBATCH --array={array}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --output={output}\n",
        name = plan.spec.name,
        array = ranges(&trials),
        output = quote(&dir.join(LOGS_DIR).join("slurm-%A_%a.log").to_string_lossy()),
    );
    for arg in sbatch_args {
        script += &format!("#SBATCH {arg}\n");
    }
    script += &format!(
        "\n# Burn's CPU backends compute on as many threads as this.\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-{cpus}}}\"\n\
         exec {} --trial \"$SLURM_ARRAY_TASK_ID\"\n",
        quoted.join(" ")
    );
    Ok(JobArray { trials, script })
}

/// Writes the script into the sweep's folder (with `sweep.json` and `logs/`) and submits it
/// with `sbatch`; returns the job id.
pub fn submit(plan: &SweepPlan, job: &JobArray) -> Result<String, SweepError> {
    // Asked first, so that a machine without SLURM is told so before anything is written.
    Command::new("sbatch")
        .arg("--version")
        .output()
        .map_err(|source| SweepError::NoSbatch { source })?;
    folder::open(plan)?;
    let script = plan.dir.join(SCRIPT_FILE);
    write_atomic(&script, job.script.as_bytes())?;
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(&script)
        .output()
        .map_err(|source| SweepError::NoSbatch { source })?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        let said: Vec<&str> = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        return Err(SweepError::Sbatch(if said.is_empty() {
            format!("it exited with {}", output.status)
        } else {
            said.join("; ")
        }));
    }
    // `--parsable` prints the job id, then `;cluster` on a federation.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let id = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() {
        return Err(SweepError::Sbatch("it printed no job id".to_string()));
    }
    Ok(id)
}

/// `1-3,5,7-8`: the numbers as SLURM's array ranges.
pub fn ranges(numbers: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j + 1] == numbers[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            numbers[i].to_string()
        } else {
            format!("{}-{}", numbers[i], numbers[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// `path` from the root, as a task that starts elsewhere needs it.
fn absolute(path: &std::path::Path) -> Result<PathBuf, SweepError> {
    std::path::absolute(path).map_err(|e| SweepError::Usage {
        message: format!("{}: {e}", path.display()),
    })
}

/// `text` as one word for bash.
fn quote(text: &str) -> String {
    shlex::try_quote(text)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| text.replace('\0', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_array_ranges() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn words_are_quoted_for_bash_only_when_they_need_it() {
        assert_eq!(quote("/opt/lenet"), "/opt/lenet");
        assert_eq!(quote("my runs/a b"), "'my runs/a b'");
        assert_eq!(quote("it's"), "\"it's\"");
    }
}

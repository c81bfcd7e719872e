//! `lenet sweep --slurm` against a real SLURM cluster of one node, started by the test: Debian's
//! `munged`, `slurmctld` and `slurmd`, as root, without systemd, from a minimal `slurm.conf` in
//! a temporary folder (its own munge key and socket, its own ports), stopped when the test ends.
//! The sweep is submitted as a job array, its trials train as array tasks, and the report reads
//! their folders as it reads a local sweep's; submitting again submits nothing.
//!
//! Needs Debian's `slurmctld`, `slurmd`, `slurm-client` and `munge` (`.ci/run` installs them) and
//! root. Without them the test says so and passes, unless `LENET_REQUIRE_SLURM` is set, as CI
//! sets it.

mod common;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{lenet_process, real_mnist_dir, summary_of, sweep_report_json};

/// A one-node cluster: its daemons, ended on drop, and its `slurm.conf`.
struct Cluster {
    daemons: Vec<Child>,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts munged, slurmctld and slurmd, and waits for the node to be idle.
    fn start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let root = dir.path().to_path_buf();
        for sub in ["munge", "state", "spool", "log"] {
            fs::create_dir(root.join(sub)).map_err(|e| e.to_string())?;
        }
        let key = root.join("munge/munge.key");
        fs::write(&key, read_random()?).map_err(|e| e.to_string())?;
        set_mode(&key, 0o600);
        let socket = root.join("munge/munge.socket");
        // Dropped on an error below, it stops the daemons started so far.
        let mut cluster = Self {
            daemons: Vec::new(),
            conf: root.join("slurm.conf"),
            _dir: dir,
        };
        cluster.spawn(
            Command::new(find("munged")?)
                .args(["--foreground", "--force"])
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg(format!(
                    "--log-file={}",
                    root.join("log/munged.log").display()
                ))
                .arg(format!(
                    "--pid-file={}",
                    root.join("munge/munged.pid").display()
                ))
                .arg(format!("--seed-file={}", root.join("munge/seed").display())),
        )?;
        wait_for("munged's socket", || socket.exists())?;
        let host = hostname()?;
        let (controller, node) = (free_port(), free_port());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let conf = format!(
            "ClusterName=lenettest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={controller}\n\
             SlurmdPort={node}\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             StateSaveLocation={root}/state\n\
             SlurmdSpoolDir={root}/spool\n\
             SlurmctldPidFile={root}/slurmctld.pid\n\
             SlurmdPidFile={root}/slurmd.pid\n\
             SlurmctldLogFile={root}/log/slurmctld.log\n\
             SlurmdLogFile={root}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             MpiDefault=none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             ReturnToService=2\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cores} State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            socket = socket.display(),
            root = root.display(),
        );
        fs::write(&cluster.conf, conf).map_err(|e| e.to_string())?;
        let conf_path = cluster.conf.clone();
        cluster.spawn(
            Command::new(find("slurmctld")?)
                .args(["-D", "-i"])
                .env("SLURM_CONF", &conf_path),
        )?;
        cluster.spawn(
            Command::new(find("slurmd")?)
                .arg("-D")
                .env("SLURM_CONF", &conf_path),
        )?;
        let sinfo = find("sinfo")?;
        wait_for("the node to be idle", || {
            Command::new(&sinfo)
                .args(["-h", "-o", "%T"])
                .env("SLURM_CONF", &conf_path)
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        })
        .map_err(|e| {
            let log =
                |name: &str| fs::read_to_string(root.join("log").join(name)).unwrap_or_default();
            format!(
                "{e}; slurmctld.log: {}; slurmd.log: {}",
                log("slurmctld.log"),
                log("slurmd.log")
            )
        })?;
        Ok(cluster)
    }

    fn spawn(&mut self, command: &mut Command) -> Result<(), String> {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
        self.daemons.push(child);
        Ok(())
    }

    /// `lenet sweep` and `extra`, talking to this cluster.
    fn lenet(&self, file: &Path, artifacts: &Path, extra: &[&str]) -> std::process::Output {
        lenet_process()
            .env("SLURM_CONF", &self.conf)
            .args(["sweep", "--config"])
            .arg(file)
            .arg("--artifact-dir")
            .arg(artifacts)
            .arg("--data-dir")
            .arg(real_mnist_dir())
            .args(extra)
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // slurmd, then slurmctld, then munged: each stopped as its service would be.
        for daemon in self.daemons.iter_mut().rev() {
            // SAFETY: signalling a daemon this test started.
            unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while daemon.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = daemon.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn read_random() -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = vec![0u8; 1024];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hostname() -> Result<String, String> {
    let output = Command::new("hostname")
        .arg("-s")
        .output()
        .map_err(|e| format!("hostname: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A SLURM or munge program, on the PATH or in /usr/sbin where Debian puts the daemons.
fn find(name: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or(format!(
            "no {name} (apt-get install slurmctld slurmd slurm-client munge)"
        ))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("gave up waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

#[test]
fn a_sweep_runs_as_a_slurm_job_array() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let cluster = match (root, Cluster::start()) {
        (true, Ok(cluster)) => cluster,
        (false, _) => {
            common::skip_unless_required("LENET_REQUIRE_SLURM", "the SLURM test", "not root");
            return;
        }
        (true, Err(why)) => {
            common::skip_unless_required("LENET_REQUIRE_SLURM", "the SLURM test", &why);
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let file = dir.path().join("cluster.json");
    fs::write(
        &file,
        r#"{"name": "cluster",
            "base": {"epochs": 2, "batch_size": 64, "checkpoint_every_seconds": 0,
                     "data": {"validation_size": 500, "train_limit": 2000, "test_limit": 500}},
            "parameters": {"optimizer.learning_rate": {"values": [0.001, 0.003]}}}"#,
    )
    .unwrap();
    let output = cluster.lenet(&file, &artifacts, &["--slurm"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let job = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Submitted job "))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no job id in {stdout}"))
        .to_string();
    assert!(stdout.contains("2 array tasks for trials 1-2"), "{stdout}");

    let sweep = artifacts.join("cluster");
    let start = Instant::now();
    let finished = loop {
        let report = sweep_report_json(&sweep);
        let trials = report["trials"].as_array().unwrap().clone();
        if trials.iter().all(|t| t["state"] == "finished") {
            break trials;
        }
        let logs: Vec<String> = fs::read_dir(sweep.join("logs"))
            .map(|d| {
                d.flatten()
                    .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the array tasks did not finish: {report}\n{logs:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // Each task trained its trial into an ordinary run folder, its output in the sweep's logs.
    for (task, trial) in finished.iter().enumerate() {
        let summary = summary_of(Path::new(trial["run"].as_str().unwrap()));
        assert_eq!(summary.epochs, 2);
        assert_eq!(trial["metric"].as_f64(), summary.history[1].valid_accuracy);
        let log = sweep
            .join("logs")
            .join(format!("slurm-{job}_{}.log", task + 1));
        let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(text.contains("Test accuracy"), "{text}");
    }
    assert!(sweep.join("slurm.sh").is_file());

    // Submitting again: every trial is done, so nothing is.
    let again = cluster.lenet(&file, &artifacts, &["--slurm"]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{stdout}");
    assert!(stdout.contains("nothing to submit"), "{stdout}");

    // A job sbatch refuses is one line naming its reason.
    let refused = cluster.lenet(
        &file,
        &dir.path().join("elsewhere"),
        &["--slurm", "--slurm-arg=--partition=nowhere"],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("sbatch refused the job"), "{stderr}");
    assert!(
        stderr.contains("nowhere") || stderr.contains("partition"),
        "{stderr}"
    );
}

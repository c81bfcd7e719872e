//! The server's compute threads: one per core, each running the computations waiting for it
//! one after another.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

/// A computation queued for the pool.
pub type Job = Box<dyn FnOnce() + Send>;

/// The threads computations run on, one per core, each taking the next waiting computation as
/// soon as it is done with one (requests waiting on a semaphore for a blocking thread left the
/// cores idle a fifth of the time between hand-overs). Plain threads, not a rayon pool: a
/// rayon thread waiting for the kernels' parallel work takes other queued jobs meanwhile, so a
/// request could wait for a later one to finish; from a plain thread the kernels run on
/// rayon's global pool and the thread waits for them. The threads end with the pool.
pub struct ComputePool {
    jobs: mpsc::Sender<Job>,
}

impl ComputePool {
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("lenet-compute-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held while taking a job, not while running it.
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = job else { return };
                        // Jobs catch their work's panics; this keeps the thread should
                        // anything else in one panic.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .expect("the system starts the compute threads");
        }
        Self { jobs }
    }

    /// Queues `job` for the next free thread.
    pub fn run(&self, job: Job) {
        // The threads end only when the pool is dropped, so one always takes the job.
        let _ = self.jobs.send(job);
    }
}

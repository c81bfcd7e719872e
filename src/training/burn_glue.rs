//! Every place lenet leans on how Burn 0.22.1's training behaves rather than on its API, in one
//! file, each with the Burn behaviour it answers. A Burn upgrade is checked here first:
//! `tests/burn_glue.rs` reads the burn-train source the build uses and fails if the messages or
//! the order below change, and `tests/dashboard.rs` drives the real dashboard in a
//! pseudo-terminal through every way out of it.
//!
//! 1. **The dashboard's stop and kill are told apart by their text.** Burn's dashboard stops
//!    training with `Interrupter::stop(Some(DASHBOARD_STOP))` (q, then s) and kills it by
//!    panicking with [`DASHBOARD_KILL`] (q, then k), in more than one thread; neither has a
//!    type of its own.
//! 2. **Ctrl-C under the dashboard.** The dashboard puts the terminal in raw mode, where Ctrl-C
//!    is an ordinary key it ignores. [`dashboard`] turns the terminal's signal keys back on
//!    (`ISIG`) once raw mode is on, so Ctrl-C is a SIGINT again, which the caller's handler
//!    turns into a stop at the next batch; the settings from before are kept so that a second
//!    Ctrl-C, which exits at once, hands back a working terminal ([`restore`]).
//! 3. **The kill as an exit, not a panic report.** Left alone, the kill ends with exit code 101
//!    and Burn's panic report over the shell prompt. A panic hook of lenet's, installed *after*
//!    the one the dashboard installs once it has entered raw mode (so that it runs first), gives
//!    the terminal back, says so in one line and exits with 130, as a second Ctrl-C does; the
//!    newest checkpoint is whole, since checkpoints are written atomically. Nothing says when
//!    the dashboard's thread has installed its hook: it does so right after entering raw mode,
//!    which [`dashboard`] waits for, then waits 100 ms more. [`launch`] also catches the kill
//!    should it reach the training thread first. Burn's application logger would install a
//!    panic hook of its own, which prints a report and points at an `experiment.log` that
//!    stays empty for lenet; training turns it off (`with_application_logger(None)`).
//! 4. **How the run ended comes back beside Burn's result.** Burn takes the training loop as an
//!    `Arc<dyn SupervisedLearningStrategy>` and returns a `LearningResult` with no room for why
//!    a run stopped or its history; and the dashboard resets the interrupter when training ends,
//!    so a run stopped with q would look finished. The loop records its own outcome, read back
//!    from the loop after the launch (see `resumable::ResumableLoop::outcome`).

use std::any::Any;
use std::path::Path;
use std::sync::{Mutex, Once};
use std::time::Duration;

use burn::train::Interrupter;
use burn::train::renderer::MetricsRenderer;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;

use super::error::TrainingError;
use super::options::KillHook;

/// The reason Burn's dashboard gives its stop request (q, then s).
pub const DASHBOARD_STOP: &str = "Stopping training from user input.";

/// The message Burn's dashboard panics with when the user kills training (q, then k).
pub const DASHBOARD_KILL: &str = "Killing training from user input.";

/// What stopped a run, for people, from the reason its stop request gave.
pub fn stopped_by(reason: &str) -> String {
    if reason == DASHBOARD_STOP {
        "the dashboard (q, then s)".to_string()
    } else {
        reason.to_string()
    }
}

/// Burn's dashboard, with Ctrl-C working under it and its kill turned into one line and exit
/// code 130 (told to `on_kill` first, if given).
pub fn dashboard(
    interrupter: Interrupter,
    run_dir: &Path,
    on_kill: Option<KillHook>,
) -> Box<dyn MetricsRenderer> {
    remember_settings();
    let dashboard = TuiMetricsRendererWrapper::new(interrupter, None);
    keep_ctrl_c();
    exit_on_kill(run_dir, on_kill);
    Box::new(dashboard)
}

/// Runs `training` (Burn's launch), turning a dashboard kill that reaches this thread into
/// [`TrainingError::Killed`]; any other panic goes on unwinding.
pub fn launch<T>(run_dir: &Path, training: impl FnOnce() -> T) -> Result<T, TrainingError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(training)) {
        Ok(result) => Ok(result),
        Err(payload) if is_dashboard_kill(&*payload) => {
            restore();
            Err(TrainingError::Killed {
                run_dir: run_dir.to_path_buf(),
            })
        }
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// The terminal settings from before the dashboard, for [`restore`].
#[cfg(unix)]
static BEFORE_DASHBOARD: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Keeps the terminal's settings, just before the dashboard starts.
fn remember_settings() {
    #[cfg(unix)]
    // SAFETY: tcgetattr on stdout's descriptor into a termios owned by this frame.
    unsafe {
        let mut settings: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDOUT_FILENO, &mut settings) == 0 {
            *lock(&BEFORE_DASHBOARD) = Some(settings);
        }
    }
}

/// Waits (up to two seconds) for the dashboard's thread to put the terminal in raw mode, then
/// turns the signal keys back on.
fn keep_ctrl_c() {
    #[cfg(unix)]
    for _ in 0..200 {
        // SAFETY: tcgetattr/tcsetattr on stdout's descriptor with a termios owned by this frame.
        unsafe {
            let mut settings: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDOUT_FILENO, &mut settings) != 0 {
                return;
            }
            if settings.c_lflag & libc::ICANON == 0 {
                settings.c_lflag |= libc::ISIG;
                libc::tcsetattr(libc::STDOUT_FILENO, libc::TCSANOW, &settings);
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Leaves the dashboard's screen and restores the terminal, for an exit that skips the
/// dashboard's own cleanup (a second Ctrl-C, the kill). Does nothing if the dashboard never
/// started.
pub fn restore() {
    #[cfg(unix)]
    if let Some(settings) = lock(&BEFORE_DASHBOARD).take() {
        use std::io::Write;
        // Leave the alternate screen, show the cursor, stop mouse reporting.
        print!("\x1b[?1049l\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l");
        let _ = std::io::stdout().flush();
        // SAFETY: tcsetattr on stdout's descriptor with settings read from it earlier.
        unsafe {
            libc::tcsetattr(libc::STDOUT_FILENO, libc::TCSANOW, &settings);
        }
    }
}

/// Whether a panic's payload is the dashboard's kill.
fn is_dashboard_kill(payload: &(dyn Any + Send)) -> bool {
    payload.downcast_ref::<&str>() == Some(&DASHBOARD_KILL)
        || payload.downcast_ref::<String>().map(String::as_str) == Some(DASHBOARD_KILL)
}

/// Installs the hook of item 3 above, once the dashboard is up (after [`keep_ctrl_c`]).
fn exit_on_kill(run_dir: &Path, on_kill: Option<KillHook>) {
    std::thread::sleep(Duration::from_millis(100));
    let killed = TrainingError::Killed {
        run_dir: run_dir.to_path_buf(),
    };
    let previous = std::panic::take_hook();
    // More than one thread unwinds with the kill; the first says so and exits, the others wait
    // for it here rather than print the line again.
    static ONCE: Once = Once::new();
    std::panic::set_hook(Box::new(move |info| {
        if is_dashboard_kill(info.payload()) {
            ONCE.call_once(|| {
                restore();
                match &on_kill {
                    Some(hook) => hook(&killed),
                    None => eprintln!("error: {killed}"),
                }
                std::process::exit(130);
            });
        }
        previous(info);
    }));
}

/// A lock that a panic elsewhere does not make unusable: the terminal must be restorable from
/// any thread, a panicking one included.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

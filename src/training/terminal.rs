//! Every way out of Burn's dashboard ends with the terminal given back and one line.
//!
//! The dashboard puts the terminal in raw mode, where Ctrl-C is an ordinary key that the
//! dashboard ignores, so a user could not interrupt training the way they interrupt anything
//! else. Turning the terminal's signal keys back on (`ISIG`) makes Ctrl-C a SIGINT again, which
//! the program's handler turns into a stop at the next batch. The settings from before the
//! dashboard are kept so that a second Ctrl-C, which exits at once, can hand back a working
//! terminal.
//!
//! The dashboard's own kill (q, then k) ends training by panicking in its threads, which left
//! exit code 101 and Burn's panic report over the shell prompt; [`exit_on_kill`] turns it into
//! the same kind of exit as a second Ctrl-C.

use std::path::Path;
use std::sync::{Mutex, Once};
use std::time::Duration;

/// The message Burn's dashboard panics with when the user kills training (q, then k).
pub const DASHBOARD_KILL: &str = "Killing training from user input.";

#[cfg(unix)]
static BEFORE_DASHBOARD: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Call just before the dashboard starts.
pub fn remember_settings() {
    #[cfg(unix)]
    // SAFETY: tcgetattr on stdout's descriptor into a termios owned by this frame.
    unsafe {
        let mut settings: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDOUT_FILENO, &mut settings) == 0 {
            *BEFORE_DASHBOARD.lock().unwrap() = Some(settings);
        }
    }
}

/// Call once the dashboard is starting: waits (up to two seconds) for its thread to put the
/// terminal in raw mode, then turns the signal keys back on.
pub fn keep_ctrl_c() {
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
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Leaves the dashboard's screen and restores the terminal, for an exit that skips the
/// dashboard's own cleanup. Does nothing if the dashboard never started.
pub fn restore() {
    #[cfg(unix)]
    if let Some(settings) = BEFORE_DASHBOARD.lock().unwrap().take() {
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
pub fn is_dashboard_kill(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.downcast_ref::<&str>() == Some(&DASHBOARD_KILL)
        || payload.downcast_ref::<String>().map(String::as_str) == Some(DASHBOARD_KILL)
}

/// Call once the dashboard is up (after [`keep_ctrl_c`]): its kill (q, then k) then gives the
/// terminal back, prints one line and exits with 130, the code of a program stopped by Ctrl-C.
/// The newest checkpoint is whole (checkpoints are written atomically), so the run can resume.
pub fn exit_on_kill(run_dir: &Path) {
    // The dashboard's thread installs its own panic hook just after it enters raw mode, which
    // `keep_ctrl_c` waited for; this one must come after it to see the kill first.
    std::thread::sleep(Duration::from_millis(100));
    let message = format!(
        "error: training killed from the dashboard (q, then k); resume from its newest \
         checkpoint with: lenet resume --run {}",
        run_dir.display()
    );
    let previous = std::panic::take_hook();
    // More than one thread can unwind with the kill; the first says so and exits, the others
    // wait for it here rather than print the line again.
    static ONCE: Once = Once::new();
    std::panic::set_hook(Box::new(move |info| {
        if is_dashboard_kill(info.payload()) {
            ONCE.call_once(|| {
                restore();
                eprintln!("{message}");
                std::process::exit(130);
            });
        }
        previous(info);
    }));
}

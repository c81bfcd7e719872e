//! Keeping Ctrl-C working while Burn's dashboard owns the terminal.
//!
//! The dashboard puts the terminal in raw mode, where Ctrl-C is an ordinary key that the
//! dashboard ignores, so a user could not interrupt training the way they interrupt anything
//! else. Turning the terminal's signal keys back on (`ISIG`) makes Ctrl-C a SIGINT again, which
//! the program's handler turns into a stop at the next batch. The settings from before the
//! dashboard are kept so that a second Ctrl-C, which exits at once, can hand back a working
//! terminal.

use std::sync::Mutex;

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

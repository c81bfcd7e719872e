//! `lenet`: train LeNet-5 on MNIST or another data set from a JSON config, then evaluate, use
//! and export it.
//!
//! A thin layer over the library: [`cli`] reads the command line, each command calls the
//! library and prints what it returns, and every error ends the program with one line and the
//! error's exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use cli::{Cli, Command};

// mimalloc keeps freed memory for reuse: with the system allocator, the large buffers the flex
// kernels allocate each step went back to the OS and came back as page faults, which made a
// training epoch 7.6 s instead of 7.2 s and evaluation half as fast (`lenet bench`, flex, 2
// cores).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `lenet ... | head` would panic on the next print once `head`
    // exits; restore the default and end quietly, as other command-line tools do.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            error.exit()
        }
        Err(error) => {
            eprintln!("{}", cli::one_line(&error));
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        None => cli::train::train_command(&cli.train),
        Some(Command::Train(args)) => cli::train::train_command(args),
        Some(Command::Resume(args)) => cli::train::resume_command(args),
        Some(Command::Eval(args)) => cli::inference::eval_command(args),
        Some(Command::Predict(args)) => cli::inference::predict_command(args),
        Some(Command::Explain(args)) => cli::explain::explain_command(args),
        Some(Command::Summary(args)) => cli::inference::summary_command(args),
        Some(Command::Export(args)) => cli::inference::export_command(args),
        Some(Command::Import(args)) => cli::inference::import_command(args),
        Some(Command::Bench(args)) => cli::bench::bench_command(args),
        Some(Command::Serve(args)) => cli::serve::serve_command(args),
        Some(Command::Runs(args)) => cli::serve::runs_command(args),
        Some(Command::Sweep(args)) => cli::sweep::sweep_command(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}", error.line());
            ExitCode::from(error.exit_code())
        }
    }
}

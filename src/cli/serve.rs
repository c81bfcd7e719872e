//! `lenet serve` and `lenet runs`: the runs of an artifacts folder, in the browser and as a
//! table.

use std::process::ExitCode;

use lenet::report::runs_table;
use lenet::run::list_runs;
use lenet::serve::{ServeOptions, Server};

use super::error::Error;
use super::{RunsArgs, ServeArgs};

pub fn serve_command(args: &ServeArgs) -> Result<ExitCode, Error> {
    let server = Server::bind(&ServeOptions {
        artifacts: args.artifacts.clone(),
        host: args.host,
        port: args.port,
        data_dir: args.data_dir.clone(),
        device: args.device,
        max_image_pixels: args.max_image_pixels,
        token: args.token.clone().filter(|t| !t.is_empty()),
        allowed_hosts: args.allow_host.clone(),
    })?;
    if server.is_public() {
        eprintln!(
            "warning: listening on {} lets anyone who can reach this machine use the server{}",
            args.host,
            if args.token.is_some() {
                ""
            } else {
                "; --token TOKEN makes every request need it"
            }
        );
    }
    let runs = list_runs(&args.artifacts)?.len();
    println!(
        "Serving {runs} run{} from {} at {} (Ctrl-C stops)",
        if runs == 1 { "" } else { "s" },
        args.artifacts.display(),
        server.url()
    );
    server.run()?;
    Ok(ExitCode::SUCCESS)
}

pub fn runs_command(args: &RunsArgs) -> Result<ExitCode, Error> {
    let runs = list_runs(&args.artifacts)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).expect("runs serialise")
        );
    } else if runs.is_empty() {
        println!("No runs in {}", args.artifacts.display());
    } else {
        print!("{}", runs_table(&runs));
    }
    Ok(ExitCode::SUCCESS)
}

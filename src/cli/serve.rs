//! `lenet serve` and `lenet runs`: the runs of an artifacts folder, in the browser and as a
//! table.

use std::process::ExitCode;

use lenet::report::runs_table;
use lenet::run::list_runs;
use lenet::serve::{ServeOptions, Server};
use lenet::sweep::folder::list_sweeps;

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
    let sweeps = match list_sweeps(&args.artifacts).len() {
        0 => String::new(),
        1 => " and 1 sweep".to_string(),
        n => format!(" and {n} sweeps"),
    };
    println!(
        "Serving {runs} run{}{sweeps} from {} at {} (Ctrl-C stops)",
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
        return Ok(ExitCode::SUCCESS);
    }
    let sweeps = list_sweeps(&args.artifacts);
    if runs.is_empty() {
        let outside = if sweeps.is_empty() {
            ""
        } else {
            " outside its sweeps"
        };
        println!("No runs in {}{outside}", args.artifacts.display());
    } else {
        print!("{}", runs_table(&runs));
    }
    // A sweep's trials are runs of the sweep's own folder: named here, listed by the report.
    for dir in sweeps {
        println!(
            "Sweep {}: {} sweep report --sweep {}",
            lenet::run::name(&dir),
            lenet::run::invocation(),
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

//! The `arcade` binary: parse the command line, set up logging, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = arcade::cli::Cli::parse();
    // The daemon's log is its only voice, so it says what happens by default.
    let daemon = matches!(cli.command, arcade::cli::Command::Daemon);
    init_tracing(cli.verbose + u8::from(daemon));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("arcade: error: failed to start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(arcade::cli::run(cli));
    // Work left on blocking threads (a sync the startup hook stopped waiting for) must not hold
    // the process: give it a moment, then go.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if arcade::cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the whole cause chain, colon-separated, with no line breaks inside.
            let message = format!("{err:#}").replace('\n', " ");
            eprintln!("arcade: error: {message}");
            ExitCode::from(arcade::cli::exit_code(&err))
        }
    }
}

/// Logs go to stderr; `-v` shows what happens, `-vv` every request, `RUST_LOG` overrides both.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "arcade=warn",
        1 => "arcade=info",
        _ => "arcade=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .compact()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

//! The `arcade` binary: parse the command line, set up logging, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = arcade::cli::Cli::parse();
    // The daemon's log is its only voice, so it says what happens by default.
    let daemon = matches!(cli.command, arcade::cli::Command::Daemon);
    init_tracing(cli.verbose + u8::from(daemon), daemon);
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
            eprintln!("arcade: error: {}", arcade::cli::one_line(&err));
            ExitCode::from(arcade::cli::exit_code(&err))
        }
    }
}

/// Logs go to stderr; `-v` shows what happens, `-vv` every request, `RUST_LOG` overrides both.
/// The daemon, when its stderr is neither a terminal nor the journal (D-Bus activation hands it
/// /dev/null), logs to `$XDG_STATE_HOME/arcade/daemon.log`. Colour only on a terminal.
fn init_tracing(verbose: u8, daemon: bool) {
    use std::io::IsTerminal as _;
    let default = match verbose {
        0 => "arcade=warn",
        1 => "arcade=info",
        _ => "arcade=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .compact()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(terminal);
    // systemd sets JOURNAL_STREAM when stderr goes to the journal.
    let to_file = daemon && !terminal && std::env::var_os("JOURNAL_STREAM").is_none();
    if to_file && let Some(file) = daemon_log_file() {
        builder.with_writer(std::sync::Mutex::new(file)).init();
    } else {
        builder.with_writer(std::io::stderr).init();
    }
}

/// The daemon's log file, opened for appending, private to the user.
fn daemon_log_file() -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = arcade::cli::daemon_log(None).ok()?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .ok()
}

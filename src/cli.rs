//! The command line: clap definitions, and the glue that runs each command and prints its result.
//!
//! This module owns stdout. Library modules return values; here they become text or JSON.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Backend, Overrides, Source};
use crate::harbor::Progress;
use crate::menu::{self, install};
use crate::text::count;
use crate::{launch, sync};

/// Desktop menus and launchers for container images on the CANFAR Science Platform.
#[derive(Debug, Parser)]
#[command(name = "arcade", version, about, propagate_version = true)]
pub struct Cli {
    /// Read this config file after the usual ones (it wins over them). ARCADE_CONFIG names one
    /// when this is not given.
    // Not clap's `env = "ARCADE_CONFIG"`: clap would turn an empty variable into an empty path,
    // while the config's environment layer reads it as unset, like every other variable.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Say more (-v: what happens, -vv: every request). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, show or remove the Astro Software menu.
    #[command(subcommand)]
    Menu(MenuCommand),
    /// Print the resolved settings (secrets are never shown).
    Config {
        #[command(flatten)]
        source: SourceArgs,
        /// Print the settings as one JSON object.
        #[arg(long)]
        json: bool,
        /// Say where each value comes from: `file:PATH`, `env:VARIABLE`, `flag:--FLAG`,
        /// `default`, or `xdg` (the XDG base directories).
        #[arg(long)]
        show_origin: bool,
    },
    /// Build the menu from the bundled sample catalog into a throwaway XDG home and print it.
    Demo,
    /// Start an app on this display and wait for its first window.
    Launch(LaunchArgs),
    /// List the apps you launched.
    Ps {
        /// Print the launches as a JSON array, with each record's fields and the live state.
        #[arg(long)]
        json: bool,
    },
    /// Stop a launched app.
    Stop {
        /// The launch id from `arcade ps` (a unique prefix is enough).
        id: String,
    },
    /// Show a launched app's output.
    Logs {
        /// The launch id from `arcade ps` (a unique prefix is enough).
        id: String,
        /// Keep printing what the app writes, until it ends (or Ctrl-C).
        #[arg(short, long)]
        follow: bool,
    },
    /// For image authors: check a local image against the platform's requirements, or try it.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show the SAMP hub of your desktop sessions and the apps registered with it, or run a hub.
    Samp(SampArgs),
    /// Run the session's launcher daemon on the D-Bus session bus.
    Daemon,
    /// For the desktop's startup: build the menu from the last good catalog at once, then start
    /// (or poke) the daemon to refresh it from the network. Bounded in time.
    SessionStart,
    /// Print a shell completion script (see README for where to install it).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), for `man`.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Check a local image against every requirement of the platform's container guide.
    Check {
        /// The local image (never pulled, pushed or changed).
        image: String,
        /// The local engine to use.
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// How long the image's scripts may take, in seconds.
        #[arg(long, default_value_t = 20, value_name = "SECONDS")]
        timeout: u64,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open a local image on this display exactly as the platform would (`launch --local`).
    Try {
        /// The local engine to use.
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        image: String,
        /// The command to run instead of xterm (after `--`).
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct SampArgs {
    /// Print the hubs as a JSON array, each with its clients.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<SampCommand>,
}

#[derive(Debug, Subcommand)]
pub enum SampCommand {
    /// Run a SAMP hub (Standard Profile) in the foreground until Ctrl-C. The daemon runs one
    /// for each desktop session by itself.
    Hub {
        /// The address to listen on and advertise: an IP address, or `desktop` for this
        /// machine's own (app pods reach it there).
        #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
        address: String,
        /// The port (0: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The lockfile to write (default: the file SAMP_HUB names, else ~/.samp).
        #[arg(long, value_name = "PATH")]
        lockfile: Option<PathBuf>,
        /// Give the lockfile to this user (when run as root).
        #[arg(long, value_name = "UID:GID")]
        owner: Option<String>,
        /// Keep a status file here, which `arcade samp` reads.
        #[arg(long, value_name = "PATH")]
        status: Option<PathBuf>,
        /// Print what happens as JSON lines on stdout.
        #[arg(long)]
        notices: bool,
        /// Keep the hub's state here (private: it holds the clients' keys), and carry on from
        /// it when it is there: a hub started again keeps its URL, secret and clients.
        #[arg(long, value_name = "PATH")]
        state: Option<PathBuf>,
        /// End when stdin closes (how the daemon ends its hubs).
        #[arg(long, hide = true)]
        until_stdin_closes: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct LaunchArgs {
    /// Where the app runs.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// CPU cores for the app.
    #[arg(long, value_name = "N")]
    pub cores: Option<u32>,
    /// Memory for the app, in GB.
    #[arg(long, value_name = "GB")]
    pub ram: Option<u32>,
    /// GPUs for the app.
    #[arg(long, value_name = "N")]
    pub gpus: Option<u32>,
    /// The skaha URL, for the skaha backend (ARCADE_SKAHA_URL, else ARCADE_URL).
    #[arg(long)]
    pub url: Option<String>,
    /// Return once the app is started, without waiting for its window.
    #[arg(long)]
    pub no_wait: bool,
    /// Started by a menu entry: the menu's busy cursor lasts until the window maps (this
    /// process waits for it, through the daemon when there is one), and a failure also shows
    /// as a desktop notification.
    #[arg(long)]
    pub from_menu: bool,
    /// Run the image here with a local engine, as the platform would, without the daemon.
    #[arg(long)]
    pub local: bool,
    /// An image reference, or an app from the menu: `casa`, `casa:6.5`, `skaha/casa`.
    #[arg(value_name = "IMAGE|NAME[:TAG]")]
    pub target: String,
    /// Files to open, given to the app's own program (ds9, topcat, …) or to the command after
    /// `--`. A local container sees each at the same path, its folder shared read-write.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The command to run instead of xterm (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum MenuCommand {
    /// Fetch the catalog and write the menu.
    Sync(SyncArgs),
    /// Print the installed menu tree.
    List {
        /// Print the tree as JSON: menus with their entries (name, image, digest, file ID).
        #[arg(long)]
        json: bool,
    },
    /// Remove every file arcade wrote, and nothing else.
    Clean {
        /// Say what would be removed without removing it.
        #[arg(long)]
        dry_run: bool,
        /// Print what was removed as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Where the catalog comes from.
    #[arg(long, value_enum)]
    pub source: Option<Source>,
    /// The Harbor or skaha URL.
    #[arg(long)]
    pub url: Option<String>,
    /// The Harbor label (skaha image type) that marks desktop apps.
    #[arg(long)]
    pub label: Option<String>,
    /// A JSON catalog file, for `--source file`.
    #[arg(long, value_name = "PATH")]
    pub catalog: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Rebuild the menu from the last good catalog, without the network.
    #[arg(long)]
    pub offline: bool,
    /// Say what would change without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Accept a catalog with no images (and so an empty menu).
    #[arg(long)]
    pub allow_empty: bool,
}

impl Cli {
    fn overrides(&self, source: Option<&SourceArgs>) -> Overrides {
        let mut overrides = Overrides {
            config_file: self.config.clone(),
            ..Overrides::default()
        };
        if let Some(args) = source {
            overrides.source = args.source;
            overrides.url = args.url.clone();
            overrides.label = args.label.clone();
            overrides.catalog = args.catalog.clone();
        }
        overrides
    }
}

/// Writes to stdout. A reader that went away (`arcade ps | head`) is an error returned to the
/// top, which takes it as a quiet success, rather than the panic of `print!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// [`out!`] with a line break.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = || config::load(&cli.overrides(None));
    match &cli.command {
        Command::Menu(command) => run_menu(&cli, command).await,
        Command::Config {
            source,
            json,
            show_origin,
        } => {
            let settings = config::load(&cli.overrides(Some(source)))?;
            let text = render_config(&settings.view()?, *json, *show_origin)?;
            out!("{text}")?;
            Ok(())
        }
        Command::Demo => demo().await,
        Command::Launch(args) => {
            let mut overrides = cli.overrides(None);
            overrides.backend = args.backend;
            overrides.skaha_url = args.url.clone();
            run_launch(&config::load(&overrides)?, args).await
        }
        Command::Ps { json } => print_ps(&settings()?, *json).await,
        Command::Stop { id } => {
            let stopped = launch::stop(&settings()?, id).await.map_err(launch_error)?;
            outln!("stopped {} ({})", stopped.record.app, stopped.record.id)?;
            Ok(())
        }
        Command::Logs { id, follow } => print_logs(&settings()?, id, *follow).await,
        Command::Completions { shell } => {
            // Made in memory, then written: the generator panics on a write error, where a
            // closed pipe must stay a quiet success.
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command, "arcade", &mut script);
            std::io::stdout().lock().write_all(&script)?;
            Ok(())
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(&mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::Image(command) => run_image(&settings()?, command).await,
        Command::Daemon => {
            let overrides = cli.overrides(None);
            let settings = config::load(&overrides)?;
            let (core, notices) = crate::daemon::Core::new(settings, overrides);
            let served = crate::bus::serve(Arc::clone(&core), notices).await?;
            crate::daemon::run(core, served.closed()).await
        }
        Command::SessionStart => session_start(settings()).await,
        Command::Samp(args) => run_samp(settings, args).await,
    }
}

async fn run_menu(cli: &Cli, command: &MenuCommand) -> anyhow::Result<()> {
    match command {
        MenuCommand::Sync(args) => {
            let mut overrides = cli.overrides(Some(&args.source));
            overrides.allow_empty = args.allow_empty;
            menu_sync(&config::load(&overrides)?, args).await
        }
        MenuCommand::List { json } => menu_list(&config::load(&cli.overrides(None))?, *json),
        MenuCommand::Clean { dry_run, json } => {
            menu_clean(&config::load(&cli.overrides(None))?, *dry_run, *json)
        }
    }
}

async fn run_image(settings: &config::Settings, command: &ImageCommand) -> anyhow::Result<()> {
    match command {
        ImageCommand::Check {
            image,
            backend,
            timeout,
            json,
        } => image_check(settings, image, *backend, *timeout, *json).await,
        ImageCommand::Try {
            backend,
            image,
            command,
        } => {
            // A local image, as `image check` takes it: never pulled.
            let engine = local_engine(settings, *backend)?;
            if !engine.image_exists(image).await {
                return Err(NotFound(format!(
                    "{} has no local image {}: build or pull it first (image try never pulls)",
                    engine.name(),
                    crate::catalog::printable(image)
                ))
                .into());
            }
            let args = LaunchArgs {
                backend: Some(engine.kind),
                cores: None,
                ram: None,
                gpus: None,
                url: None,
                no_wait: false,
                from_menu: false,
                local: true,
                target: image.clone(),
                files: Vec::new(),
                command: command.clone(),
            };
            run_launch(settings, &args).await
        }
    }
}

/// Whether the failure is only that whoever read our output stopped reading (`arcade menu list |
/// head`), which is not a failure at all.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let broken = Some(std::io::ErrorKind::BrokenPipe);
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().map(|io| io.kind()) == broken
            // JSON written straight to stdout fails with the write's error inside.
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == broken
    })
}

/// A failure as one line: its causes, colon-separated, each said once (an error that names its
/// cause in its own text is not followed by that cause again), with no line breaks inside.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// The exit status for a failure: 1 when something asked for does not exist, 2 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<NotFound>().is_some() || err.downcast_ref::<ChecksFailed>().is_some() {
        1
    } else {
        2
    }
}

/// An error meaning "what you asked for is not there" (exit status 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// Marks "not found" launch errors so they exit with status 1.
fn launch_error(err: launch::Error) -> anyhow::Error {
    match err {
        launch::Error::NotFound(message) => NotFound(message).into(),
        // Nothing left to act on is, to the user, something that is not there.
        err @ launch::Error::AlreadyEnded { .. } => NotFound(err.to_string()).into(),
        other => other.into(),
    }
}

async fn run_launch(settings: &config::Settings, args: &LaunchArgs) -> anyhow::Result<()> {
    let mut request = launch::Request {
        target: args.target.clone(),
        cores: args.cores,
        ram_gb: args.ram,
        gpus: args.gpus,
        command: args.command.clone(),
        no_wait: args.no_wait,
        // The menu passes its startup-notification ID; the app gets it, not our children.
        startup_id: std::env::var("DESKTOP_STARTUP_ID")
            .ok()
            .filter(|id| !id.is_empty()),
        backend: args.backend,
        display: None,
        xauthority: None,
        id: None,
        skaha_url: None,
        shared: None,
        files: Vec::new(),
    };
    if args.from_menu {
        // The id is chosen here, so that a failure's notification can name the launch's log.
        request.id = Some(launch::record::Store::new(settings.dirs.launch_state()).new_id());
    }
    // Files are checked before anything starts, relative ones against this shell's folder.
    let files = if args.files.is_empty() {
        Ok(Vec::new())
    } else {
        std::env::current_dir()
            .map_err(launch::Error::from_cwd)
            .and_then(|cwd| launch::files::resolve(&args.files, &cwd))
    };
    let result = match files {
        Err(err) => Err(launch_error(err)),
        Ok(files) => {
            request.files = files;
            launch_somewhere(settings, args, &mut request).await
        }
    };
    if let Err(err) = &result
        && args.from_menu
        && !is_broken_pipe(err)
        && err.downcast_ref::<ShownByDaemon>().is_none()
    {
        // A menu click has no terminal to read the error in: the notification says it short,
        // and where the rest is when the launch got as far as writing its log.
        let store = launch::record::Store::new(settings.dirs.launch_state());
        let log_of = request
            .id
            .as_deref()
            .filter(|id| store.log_path(id).exists());
        let body = crate::daemon::short_reason(&one_line(err), log_of);
        crate::bus::client::notify_failure(&args.target, &body).await;
    }
    result
}

/// Launches here with `--local`, else through the session's daemon, else here.
async fn launch_somewhere(
    settings: &config::Settings,
    args: &LaunchArgs,
    request: &mut launch::Request,
) -> anyhow::Result<()> {
    if args.local {
        // `--local` runs the image here, whatever the configured backend.
        if request
            .backend
            .is_none_or(|backend| backend == Backend::Skaha)
        {
            request.backend = Some(local_backend(settings));
        }
        return launch_here(settings, request, args.from_menu).await;
    }
    match hand_to_daemon(settings, args, request).await {
        Some(result) => result,
        None => launch_here(settings, request, args.from_menu).await,
    }
}

/// A launch failure the daemon reported, and showed as a desktop notification itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ShownByDaemon(String);

/// The local engine `--local` runs on: docker when so configured or the only one there.
fn local_backend(settings: &config::Settings) -> Backend {
    match settings.launch.backend {
        Backend::Docker => Backend::Docker,
        _ if config::which("podman").is_none() && config::which("docker").is_some() => {
            Backend::Docker
        }
        _ => Backend::Podman,
    }
}

/// Launches through the session's daemon and waits as a launch here would (a menu click's
/// busy cursor lasts until the window maps, since the menu ends it when this process exits);
/// `None` when no daemon can take it.
async fn hand_to_daemon(
    settings: &config::Settings,
    args: &LaunchArgs,
    request: &launch::Request,
) -> Option<anyhow::Result<()>> {
    use crate::bus::client::{self, Refused};
    let bus = client::connect().await?;
    // The version is picked here, from the same last good catalog the daemon reads, so this
    // process can say which; a name it cannot resolve is the same error the daemon would give.
    let target = match launch::resolve(settings, &request.target) {
        Ok(target) => target,
        Err(err) => return Some(Err(launch_error(err))),
    };
    // The daemon launches with this caller's settings where they differ from its own (its
    // environment is the bus's, not this shell's): the backend, for skaha the service, and the
    // display with its cookie.
    let backend = launch::backend_of(settings, request);
    let handed = launch::Request {
        target: target.image.clone(),
        backend: Some(backend),
        skaha_url: (backend == Backend::Skaha)
            .then(|| settings.skaha.url.clone())
            .flatten(),
        display: std::env::var("DISPLAY").ok(),
        xauthority: std::env::var_os("XAUTHORITY").map(PathBuf::from),
        ..request.clone()
    };
    let wait = (!args.no_wait).then(|| settings.launch.wait + settings.skaha.poll_timeout);
    match client::launch(&bus, &handed, wait).await {
        Ok(Some(outcome)) => Some(print_daemon_outcome(&target.label, outcome)),
        Ok(None) => {
            tracing::debug!("no arcade daemon on the session bus; launching here");
            None
        }
        Err(Refused::NotFound(message)) => Some(Err(NotFound(message).into())),
        // A daemon from before an upgrade, which does not know this caller's options, is no
        // reason to fail a launch this process can do itself.
        Err(Refused::UnknownOption(message)) => {
            tracing::debug!(
                "the arcade daemon is older than this client ({message}); launching here"
            );
            None
        }
        Err(Refused::Other(message)) => Some(Err(anyhow::anyhow!("{message}"))),
    }
}

/// Launches in this process, following the app to its first window; Ctrl-C cancels. What the
/// user should know although the launch went well is a warning, and, for a menu click, which
/// has no terminal, a desktop notification.
async fn launch_here(
    settings: &config::Settings,
    request: &launch::Request,
    from_menu: bool,
) -> anyhow::Result<()> {
    let launched = launch::launch(settings, request, Arc::new(()), launch::interrupted())
        .await
        .map_err(|failure| launch_error(failure.error))?;
    let record = &launched.record;
    let app = crate::catalog::printable(&record.app);
    for notice in &launched.notices {
        eprintln!("arcade: warning: {notice}");
        if from_menu {
            crate::bus::client::notify(&format!("{app}: files not opened"), notice).await;
        }
    }
    match launched.window_after {
        Some(after) => outln!(
            "{app} is up: first window after {:.2} s (launch {}, {})",
            after.as_secs_f64(),
            record.id,
            record.backend
        )?,
        None => outln!("{app} started (launch {}, {})", record.id, record.backend)?,
    }
    Ok(())
}

fn print_daemon_outcome(label: &str, outcome: crate::bus::client::Outcome) -> anyhow::Result<()> {
    use crate::bus::client::Outcome;
    let app = crate::catalog::printable(label);
    match outcome {
        Outcome::Started(id) => outln!("{app} started (launch {id}, by the arcade daemon)")?,
        Outcome::Window { id, milliseconds } => outln!(
            "{app} is up: first window after {:.2} s (launch {id}, by the arcade daemon)",
            milliseconds as f64 / 1000.0
        )?,
        Outcome::Failed { reason, .. } => return Err(ShownByDaemon(reason).into()),
        Outcome::TimedOut(id) => anyhow::bail!(
            "the daemon reported no window for launch {id} in time (arcade ps, arcade logs {id})"
        ),
    }
    Ok(())
}

/// Prints a launch's log; with `follow`, goes on printing what is added until the launch is
/// over (its record says so, or it is not running on its backend) or Ctrl-C.
async fn print_logs(settings: &config::Settings, id: &str, follow: bool) -> anyhow::Result<()> {
    let (record, text) = launch::logs(settings, id).map_err(launch_error)?;
    out!("{text}")?;
    if !follow {
        return Ok(());
    }
    let path = launch::record::Store::new(settings.dirs.launch_state()).log_path(&record.id);
    let mut printed = text.len() as u64;
    let interrupted = launch::interrupted();
    tokio::pin!(interrupted);
    for round in 1u64.. {
        tokio::select! {
            () = &mut interrupted => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        printed += copy_new_bytes(&path, printed)?;
        // Asking the backend costs an engine call: once every two seconds is enough.
        if round % 8 == 0 && launch::is_over(settings, &record.id).await {
            // What it wrote as it ended.
            copy_new_bytes(&path, printed)?;
            return Ok(());
        }
    }
    Ok(())
}

/// Copies what a file holds past `from` to stdout; returns how many bytes.
fn copy_new_bytes(path: &std::path::Path, from: u64) -> anyhow::Result<u64> {
    use std::io::{Read as _, Seek as _, Write as _};
    let mut file =
        std::fs::File::open(path).with_context(|| format!("failed to read {}", path.display()))?;
    file.seek(std::io::SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(bytes.len() as u64)
}

/// The local engine for image commands: the one asked for, else the configured local one.
fn local_engine(
    settings: &config::Settings,
    backend: Option<Backend>,
) -> anyhow::Result<launch::engine::Engine> {
    let kind = match backend.unwrap_or(settings.launch.backend) {
        Backend::Skaha
            if config::which("podman").is_none() && config::which("docker").is_some() =>
        {
            Backend::Docker
        }
        Backend::Skaha => Backend::Podman,
        kind => kind,
    };
    launch::engine::Engine::find(kind, settings).map_err(|message| anyhow::anyhow!(message))
}

async fn image_check(
    settings: &config::Settings,
    image: &str,
    backend: Option<Backend>,
    timeout: u64,
    json: bool,
) -> anyhow::Result<()> {
    let engine = local_engine(settings, backend)?;
    let report = crate::image::check(
        &engine,
        image,
        std::time::Duration::from_secs(timeout.max(1)),
    )
    .await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out!("{}", crate::image::render(&report))?;
    }
    if report.failed() {
        return Err(ChecksFailed(format!(
            "{image} fails {} of the platform's requirements",
            report.count(crate::image::Status::Fail)
        ))
        .into());
    }
    Ok(())
}

/// Some checks failed (exit status 1): a verdict, not an error of arcade's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChecksFailed(pub String);

/// The desktop startup hook: never blocks the desktop for long, never fails it (a problem is a
/// warning, and the exit status stays 0).
async fn session_start(settings: config::Result<config::Settings>) -> anyhow::Result<()> {
    let settings = match settings {
        Ok(settings) => Some(settings),
        Err(err) => {
            eprintln!("arcade: warning: {err}; the menu stays as it is");
            None
        }
    };
    // Menu panels watch only merge folders that exist when they load, so make ours first.
    let config_home = match &settings {
        Some(settings) => Some(settings.dirs.config_home.clone()),
        None => config::Dirs::from_env().ok().map(|dirs| dirs.config_home),
    };
    if let Some(config_home) = config_home {
        let merged = config_home.join("menus/applications-merged");
        if let Err(err) = install::create_dirs(&merged) {
            eprintln!("arcade: warning: {err}");
        }
    }
    if let Some(settings) = &settings
        && settings.dirs.cached_catalog().exists()
    {
        let offline = sync::run(
            settings,
            sync::Mode {
                offline: true,
                dry_run: false,
                // A sync holding the lock is already bringing the menu up to date.
                no_lock_wait: true,
            },
            Arc::new(()),
        );
        match tokio::time::timeout(std::time::Duration::from_secs(10), offline).await {
            Ok(Ok(outcome)) => print_outcome(&outcome)?,
            Ok(Err(err)) => eprintln!("arcade: warning: menu from the saved catalog: {err}"),
            Err(_) => eprintln!("arcade: warning: the menu from the saved catalog took over 10 s"),
        }
    }
    start_daemon(settings.as_ref()).await
}

/// Pokes the session's daemon to refresh the menu, or starts it, and says whether it answered.
async fn start_daemon(settings: Option<&config::Settings>) -> anyhow::Result<()> {
    use crate::bus::client;
    let Some(bus) = client::connect().await else {
        eprintln!(
            "arcade: warning: no session bus to run the daemon on (DBUS_SESSION_BUS_ADDRESS is \
             {}); the menu is refreshed only at the next session start: run the desktop under \
             dbus-launch (see README, \"For operators\")",
            match std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
                Some(_) => "set but nothing answers there",
                None => "unset",
            }
        );
        return Ok(());
    };
    let poked = tokio::time::timeout(Duration::from_secs(5), client::poke(&bus)).await;
    match poked {
        Ok(Ok(how)) => outln!("daemon: {how}")?,
        Err(_) => eprintln!("arcade: warning: the session bus did not answer within 5 s"),
        // Not installed as a D-Bus service: start it ourselves, and wait for it to answer.
        Ok(Err(err)) => {
            tracing::debug!("the bus cannot start the daemon: {err}");
            let (mut child, log) = match spawn_daemon(settings) {
                Ok(spawned) => spawned,
                Err(err) => {
                    eprintln!("arcade: warning: failed to start the daemon: {err:#}");
                    return Ok(());
                }
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                if client::daemon_answers(&bus).await {
                    outln!("daemon: started (pid {})", child.id())?;
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let last = std::fs::read_to_string(&log)
                        .ok()
                        .and_then(|text| text.lines().last().map(str::to_owned))
                        .unwrap_or_default();
                    eprintln!(
                        "arcade: warning: the daemon exited at once ({status}): {last} (see {})",
                        log.display()
                    );
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    eprintln!(
                        "arcade: warning: the daemon (pid {}) did not answer on the session bus \
                         within 5 s (see {})",
                        child.id(),
                        log.display()
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Ok(())
}

/// Starts `arcade daemon` in a session of its own, logging into the state folder; returns it
/// and its log.
fn spawn_daemon(
    settings: Option<&config::Settings>,
) -> anyhow::Result<(std::process::Child, PathBuf)> {
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe().context("failed to find the arcade binary")?;
    let log_path = daemon_log(settings)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("failed to open {}", log_path.display()))?;
    let child = std::process::Command::new(exe)
        .arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("failed to run arcade daemon")?;
    Ok((child, log_path))
}

/// The daemon's log file, `$XDG_STATE_HOME/arcade/daemon.log`, its folder made.
pub fn daemon_log(settings: Option<&config::Settings>) -> anyhow::Result<PathBuf> {
    let state_home = match settings {
        Some(settings) => settings.dirs.state_home.clone(),
        None => config::Dirs::from_env()?.state_home,
    };
    let dir = state_home.join("arcade");
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok(dir.join("daemon.log"))
}

async fn print_ps(settings: &config::Settings, json: bool) -> anyhow::Result<()> {
    let rows = launch::list(settings).await;
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    let now = launch::record::now();
    outln!(
        "{:<8} {:<32} {:<8} {:<9} SINCE",
        "ID",
        "APP",
        "BACKEND",
        "STATE"
    )?;
    for row in rows {
        let record = &row.record;
        let since = if record.started_at == 0 {
            "?".to_owned()
        } else {
            ago(now.saturating_sub(record.started_at))
        };
        outln!(
            "{:<8} {:<32} {:<8} {:<9} {since}",
            record.id,
            record.app,
            record.backend,
            record.state
        )?;
    }
    Ok(())
}

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago".
fn ago(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86400),
    }
}

/// Draws a progress bar on a terminal; draws nothing into logs or pipes.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Bar {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} listing repositories {pos}/{len} {wide_bar} {elapsed}",
            )
            .expect("valid progress template"),
        );
        Bar(bar)
    }
}

impl Progress for Bar {
    fn found_repositories(&self, n: u64) {
        self.0.inc_length(n);
    }
    fn finished_repository(&self) {
        self.0.inc(1);
    }
}

async fn menu_sync(settings: &config::Settings, args: &SyncArgs) -> anyhow::Result<()> {
    let bar = Arc::new(Bar::new());
    let progress: Arc<dyn Progress> = bar.clone();
    let result = sync::run(
        settings,
        sync::Mode {
            offline: args.offline,
            dry_run: args.dry_run,
            no_lock_wait: false,
        },
        progress,
    )
    .await;
    bar.0.finish_and_clear();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(err)
            if err.is_unreachable() && !args.offline && settings.dirs.cached_catalog().exists() =>
        {
            return Err(anyhow::anyhow!(
                "{err}; the menu stays as it was (`arcade menu sync --offline` rebuilds it from \
                 the last good catalog)"
            ));
        }
        Err(err) => return Err(err.into()),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&outcome)?)?;
    } else {
        print_outcome(&outcome)?;
    }
    Ok(())
}

fn print_outcome(outcome: &sync::Outcome) -> std::io::Result<()> {
    let verb = if outcome.dry_run {
        "would write"
    } else {
        "wrote"
    };
    let from = if outcome.offline {
        format!("the saved catalog from {}", outcome.url)
    } else {
        format!("{} {}", outcome.source, outcome.url)
    };
    outln!(
        "menu: {} in {} from {from}; {verb} {}, {} unchanged, {} removed ({:.2} s)",
        count(outcome.entries, "entry", "entries"),
        count(outcome.projects, "project", "projects"),
        count(outcome.written, "file", "files"),
        outcome.unchanged,
        outcome.removed,
        outcome.seconds
    )?;
    for (sign, references) in [("+", &outcome.would_add), ("-", &outcome.would_remove)] {
        for reference in references {
            outln!("  {sign} {}", crate::catalog::printable(reference))?;
        }
    }
    if !outcome.skipped.is_empty() {
        eprintln!(
            "arcade: warning: left out {} the source listed:",
            count(outcome.skipped.len(), "image", "images")
        );
        for line in outcome.skipped.iter().take(20) {
            eprintln!("  {line}");
        }
        if outcome.skipped.len() > 20 {
            eprintln!("  … and {} more (see --json)", outcome.skipped.len() - 20);
        }
    }
    for name in &outcome.missing_shortcuts {
        eprintln!("arcade: warning: no image for the desktop shortcut {name:?}");
    }
    for path in &outcome.kept_modified {
        eprintln!(
            "arcade: warning: kept {} as it is: it changed since arcade wrote it",
            path.display()
        );
    }
    for path in &outcome.skipped_foreign {
        eprintln!(
            "arcade: warning: did not overwrite {}: arcade did not write it",
            path.display()
        );
    }
    for warning in &outcome.warnings {
        eprintln!("arcade: warning: {warning}");
    }
    Ok(())
}

fn menu_list(settings: &config::Settings, json: bool) -> anyhow::Result<()> {
    let target = sync::target(settings);
    let (manifest, warning) = install::Manifest::load(&target);
    if let Some(warning) = warning {
        anyhow::bail!("{warning}");
    }
    if manifest.n_files() == 0 {
        anyhow::bail!(
            "no menu installed under {} yet: run `arcade menu sync`",
            target.data.display()
        );
    }
    // The tree as the desktop shows it: names read back from the installed entries.
    let (tree, problems) = menu::installed::read_back(&target, &manifest.tree);
    for problem in &problems {
        eprintln!("arcade: warning: {problem}; `arcade menu sync` writes it again");
    }
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &tree)?;
        writeln!(out)?;
    } else {
        out.write_all(menu::render_tree(&tree).as_bytes())?;
        for shortcut in &manifest.shortcuts {
            writeln!(
                out,
                "desktop shortcut: {} → {}",
                shortcut.app, shortcut.image
            )?;
        }
    }
    Ok(())
}

fn menu_clean(settings: &config::Settings, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let target = sync::target(settings);
    let cache = settings.dirs.cached_catalog();
    // Through a link, the saved catalog would be someone else's file: checked before anything
    // is removed.
    if let Some(dir) = cache.parent() {
        install::check_own_dir(dir)?;
    }
    let mut report = install::clean(&target, dry_run)?;
    if !dry_run {
        // The caches forget arcade's entries and file types, and go when nothing is left in them.
        report
            .warnings
            .extend(menu::caches::refresh(&target.data, true, false));
    }
    if !dry_run {
        if let Some(dir) = cache.parent() {
            install::remove_temporary_files(dir);
        }
        match std::fs::remove_file(&cache) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("failed to remove {}", cache.display()));
            }
            _ => {}
        }
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    outln!(
        "menu: {} {}",
        if dry_run { "would remove" } else { "removed" },
        count(report.removed, "file", "files")
    )?;
    for path in &report.kept_modified {
        eprintln!(
            "arcade: warning: kept {}: it changed since arcade wrote it",
            path.display()
        );
    }
    for warning in &report.warnings {
        eprintln!("arcade: warning: {warning}");
    }
    Ok(())
}

/// `arcade config`'s output: `key = value` lines, or a JSON object; with `show_origin`, each
/// line starts with the value's origin and a tab, as `git config --show-origin` prints it, and
/// in JSON each value becomes `{"origin": …, "value": …}`.
fn render_config(view: &[config::Shown], json: bool, show_origin: bool) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    if json {
        let object: serde_json::Map<String, serde_json::Value> = view
            .iter()
            .map(|shown| {
                let value = if show_origin {
                    serde_json::json!({ "origin": shown.origin, "value": shown.value })
                } else {
                    shown.value.clone()
                };
                (shown.key.clone(), value)
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&object)? + "\n");
    }
    let mut text = String::new();
    for shown in view {
        let value = match &shown.value {
            serde_json::Value::Null => "(unset)".to_owned(),
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        if show_origin {
            write!(text, "{}\t", shown.origin)?;
        }
        writeln!(text, "{} = {value}", shown.key)?;
    }
    Ok(text)
}

/// The bundled sample catalog: realistic platform image names, no network needed.
pub const SAMPLE_CATALOG: &str = include_str!("../assets/sample-catalog.json");

async fn demo() -> anyhow::Result<()> {
    let home = tempfile::Builder::new()
        .prefix("arcade-demo-")
        .tempdir()
        .context("failed to create a temporary home")?
        .keep();
    let catalog = home.join("sample-catalog.json");
    std::fs::write(&catalog, SAMPLE_CATALOG)
        .with_context(|| format!("failed to write {}", catalog.display()))?;
    let dirs = config::Dirs {
        home: home.clone(),
        data_home: home.join(".local/share"),
        config_home: home.join(".config"),
        config_dirs: vec![],
        cache_home: home.join(".cache"),
        state_home: home.join(".local/state"),
        runtime_dir: None,
    };
    let overrides = Overrides {
        source: Some(Source::File),
        catalog: Some(catalog),
        ..Overrides::default()
    };
    let mut settings = config::resolve(dirs, vec![], &config::process_env, &overrides)?;
    settings.menu.shortcuts = vec!["terminal".to_owned(), "casa".to_owned()];
    let outcome = sync::run(&settings, sync::Mode::default(), Arc::new(())).await?;
    print_outcome(&outcome)?;
    let manifest = install::Manifest::load(&sync::target(&settings)).0;
    out!("\n{}", menu::render_tree(&manifest.tree))?;
    outln!(
        "\nThe menu files are under {} (XDG_DATA_HOME={} XDG_CONFIG_HOME={}).",
        home.display(),
        settings.dirs.data_home.display(),
        settings.dirs.config_home.display()
    )?;
    Ok(())
}

// SAMP: the session hubs' status, and a hub in the foreground.

async fn run_samp(
    settings: impl FnOnce() -> config::Result<config::Settings>,
    args: &SampArgs,
) -> anyhow::Result<()> {
    let Some(SampCommand::Hub {
        address,
        port,
        lockfile,
        owner,
        status,
        state,
        notices,
        until_stdin_closes,
    }) = &args.command
    else {
        return print_samp(&settings()?, args.json);
    };
    let address = match address.as_str() {
        "desktop" => crate::samp::desktop_address()?,
        other => other
            .parse()
            .map_err(|_| anyhow::anyhow!("--address {other:?} is not an IP address"))?,
    };
    let owner = owner
        .as_deref()
        .map(|owner| {
            let (uid, gid) = owner.split_once(':').unwrap_or((owner, owner));
            Ok::<_, anyhow::Error>((uid.parse()?, gid.parse()?))
        })
        .transpose()
        .map_err(|_| anyhow::anyhow!("--owner must be UID:GID"))?;
    let options = crate::samp::Options {
        address,
        port: *port,
        lockfile: lockfile.clone().map_or_else(default_lockfile, Ok)?,
        owner,
        status: status.clone(),
        state: state.clone(),
    };
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    let print = *notices;
    let printer = tokio::spawn(async move {
        while let Some(notice) = received.recv().await {
            if print && let Ok(line) = serde_json::to_string(&notice) {
                let _ = outln!("{line}");
            }
        }
    });
    let until_stdin_closes = *until_stdin_closes;
    let stop = async move {
        tokio::select! {
            () = launch::interrupted() => {}
            () = stdin_closed(), if until_stdin_closes => {}
        }
    };
    let served = crate::samp::serve(options, sender, stop).await;
    let _ = printer.await;
    Ok(served?)
}

/// The lockfile a hub run by hand writes: the one `SAMP_HUB=std-lockurl:file://…` names, else
/// `~/.samp`, as clients look for it.
fn default_lockfile() -> anyhow::Result<PathBuf> {
    if let Ok(hub) = std::env::var("SAMP_HUB")
        && let Some(path) = hub.strip_prefix("std-lockurl:file://")
    {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .context("HOME is not set: say where the lockfile goes with --lockfile")?;
    Ok(PathBuf::from(home).join(".samp"))
}

/// Completes when stdin reaches its end (or fails), read on a blocking thread.
async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| {
        use std::io::Read as _;
        let mut buffer = [0u8; 256];
        while let Ok(1..) = std::io::stdin().lock().read(&mut buffer) {}
    })
    .await;
}

/// `arcade samp`: each session hub, whether it runs, and its clients.
fn print_samp(settings: &config::Settings, json: bool) -> anyhow::Result<()> {
    let hubs = crate::samp::session::statuses(settings);
    if json {
        let rows: Vec<serde_json::Value> = hubs
            .iter()
            .map(|(_, status)| {
                let mut row = serde_json::to_value(status).unwrap_or_default();
                row["running"] = status.alive().into();
                row
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    if hubs.is_empty() {
        return Err(NotFound(
            "no SAMP hub runs for your desktop sessions (the daemon starts one with a session's \
             first app)"
                .to_owned(),
        )
        .into());
    }
    for (_, status) in hubs {
        let state = if status.alive() {
            format!("running (pid {})", status.pid)
        } else {
            "gone".to_owned()
        };
        outln!(
            "hub {} {state}, lockfile {}",
            status.url,
            status.lockfile.display()
        )?;
        if status.clients.is_empty() {
            outln!("  no clients")?;
        }
        for client in &status.clients {
            let name = client.name.as_deref().unwrap_or("?");
            let callback = match (&client.callback, &client.reached_at) {
                (Some(advertised), Some(used)) => format!("{advertised} (reached at {used})"),
                (Some(advertised), None) => advertised.clone(),
                (None, _) => "no callback".to_owned(),
            };
            outln!(
                "  {:<4} {:<16} from {:<15} {callback}",
                client.id,
                crate::catalog::printable(name),
                client.from
            )?;
            let mtypes = crate::samp::status::mtypes(client);
            if !mtypes.is_empty() {
                outln!("       takes {mtypes}")?;
            }
            if let Some(problem) = &client.unreachable {
                outln!("       unreachable: {problem}")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("arcade").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn parses_menu_sync_flags() {
        let cli = parse(&[
            "menu",
            "sync",
            "--source",
            "harbor",
            "--url",
            "https://h",
            "--label",
            "x",
            "--offline",
            "--dry-run",
            "--json",
        ]);
        let Command::Menu(MenuCommand::Sync(args)) = cli.command else {
            panic!("not a sync");
        };
        assert_eq!(args.source.source, Some(Source::Harbor));
        assert_eq!(args.source.url.as_deref(), Some("https://h"));
        assert!(args.offline && args.dry_run && args.json);
    }

    #[test]
    fn parses_launch() {
        let cli = parse(&[
            "launch",
            "--cores",
            "2",
            "--ram",
            "8",
            "--backend",
            "docker",
            "--no-wait",
            "casa:6.5",
            "--",
            "casa",
            "--nologger",
        ]);
        let Command::Launch(args) = cli.command else {
            panic!("not a launch");
        };
        assert_eq!((args.cores, args.ram), (Some(2), Some(8)));
        assert_eq!(args.backend, Some(Backend::Docker));
        assert!(args.no_wait);
        assert_eq!(args.target, "casa:6.5");
        assert_eq!(args.command, ["casa", "--nologger"]);
    }

    /// `--show-origin` puts each value's origin and a tab before it, as `git config` does; the
    /// values are the ones the plain form prints.
    #[test]
    fn config_shows_each_origin_before_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("sys/arcade/config.toml");
        std::fs::create_dir_all(system.parent().unwrap()).unwrap();
        std::fs::write(&system, "label = \"sys\"\n[menu]\nshortcuts = [\"casa\"]\n").unwrap();
        let home = dir.path().join("home");
        let dirs = config::Dirs {
            data_home: home.join(".local/share"),
            config_home: home.join(".config"),
            cache_home: home.join(".cache"),
            state_home: home.join(".local/state"),
            runtime_dir: None,
            config_dirs: vec![dir.path().join("sys")],
            home,
        };
        let env = |name: &str| match name {
            "ARCADE_URL" => Some("https://env.example.org".to_owned()),
            "PATH" => Some("/nonexistent".to_owned()),
            _ => None,
        };
        let overrides = Overrides {
            source: Some(Source::Harbor),
            catalog: Some("/flag.json".into()),
            ..Overrides::default()
        };
        let view = config::load_with(dirs, &overrides, &env)
            .unwrap()
            .view()
            .unwrap();

        let text = render_config(&view, false, true).unwrap();
        let system = system.display();
        for line in [
            "flag:--catalog\tcatalog = /flag.json".to_owned(),
            format!("file:{system}\tlabel = sys"),
            format!("file:{system}\tmenu_shortcuts = [\"casa\"]"),
            "env:ARCADE_URL\turl = https://env.example.org".to_owned(),
            "default\ttimeout_secs = 10".to_owned(),
            // The last resort for the skaha service, with a Harbor catalog.
            "env:ARCADE_URL\tskaha_url = https://env.example.org/skaha".to_owned(),
            "default\tskaha_session_id = (unset)".to_owned(),
            "default\tlaunch_backend = podman".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        let plain = render_config(&view, false, false).unwrap();
        let stripped: Vec<&str> = text
            .lines()
            .map(|l| l.split_once('\t').unwrap().1)
            .collect();
        assert_eq!(plain.lines().collect::<Vec<_>>(), stripped);

        let json: serde_json::Value =
            serde_json::from_str(&render_config(&view, true, true).unwrap()).unwrap();
        assert_eq!(
            json["url"],
            serde_json::json!({ "origin": "env:ARCADE_URL", "value": "https://env.example.org" })
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_config(&view, true, false).unwrap()).unwrap();
        assert_eq!(json["url"], "https://env.example.org");
        assert_eq!(json["menu_shortcuts"], serde_json::json!(["casa"]));
    }

    #[test]
    fn refuses_unknown_sources() {
        assert!(Cli::try_parse_from(["arcade", "menu", "sync", "--source", "ftp"]).is_err());
    }

    #[test]
    fn the_sample_catalog_is_valid() {
        let (catalog, _) = crate::catalog::parse_file(
            SAMPLE_CATALOG,
            std::path::Path::new("sample"),
            Some("desktop-app"),
        )
        .unwrap();
        assert!(catalog.images.len() > 20);
        assert!(catalog.skipped.is_empty());
    }
}

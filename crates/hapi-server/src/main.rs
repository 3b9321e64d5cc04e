//! `hapi-server`: serve a HAPI catalog, or append records to one of its datasets.

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hapi_auth::Issuer;
use hapi_server::config::{self, Config, LogFormat, ModeSettings, Overrides};
use hapi_server::{App, demo, ingest, live, stores};

/// jemalloc, not the system allocator: glibc kept 180 MB of the 1,000 stalled streams'
/// memory after they ended (its per-thread arenas hold what buffers freed across
/// threads leave behind); jemalloc returns it within about a second
/// (`dirty_decay_ms:1000`, set in `.cargo/config.toml`; `_RJEM_MALLOC_CONF` overrides).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug)]
#[command(version, about = "A HAPI 3.3 server for space-physics time series")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the catalog (the built-in demo when no configuration is given).
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long, env = "HAPI_LISTEN")]
        listen: Option<String>,
    },
    /// Machine-to-machine clients of the built-in token issuer.
    Clients {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        action: ClientAction,
    },
    /// Local accounts for the browser login of the built-in issuer.
    Users {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        action: UserAction,
    },
    /// Print a draft info JSON for a sample csv file (a first line of column names, or an
    /// `include=header` response) or a CDF file (`.cdf`: its ISTP attributes), to edit
    /// and put in `info_file`.
    Describe {
        /// The sample file.
        file: PathBuf,
    },
    /// Append HAPI csv records (from FILE, or stdin when FILE is - or absent) to a dataset.
    Ingest {
        #[command(flatten)]
        common: Common,
        /// The dataset id.
        #[arg(long)]
        dataset: String,
        /// The csv file.
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ClientAction {
    /// Create a client; its secret is printed once and stored only as a slow hash.
    Create {
        /// Client id (default: 32 random hex digits).
        #[arg(long)]
        id: Option<String>,
        /// Roles the client's tokens carry (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List clients (never secrets).
    List,
    /// Revoke a client: no new tokens, and its tokens are refused within seconds.
    Revoke { id: String },
    /// Give a client a new secret (printed once); the old one stops working.
    Rotate { id: String },
}

#[derive(Subcommand, Debug)]
enum UserAction {
    /// Add or update a user; the password is read from stdin (one line).
    Add {
        name: String,
        /// Roles of the user's sessions (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Remove a user and end its sessions (also: refuse a sign-up).
    Remove { name: String },
    /// Let a sign-up in (`[auth.issuer] allow_registration`), with these roles, or
    /// `registration_roles` when none are given.
    Approve {
        name: String,
        /// Its roles (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Replace a user's roles (its sessions follow).
    Roles {
        name: String,
        /// The new roles (repeatable; none: no roles).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List users; sign-ups that wait for approval say `pending`.
    List,
}

#[derive(Args, Debug)]
struct Common {
    /// Configuration file (TOML); without it the demo catalog is used.
    #[arg(long, env = "HAPI_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory of the embedded store.
    #[arg(long, env = "HAPI_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Data elements per /data response.
    #[arg(long, env = "HAPI_MAX_ELEMENTS", global = true)]
    max_elements: Option<u64>,
    /// Bytes per /data response.
    #[arg(long, env = "HAPI_MAX_BYTES", global = true)]
    max_bytes: Option<u64>,
    /// Log lines on stderr: `text` or `json` (default: `[server] log_format`, else text).
    #[arg(long, env = "HAPI_LOG_FORMAT", global = true)]
    log_format: Option<LogFormat>,
    /// The PostgreSQL primary's URL (the environment keeps its password out of `ps`).
    #[arg(long, env = "HAPI_DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
}

impl Command {
    /// The options every command has, and the listen address of `serve`.
    /// `None` for `describe`, which reads no configuration.
    fn common(&self) -> Option<(&Common, Option<String>)> {
        match self {
            Command::Serve { common, listen } => Some((common, listen.clone())),
            Command::Describe { .. } => None,
            Command::Clients { common, .. }
            | Command::Users { common, .. }
            | Command::Ingest { common, .. } => Some((common, None)),
        }
    }
}

fn load(common: &Common, listen: Option<String>) -> Result<Config> {
    let o = Overrides {
        listen,
        data_dir: common.data_dir.clone(),
        max_elements: common.max_elements,
        max_bytes: common.max_bytes,
        log_format: common.log_format,
        database_url: common.database_url.clone(),
    };
    match &common.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let base = path.parent().map(PathBuf::from).unwrap_or_default();
            config::load(&text, &base, &o).with_context(|| format!("in {}", path.display()))
        }
        None => demo::config(&o),
    }
}

/// The built-in issuer over the configured database (PostgreSQL when the store is
/// there, so every replica sees the change). Its calls block on `rt`: call them outside it.
fn issuer(config: &Config, rt: &tokio::runtime::Runtime) -> Result<Issuer> {
    let cfg = config
        .auth
        .issuer()
        .context("clients and local accounts belong to the built-in issuer: the configuration's [auth] mode is not \"builtin\"")?;
    let store = rt.block_on(async {
        let database = match &config.store {
            config::StoreSpec::Postgres(settings) => Some(
                hapi_postgres::Database::connect(settings)
                    .await
                    .context("connecting to the PostgreSQL database")?,
            ),
            config::StoreSpec::Sqlite => None,
        };
        hapi_server::open_auth_store(config, database.as_ref()).await
    })?;
    let store = store.context("the built-in issuer needs its database")?;
    Issuer::with_store(&config.auth.issuer_key_file, store, cfg.clone())
        .context("opening the built-in issuer")
}

/// Installs the subscriber: JSON lines, or text coloured only for people (files and
/// journald get plain text).
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
}

/// Tells the operator of a protected server how to get in.
fn print_access_help(config: &Config, addr: std::net::SocketAddr) {
    let a = &config.auth;
    let base = format!("http://{addr}{}", config.path_prefix);
    let text = match &a.mode {
        ModeSettings::Open => format!("access: open, no credentials needed\n  curl '{base}/hapi/catalog'"),
        ModeSettings::Oidc { validator, .. } => format!(
            "access: bearer tokens from {} (scope {}); browsers log in at {base}/auth/login",
            validator.issuer,
            validator.required_scope.as_deref().unwrap_or("-")
        ),
        ModeSettings::Builtin { issuer, .. } => format!(
            "access: every endpoint needs a token from the built-in issuer (scope {scope}, {ttl} s).\n\
             1. create machine credentials (the secret is shown once):\n     \
             hapi-server clients create{dir}\n\
             2. get a token:\n     \
             curl -d client_id=ID -d client_secret=SECRET -d grant_type=client_credentials -d scope={scope} {base}/oauth/token\n\
             3. call HAPI:\n     \
             curl -H \"Authorization: Bearer TOKEN\" '{base}/hapi/capabilities'\n\
             browsers: add a local account with `hapi-server users add NAME{dir}` and open {base}/hapi",
            scope = issuer.scopes.join(" "),
            ttl = issuer.token_ttl.as_secs(),
            dir = if config.data_dir == std::path::Path::new("hapi-data") {
                String::new()
            } else {
                format!(" --data-dir {}", config.data_dir.display())
            },
        ),
    };
    // A collector of JSON lines gets it as one line too.
    match config.server.log_format {
        LogFormat::Json => tracing::info!(help = %text, "access"),
        LogFormat::Text => eprintln!("{text}"),
    }
}

/// SIGHUP: read the configuration again and switch to it; a file that does not load
/// (or changes what needs a restart) is refused, logged, and the running one kept.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hup: tokio::signal::unix::Signal,
    common: Common,
    listen: Option<String>,
    mut app: App,
    states: tokio::sync::watch::Sender<Arc<hapi_server::AppState>>,
) {
    while hup.recv().await.is_some() {
        let next = match load(&common, listen.clone()) {
            Ok(config) => app.reload(&config).await,
            Err(e) => Err(e),
        };
        match next {
            Ok(next) => {
                app = next;
                let _ = states.send(app.state.clone());
                tracing::info!(datasets = app.state.datasets.len(), "configuration reloaded");
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reload refused; the running configuration stays")
            }
        }
    }
}

/// Threads for blocking work (store reads, encoding, password hashes).
const BLOCKING_THREADS: usize = 64;

/// SIGTERM (systemd, orchestrators) or Ctrl-C: stop accepting and drain.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The configuration chooses the log format, so it is read first; its errors are
    // printed by `main`'s return.
    let Some((common, listen)) = cli.command.common() else {
        if let Command::Describe { file } = &cli.command {
            let cdf = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("cdf"));
            let info = if cdf {
                hapi_files::describe::describe_cdf_file(file)
            } else {
                let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                hapi_files::describe::describe(&String::from_utf8_lossy(&text))
            }
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
        return Ok(());
    };
    let config = load(common, listen)?;
    init_logs(config.server.log_format);
    // Blocking tasks are short (one chunk, one hash check), so a few dozen threads keep
    // two cores busy; tokio's default of 512 only adds stacks and allocator arenas.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()?;
    match cli.command {
        // Answered above, before any configuration is read.
        Command::Describe { .. } => Ok(()),
        Command::Serve { common, listen } => rt.block_on(async move {
            let app = App::build_on(&config, stores::open(&config).await?).await?;
            // The live demo datasets up to now before the first request, then as time passes.
            let t = std::time::Instant::now();
            match live::catch_up(&app.state, hapi_server::state::now_nanos()).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(records = n, ms = t.elapsed().as_millis() as u64, "live demo caught up")
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "catching up the live demo failed"),
            }
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            let addr = listener.local_addr()?;
            tracing::info!(url = %format!("http://{addr}{}/hapi", config.path_prefix), "serving");
            print_access_help(&config, addr);
            let (states, reloads) = tokio::sync::watch::channel(app.state.clone());
            let _live = live::spawn(reloads.clone(), Arc::new(hapi_server::state::now_nanos), live::EVERY);
            // Registered before serving, so an early SIGHUP cannot end the process.
            #[cfg(unix)]
            {
                let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
                tokio::spawn(reload_on_hangup(hup, common, listen, app, states));
            }
            App::serve_reloadable(listener, reloads, stop_signal()).await?;
            Ok(())
        }),
        Command::Clients { action, .. } => {
            let issuer = issuer(&config, &rt)?;
            match action {
                ClientAction::Create { id, roles } => {
                    let (client, secret) = issuer.create_client(id.as_deref(), &roles)?;
                    println!("client_id={}\nclient_secret={secret}", client.id);
                    eprintln!("the secret is shown only now; store it safely");
                }
                ClientAction::List => {
                    for c in issuer.list_clients()? {
                        let state = if c.revoked_at.is_some() { "revoked" } else { "active" };
                        // A self-service client's tokens carry its owner's roles, not its own.
                        match &c.owner {
                            Some(o) => println!("{}\t{state}\troles=(its owner's)\towner={o}", c.id),
                            None => println!("{}\t{state}\troles={}", c.id, c.roles.join(",")),
                        }
                    }
                }
                ClientAction::Revoke { id } => {
                    if !issuer.revoke_client(&id)? {
                        anyhow::bail!("no client {id:?}");
                    }
                    eprintln!(
                        "revoked {id}; servers refuse its tokens within {} s",
                        hapi_auth::RECHECK.as_secs()
                    );
                }
                ClientAction::Rotate { id } => {
                    let secret = issuer.rotate_secret(&id)?;
                    println!("client_id={id}\nclient_secret={secret}");
                }
            }
            Ok(())
        }
        Command::Users { action, .. } => {
            let issuer = issuer(&config, &rt)?;
            match action {
                UserAction::Add { name, roles } => {
                    let mut password = String::new();
                    std::io::stdin().read_line(&mut password).context("reading the password from stdin")?;
                    let password = password.trim_end_matches(['\r', '\n']);
                    if password.is_empty() {
                        anyhow::bail!("empty password (give it on stdin)");
                    }
                    issuer.add_user(&name, password, &roles)?;
                    eprintln!("user {name} saved");
                }
                UserAction::Remove { name } => {
                    if !issuer.remove_user(&name)? {
                        anyhow::bail!("no user {name:?}");
                    }
                    eprintln!("removed {name}; its sessions end within {} s", hapi_auth::RECHECK.as_secs());
                }
                UserAction::Roles { name, roles } => {
                    if !issuer.set_user_roles(&name, &roles)? {
                        anyhow::bail!("no user {name:?}");
                    }
                    eprintln!(
                        "{name}'s sessions have the new roles within {} s",
                        hapi_auth::RECHECK.as_secs()
                    );
                }
                UserAction::Approve { name, roles } => {
                    let roles = match (&config.auth.mode, roles.is_empty()) {
                        (ModeSettings::Builtin { registration_roles, .. }, true) => {
                            registration_roles.clone()
                        }
                        _ => roles,
                    };
                    issuer.approve_user(&name, &roles)?;
                    eprintln!("{name} approved with roles [{}]; it can log in now", roles.join(","));
                }
                UserAction::List => {
                    for u in issuer.list_users()? {
                        let state = if u.approved_at.is_some() { "" } else { "\tpending" };
                        println!("{}\troles={}{state}", u.name, u.roles.join(","));
                    }
                }
            }
            Ok(())
        }
        Command::Ingest { dataset, file, .. } => {
            // Appending needs no access control: never contact the identity provider here.
            let spec = config
                .datasets
                .iter()
                .find(|d| d.info.id == dataset)
                .with_context(|| format!("no dataset {dataset:?} in the configuration"))?;
            if !matches!(spec.source, config::SourceSpec::Embedded) {
                anyhow::bail!(
                    "dataset {dataset:?} is read from its own source, not the embedded store: add its records there"
                );
            }
            let info = &spec.info;
            // Opened on the runtime; the appends below block on it from this thread.
            let store = rt.block_on(stores::open(&config))?.store;
            let n = match file.filter(|f| f.as_os_str() != "-") {
                Some(f) => {
                    let file = std::fs::File::open(&f).with_context(|| format!("opening {}", f.display()))?;
                    ingest::ingest(store.as_ref(), info, &mut BufReader::new(file))
                }
                None => ingest::ingest(store.as_ref(), info, &mut std::io::stdin().lock()),
            }?;
            eprintln!("appended {n} records to {dataset}");
            Ok(())
        }
    }
}

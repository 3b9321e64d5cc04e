//! `hapi-server`: serve a HAPI catalog, or append records to one of its datasets.

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hapi_server::config::{self, Config, Overrides};
use hapi_server::{AppState, demo, ingest};
use hapi_store::{SqliteStore, Store};

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

#[derive(Args, Debug)]
struct Common {
    /// Configuration file (TOML); without it the demo catalog is used.
    #[arg(long, env = "HAPI_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory of the embedded store.
    #[arg(long, env = "HAPI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Data elements per /data response.
    #[arg(long, env = "HAPI_MAX_ELEMENTS")]
    max_elements: Option<u64>,
    /// Bytes per /data response.
    #[arg(long, env = "HAPI_MAX_BYTES")]
    max_bytes: Option<u64>,
}

fn load(common: &Common, listen: Option<String>) -> Result<Config> {
    let o = Overrides {
        listen,
        data_dir: common.data_dir.clone(),
        max_elements: common.max_elements,
        max_bytes: common.max_bytes,
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

fn open(config: &Config) -> Result<(Arc<dyn Store>, Arc<AppState>)> {
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&config.data_dir)
            .with_context(|| format!("opening the store in {}", config.data_dir.display()))?,
    );
    for d in &config.datasets {
        store.open_dataset(&d.info.id, &hapi_store::Layout::of(&d.info))?;
        if let Some(g) = &d.demo
            && store.extent(&d.info.id)?.is_none()
        {
            let t = std::time::Instant::now();
            let n = demo::populate(store.as_ref(), &d.info, g)?;
            tracing::info!(dataset = %d.info.id, records = n, ms = t.elapsed().as_millis() as u64, "demo data generated");
        }
    }
    let state = Arc::new(AppState::new(config, store.clone())?);
    Ok((store, state))
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { common, listen } => {
            let config = load(&common, listen)?;
            let (_, state) = open(&config)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .with_context(|| format!("binding {}", config.listen))?;
                let addr = listener.local_addr()?;
                tracing::info!(url = %format!("http://{addr}{}/hapi", config.path_prefix), "serving");
                hapi_server::serve(listener, state, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
                Ok(())
            })
        }
        Command::Ingest { common, dataset, file } => {
            let config = load(&common, None)?;
            let (store, state) = open(&config)?;
            let ds = state
                .dataset(&dataset)
                .with_context(|| format!("no dataset {dataset:?} in the configuration"))?;
            let n = match file.filter(|f| f.as_os_str() != "-") {
                Some(f) => {
                    let file = std::fs::File::open(&f).with_context(|| format!("opening {}", f.display()))?;
                    ingest::ingest(store.as_ref(), &ds.spec.info, &mut BufReader::new(file))
                }
                None => ingest::ingest(store.as_ref(), &ds.spec.info, &mut std::io::stdin().lock()),
            }?;
            eprintln!("appended {n} records to {dataset}");
            Ok(())
        }
    }
}

//! Configuration: one TOML file, overridden by `HAPI_*` environment variables,
//! overridden by command-line flags (the last two arrive here as [`Overrides`]).
//!
//! Loading is a pure function of the file's text and the overrides, so tests never
//! touch the process environment.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hapi_core::info::DatasetInfo;
use serde::Deserialize;
use serde_json::{Map, Value};

/// SWE's published limits: 100,000 data elements and 12,288 kB per `/data` response.
pub const DEFAULT_MAX_ELEMENTS: u64 = 100_000;
/// 12,288 kB.
pub const DEFAULT_MAX_BYTES: u64 = 12_288 * 1024;

/// Demo generators a dataset may name with `demo = "..."` (their code is `demo.rs`,
/// which depends on this module, not the other way round).
pub const DEMO_GENERATORS: [&str; 5] = ["ngrm_bt", "sosmag", "ngrm_gc", "kp", "sosmag_month"];

/// The file as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Format version of this file; only 1 exists.
    #[serde(default)]
    pub version: Option<u32>,
    /// Address to listen on.
    pub listen: Option<String>,
    /// Where the embedded store keeps its files.
    pub data_dir: Option<PathBuf>,
    /// Path before `/hapi`, e.g. `/public/data` (REQ-001); empty by default.
    pub path_prefix: Option<String>,
    /// Identity for `/about`.
    #[serde(default)]
    pub about: Option<AboutConfig>,
    /// Server-wide response limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The datasets, in catalog order.
    #[serde(default, rename = "dataset")]
    pub datasets: Vec<DatasetConfig>,
    /// Upstream HAPI servers.
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamFileConfig>,
    /// Access control; without it the server is protected by the built-in issuer.
    #[serde(default)]
    pub auth: AuthFileConfig,
    /// Connections, timeouts and stream caps.
    #[serde(default)]
    pub server: ServerFileConfig,
    /// `POST {prefix}/ingest`: who may append, and how much at once.
    #[serde(default)]
    pub ingest: IngestFileConfig,
    /// Where the records of datasets without their own source live.
    #[serde(default)]
    pub store: StoreFileConfig,
}

/// `[store]`: the embedded SQLite store (default), or PostgreSQL for stateless replicas.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct StoreFileConfig {
    /// `sqlite` (default: `data_dir/hapi.sqlite3`) or `postgres`.
    pub kind: Option<StoreKind>,
    /// The primary's URL, `postgres://user:password@host:port/db` (prefer `url_file`
    /// or `HAPI_DATABASE_URL`, which keep the password out of this file).
    pub url: Option<String>,
    /// A file holding the URL, relative to the configuration file.
    pub url_file: Option<PathBuf>,
    /// A hot standby for reads (writes always go to `url`).
    pub read_url: Option<String>,
    /// A file holding `read_url`.
    pub read_url_file: Option<PathBuf>,
    /// Connections per pool (default 16).
    pub pool_size: Option<usize>,
    /// Read connections that small requests share, their statements pipelined (default 1).
    pub pipelined_connections: Option<usize>,
    /// Seconds to connect, or to wait for a pooled connection (default 3).
    pub connect_timeout: Option<u64>,
    /// Seconds one read statement may run (default 10).
    pub statement_timeout: Option<u64>,
}

/// `[store] kind`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded store in `data_dir`.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// Where the records live, checked.
#[derive(Debug, Clone)]
pub enum StoreSpec {
    /// The embedded SQLite store in [`Config::data_dir`].
    Sqlite,
    /// PostgreSQL; the same database also holds what other components put there.
    Postgres(hapi_postgres::DatabaseSettings),
}

impl StoreSpec {
    /// What a reload may not change, without passwords.
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Sqlite => "sqlite".to_owned(),
            StoreSpec::Postgres(s) => {
                format!("postgres {} {:?}", s.url, s.read_url.as_ref().map(|u| u.redacted()))
            }
        }
    }
}

/// A URL given inline or in a file (never both).
fn url_value(inline: Option<String>, file: Option<&Path>, base: &Path, what: &str) -> Result<Option<String>> {
    match (inline, file) {
        (Some(_), Some(_)) => bail!("[store]: give {what} or {what}_file, not both"),
        (Some(url), None) => Ok(Some(url)),
        (None, Some(f)) => {
            let path = base.join(f);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("[store] reading {what}_file {}", path.display()))?;
            let text = text.trim().to_owned();
            if text.is_empty() {
                bail!("[store] {what}_file {} is empty", path.display());
            }
            Ok(Some(text))
        }
        (None, None) => Ok(None),
    }
}

fn store_spec(f: StoreFileConfig, base: &Path, env_url: Option<&str>) -> Result<StoreSpec> {
    let url = match env_url {
        Some(u) => Some(u.to_owned()),
        None => url_value(f.url, f.url_file.as_deref(), base, "url")?,
    };
    let kind = match (f.kind, &url) {
        (Some(k), _) => k,
        (None, Some(_)) => StoreKind::Postgres,
        (None, None) => StoreKind::Sqlite,
    };
    let read_url = url_value(f.read_url, f.read_url_file.as_deref(), base, "read_url")?;
    if kind == StoreKind::Sqlite {
        if url.is_some() || read_url.is_some() {
            bail!("[store] kind is \"sqlite\", which takes no url or read_url (HAPI_DATABASE_URL is set?)");
        }
        return Ok(StoreSpec::Sqlite);
    }
    let url = url.context("[store] kind = \"postgres\" needs url, url_file or HAPI_DATABASE_URL")?;
    let parse = |u: String, what: &str| {
        hapi_postgres::DatabaseUrl::new(u).map_err(|e| anyhow::anyhow!("[store] {what}: {e}"))
    };
    let mut settings = hapi_postgres::DatabaseSettings::new(parse(url, "url")?);
    settings.read_url = read_url.map(|u| parse(u, "read_url")).transpose()?;
    for (value, what, setting) in [
        (f.pool_size, "pool_size", &mut settings.pool_size),
        (f.pipelined_connections, "pipelined_connections", &mut settings.pipelined_connections),
    ] {
        match value {
            Some(0) => bail!("[store] {what} must be at least 1"),
            Some(n) => *setting = n,
            None => {}
        }
    }
    let secs = |v: Option<u64>, what: &str, default: std::time::Duration| match v {
        Some(0) => bail!("[store] {what} must be at least 1 second"),
        Some(n) => Ok(std::time::Duration::from_secs(n)),
        None => Ok(default),
    };
    settings.connect_timeout = secs(f.connect_timeout, "connect_timeout", settings.connect_timeout)?;
    settings.statement_timeout = secs(f.statement_timeout, "statement_timeout", settings.statement_timeout)?;
    Ok(StoreSpec::Postgres(settings))
}

/// `[ingest]`: appends over HTTP to the datasets of the embedded store.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct IngestFileConfig {
    /// The role a bearer token needs to append to any dataset of the embedded store it
    /// may read (a dataset's `ingest_role` replaces it there). Without it, only datasets
    /// with their own `ingest_role` take appends.
    pub role: Option<String>,
    /// Largest csv of one request in bytes, after gzip decompression (default 32 MiB).
    pub max_bytes: Option<u64>,
}

/// The default of `[ingest] max_bytes`: 32 MiB, a day of a 1 s magnetometer and more.
pub const DEFAULT_INGEST_BYTES: u64 = 32 << 20;

/// `[server]`: what one client may hold of the server, and how long it may stall.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ServerFileConfig {
    /// Open connections in all (default 4096; at most the open-file limit less a reserve).
    pub max_connections: Option<usize>,
    /// Open connections from one address (default 256).
    pub max_connections_per_address: Option<usize>,
    /// Seconds a request's header may take to arrive, counted from the connection's
    /// start or the end of the previous response; so it is also the keep-alive idle
    /// timeout (default 15).
    pub header_timeout: Option<u64>,
    /// Seconds a response may wait for a client that stopped reading before the
    /// connection is dropped (default 60).
    pub send_timeout: Option<u64>,
    /// Concurrent `/data` streams in all (default 256).
    pub max_streams: Option<usize>,
    /// Concurrent `/data` streams of one client: an identity, or an address when
    /// anonymous (default 16).
    pub max_streams_per_client: Option<usize>,
    /// Seconds running responses may take to finish after SIGTERM (default 30).
    pub shutdown_grace: Option<u64>,
    /// Path of the Prometheus metrics, under the prefix (default `/metrics`).
    pub metrics_path: Option<String>,
    /// Serve the metrics without credentials (default false: like `/hapi/*`).
    pub metrics_public: Option<bool>,
    /// `text` (default) or `json` lines on stderr.
    pub log_format: Option<LogFormat>,
    /// Addresses of reverse proxies (nginx) whose `X-Forwarded-For` names the client;
    /// default none: the TCP peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// How log lines are written.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("the log format is `text` or `json`".to_owned()),
        }
    }
}

/// Where and for whom the metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Path under the prefix, starting with `/`.
    pub path: String,
    /// Served without credentials.
    pub public: bool,
}

fn metrics_settings(s: &ServerFileConfig) -> Result<MetricsSettings> {
    let path = s.metrics_path.clone().unwrap_or_else(|| "/metrics".to_owned());
    let clash =
        ["/hapi", "/auth/", "/oauth/", "/.well-known/", "/healthz", "/readyz", "/ingest", "/downloads/"];
    if !path.starts_with('/')
        || path.len() < 2
        || path.ends_with('/')
        || !path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
        || clash.iter().any(|c| path.starts_with(c))
    {
        bail!(
            "[server] metrics_path {path:?} must start with `/`, use letters, digits and `/-_.`, \
             and not lie under /hapi, /auth, /oauth, /.well-known, /ingest or /downloads"
        );
    }
    Ok(MetricsSettings { path, public: s.metrics_public.unwrap_or(false) })
}

/// `[server]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one address.
    pub max_connections_per_address: usize,
    /// Header read and keep-alive idle timeout.
    pub header_timeout: std::time::Duration,
    /// How long a write may wait for the client.
    pub send_timeout: std::time::Duration,
    /// Concurrent `/data` streams in all.
    pub max_streams: usize,
    /// Concurrent `/data` streams per client.
    pub max_streams_per_client: usize,
    /// Time for running responses after SIGTERM.
    pub shutdown_grace: std::time::Duration,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[std::net::IpAddr]>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        server_settings(&ServerFileConfig::default()).unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

fn server_settings(s: &ServerFileConfig) -> Result<ServerSettings> {
    fn count(v: Option<usize>, default: usize, key: &str) -> Result<usize> {
        match v.unwrap_or(default) {
            n @ 1..=1_000_000 => Ok(n),
            n => bail!("[server] {key} = {n} is out of range (1 to 1000000)"),
        }
    }
    fn secs(v: Option<u64>, default: u64, key: &str) -> Result<std::time::Duration> {
        match v.unwrap_or(default) {
            n @ 1..=86_400 => Ok(std::time::Duration::from_secs(n)),
            n => bail!("[server] {key} = {n} is out of range (1 to 86400 seconds)"),
        }
    }
    Ok(ServerSettings {
        max_connections: count(s.max_connections, 4096, "max_connections")?,
        max_connections_per_address: count(
            s.max_connections_per_address,
            256,
            "max_connections_per_address",
        )?,
        header_timeout: secs(s.header_timeout, 15, "header_timeout")?,
        send_timeout: secs(s.send_timeout, 60, "send_timeout")?,
        max_streams: count(s.max_streams, 256, "max_streams")?,
        max_streams_per_client: count(s.max_streams_per_client, 16, "max_streams_per_client")?,
        shutdown_grace: secs(s.shutdown_grace, 30, "shutdown_grace")?,
        log_format: s.log_format.unwrap_or_default(),
        trusted_proxies: s
            .trusted_proxies
            .iter()
            .map(|a| {
                a.parse().with_context(|| format!("[server] trusted_proxies: {a:?} is not an IP address"))
            })
            .collect::<Result<_>>()?,
    })
}

/// How callers prove who they are.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Tokens from the server's own issuer; local accounts for browsers.
    #[default]
    Builtin,
    /// Tokens from an external OpenID Connect provider (Keycloak, ...); its browser login.
    Oidc,
    /// No access control at all.
    Open,
}

/// `[auth]`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct AuthFileConfig {
    /// `builtin` (default), `oidc` or `open`.
    #[serde(default)]
    pub mode: AuthMode,
    /// Paths served without credentials; a subset of `/hapi`, `/hapi/about`, `/hapi/capabilities`.
    #[serde(default)]
    pub public_paths: Vec<String>,
    /// The server's public base URL (issuer of built-in tokens, base of the login callback).
    pub public_url: Option<String>,
    /// Browser session lifetime, ISO 8601 duration (default `PT8H`).
    pub session_ttl: Option<String>,
    /// Origins allowed to send cookie-authenticated cross-origin requests.
    #[serde(default)]
    pub cookie_origins: Vec<String>,
    /// File with the session cookie key (shared by replicas); default: in the data directory.
    pub session_key_file: Option<PathBuf>,
    /// File with the built-in issuer's signing key (shared by replicas); default: in the
    /// data directory.
    pub issuer_key_file: Option<PathBuf>,
    /// `[auth.issuer]`, the built-in token issuer.
    #[serde(default)]
    pub issuer: IssuerFileConfig,
    /// `[auth.oidc]`, the external provider.
    pub oidc: Option<OidcFileConfig>,
    /// `[auth.access]`: who may read which dataset (default: every authenticated caller, all).
    pub access: Option<hapi_auth::RulesConfig>,
}

/// `[auth.issuer]`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct IssuerFileConfig {
    /// The scope tokens carry and the server requires (SWE: `swe_hapiserver`).
    pub scope: Option<String>,
    /// Token lifetime in seconds (default 300, as at SWE).
    pub token_ttl: Option<u64>,
    /// `aud` of issued tokens (default: the public URL + `/hapi`).
    pub audience: Option<String>,
    /// Clock leeway in seconds when checking them (default 30; replicas' clocks differ).
    pub leeway: Option<u64>,
    /// Active self-service clients a local account may have (the portal's Credentials
    /// page; default 10, 0 turns the page's creation off).
    pub max_clients_per_user: Option<u32>,
    /// Lets people ask for an account on the login page with an e-mail address and a
    /// password (default off). A sign-up reads nothing until an operator runs
    /// `hapi-server users approve`.
    #[serde(default)]
    pub allow_registration: bool,
    /// Roles an approval gives when `users approve` names none (default: none).
    #[serde(default)]
    pub registration_roles: Vec<String>,
}

/// `[auth.oidc]`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct OidcFileConfig {
    /// Issuer URL; discovery is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Accepted `aud` (or Keycloak `azp`) values.
    pub audience: Vec<String>,
    /// Scope every token must carry.
    pub scope: Option<String>,
    /// Dotted path of the roles claim, e.g. `realm_access.roles` (Keycloak) or `groups`.
    pub roles_claim: Option<String>,
    /// Clock leeway in seconds (default 30).
    pub leeway: Option<u64>,
    /// Least seconds between JWKS refetches triggered by unknown key ids (default 30):
    /// lower it to pick up a provider's key rotations sooner.
    pub jwks_refetch_interval: Option<u64>,
    /// Browser login: the confidential client of this server at the provider.
    pub client_id: Option<String>,
    /// Its secret (prefer `client_secret_file`).
    pub client_secret: Option<String>,
    /// A file holding the secret.
    pub client_secret_file: Option<PathBuf>,
    /// Also accept opaque tokens through RFC 7662 introspection (with the client above).
    #[serde(default)]
    pub introspection: bool,
    /// Where users register machine-to-machine clients at the provider; the portal's
    /// Credentials page links there (none: the page says so).
    pub registration_url: Option<String>,
}

impl std::fmt::Debug for OidcFileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcFileConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// `[about]`: the required keys of `/about` plus any optional ones, passed through.
#[derive(Debug, Deserialize, Clone)]
pub struct AboutConfig {
    /// `id`.
    pub id: String,
    /// `title`.
    pub title: String,
    /// `contact`.
    pub contact: String,
    /// Other `/about` keys (`description`, `contactID`, `resourceID`, `serverCitation`, `note`, `warning`, `dataTest`, `x_*`).
    #[serde(flatten)]
    pub extra: toml::Table,
}

/// `[[upstream]]`: another HAPI server whose datasets are served here, under our rules.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFileConfig {
    /// What `source = { kind = "hapi", upstream = ... }` calls it.
    pub name: String,
    /// Its HAPI base URL, ending in `/hapi`.
    pub url: String,
    /// Its token endpoint; by default from its OpenID discovery document.
    pub token_url: Option<String>,
    /// Our client id there (client_credentials), when it needs a token.
    pub client_id: Option<String>,
    /// A file holding the client secret, relative to the configuration file.
    pub client_secret_file: Option<PathBuf>,
    /// The scope asked for with the token.
    pub scope: Option<String>,
    /// Seconds to wait to connect, for an answer, and between reads (default 30).
    pub timeout: Option<u64>,
    /// Seconds between re-reads of each dataset's dates (default 300).
    pub refresh: Option<u64>,
    /// Serve its whole catalog (besides any `[[dataset]]` naming it).
    #[serde(default)]
    pub catalog: bool,
    /// Put before the upstream's ids of a whole catalog, e.g. `"swe/"`.
    pub id_prefix: Option<String>,
}

/// `[limits]` and `[dataset.limits]`.
#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Records x values per record, array elements counted one by one.
    pub max_elements: Option<u64>,
    /// Bytes of one response body (before compression).
    pub max_bytes: Option<u64>,
}

/// One `[[dataset]]`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// The dataset id of `/catalog`.
    pub id: String,
    /// Catalog title; defaults to the id.
    pub title: Option<String>,
    /// The HAPI info as JSON text (TOML has no `null`, which `fill` needs).
    pub info: Option<String>,
    /// Or a file holding it, relative to the configuration file.
    pub info_file: Option<PathBuf>,
    /// Overrides of the server limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Fill an empty dataset with synthetic records at start-up (demo generators).
    pub demo: Option<String>,
    /// Where the records live; the embedded store without it.
    pub source: Option<SourceConfig>,
    /// The role that may append to this dataset over HTTP, instead of `[ingest] role`.
    pub ingest_role: Option<String>,
}

/// `source = { kind = "...", ... }` of a `[[dataset]]`.
#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// Granule files named by a time template under a root directory.
    Files {
        /// The archive's root, relative to the configuration file.
        root: PathBuf,
        /// File names under the root, e.g. `$Y/mag_$Y$m$d.csv`.
        template: String,
        /// Seconds between full listings of the archive (for files added to its past).
        rescan: Option<u64>,
        /// CDF granules: the epoch variable, when it is not the parameters' `DEPEND_0`.
        epoch: Option<String>,
    },
    /// A reader program that prints HAPI csv for a time range.
    Command {
        /// The program: a path (relative to the configuration file) or a name in `PATH`.
        program: String,
        /// Its arguments; `${id}`, `${parameters}`, `${start}`, `${stop}`, `${format}` are replaced.
        #[serde(default)]
        args: Vec<String>,
        /// Seconds a run may take (default 60).
        timeout: Option<u64>,
        /// Runs at once (default 4).
        max_running: Option<u64>,
    },
    /// A dataset of an `[[upstream]]` HAPI server.
    Hapi {
        /// The `name` of the `[[upstream]]`.
        upstream: String,
        /// Its id there (default: the same id).
        dataset: Option<String>,
    },
}

/// Where a dataset's records are read, checked.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// The embedded store (`data_dir`).
    Embedded,
    /// A granule archive.
    Files(hapi_files::FilesConfig),
    /// A reader program.
    Command(hapi_command::CommandConfig),
    /// A dataset of upstream `upstream` (an index into [`Config::upstreams`]) called
    /// `dataset` there.
    Hapi {
        /// Index into [`Config::upstreams`].
        upstream: usize,
        /// The id upstream.
        dataset: String,
    },
}

/// One `[[upstream]]`, checked.
#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    /// Its `name`.
    pub name: String,
    /// How to reach it.
    pub config: hapi_upstream::UpstreamConfig,
    /// `Some(prefix)`: serve its whole catalog, ids prefixed.
    pub catalog: Option<String>,
    /// The server limits, for the datasets of a whole catalog.
    pub limits: Limits,
}

/// A `[[dataset]]` of an upstream whose info comes from there: resolved when the
/// server opens its datasets.
#[derive(Debug, Clone)]
pub struct PendingDataset {
    /// Its place in the catalog: the number of datasets of [`Config::datasets`] before it.
    pub position: usize,
    /// Our id.
    pub id: String,
    /// Catalog title, if configured.
    pub title: Option<String>,
    /// Effective limits.
    pub limits: Limits,
    /// Index into [`Config::upstreams`].
    pub upstream: usize,
    /// The id upstream.
    pub dataset: String,
}

/// Values from the environment and the command line, highest precedence last.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` / `HAPI_LISTEN`.
    pub listen: Option<String>,
    /// `--data-dir` / `HAPI_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `HAPI_MAX_ELEMENTS`.
    pub max_elements: Option<u64>,
    /// `HAPI_MAX_BYTES`.
    pub max_bytes: Option<u64>,
    /// `--log-format` / `HAPI_LOG_FORMAT`.
    pub log_format: Option<LogFormat>,
    /// `HAPI_DATABASE_URL`: the PostgreSQL primary (wins over `[store] url`).
    pub database_url: Option<String>,
}

/// Effective limits of one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Data elements per response.
    pub max_elements: u64,
    /// Bytes per response.
    pub max_bytes: u64,
}

/// One validated dataset.
#[derive(Debug, Clone)]
pub struct DatasetSpec {
    /// Catalog title.
    pub title: String,
    /// Validated metadata.
    pub info: DatasetInfo,
    /// Effective limits.
    pub limits: Limits,
    /// Demo generator, if any.
    pub demo: Option<String>,
    /// Where its records are read.
    pub source: SourceSpec,
    /// The role that may append to it over HTTP (its own `ingest_role`, else
    /// `[ingest] role`); `None`: no one. Only datasets of the embedded store have one.
    pub ingest_role: Option<String>,
}

/// Everything the server needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Path prefix before `/hapi` (empty or starting with `/`, no trailing `/`).
    pub path_prefix: String,
    /// The `/about` object without HAPI and status.
    pub about: Map<String, Value>,
    /// Datasets in catalog order (without those of `pending`).
    pub datasets: Vec<DatasetSpec>,
    /// Upstream HAPI servers.
    pub upstreams: Vec<UpstreamSpec>,
    /// Upstream datasets whose info is read from the upstream (`crate::upstreams`).
    pub pending: Vec<PendingDataset>,
    /// Access control, checked.
    pub auth: AuthSettings,
    /// Connection and stream limits.
    pub server: ServerSettings,
    /// The Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// Largest csv of one `POST /ingest`, in bytes after decompression.
    pub ingest_max_bytes: u64,
    /// Where the records live.
    pub store: StoreSpec,
}

/// `[auth]`, checked and compiled: what the server builds its access control from.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The mode with what only it needs.
    pub mode: ModeSettings,
    /// Who may read what; in open mode everyone reads everything.
    pub rules: hapi_auth::AccessRules,
    /// Public paths, relative to the prefix (`/hapi`, `/hapi/about`, ...).
    pub public_paths: Vec<String>,
    /// Public base URL without a trailing slash.
    pub public_url: String,
    /// Browser session lifetime.
    pub session_ttl: std::time::Duration,
    /// Origins that may send cookies cross-origin.
    pub cookie_origins: Vec<String>,
    /// Where the session key lives.
    pub session_key_file: PathBuf,
    /// Where the built-in issuer's signing key lives.
    pub issuer_key_file: PathBuf,
}

/// What each mode needs, ready to use.
#[derive(Debug, Clone)]
// Built once at start-up: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ModeSettings {
    /// No access control.
    Open,
    /// The built-in issuer, and how its tokens are checked.
    Builtin {
        /// The issuer's settings.
        issuer: hapi_auth::IssuerConfig,
        /// Clock leeway when checking its tokens.
        leeway: std::time::Duration,
        /// Active self-service clients per local account.
        max_clients_per_user: u32,
        /// Sign-ups on the login page, waiting for approval.
        allow_registration: bool,
        /// Roles an approval gives by default.
        registration_roles: Vec<String>,
    },
    /// An external provider.
    Oidc {
        /// How its tokens are checked (discovery happens at start-up).
        validator: hapi_auth::ValidatorConfig,
        /// Our confidential client there, for the browser login.
        login: Option<LoginClient>,
        /// The provider's page for registering clients, linked from the portal.
        registration_url: Option<String>,
    },
}

/// The server's client at the external provider (browser login, introspection).
#[derive(Clone)]
pub struct LoginClient {
    /// Our client id at the provider.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

impl std::fmt::Debug for LoginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginClient").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl AuthSettings {
    /// The built-in issuer's settings, if that is the mode (the command line manages its clients).
    pub fn issuer(&self) -> Option<&hapi_auth::IssuerConfig> {
        match &self.mode {
            ModeSettings::Builtin { issuer, .. } => Some(issuer),
            _ => None,
        }
    }
}

/// Paths that may be made public.
pub const PUBLIC_PATH_CHOICES: [&str; 4] = ["/hapi", "/hapi/about", "/hapi/capabilities", "/hapi/catalog"];

fn auth_settings(
    a: AuthFileConfig,
    listen: SocketAddr,
    prefix: &str,
    data_dir: &Path,
) -> Result<AuthSettings> {
    for p in &a.public_paths {
        if !PUBLIC_PATH_CHOICES.contains(&p.as_str()) {
            bail!("[auth] public_paths: {p:?} cannot be public (choose from {PUBLIC_PATH_CHOICES:?})");
        }
    }
    let public_url =
        a.public_url.unwrap_or_else(|| format!("http://{listen}")).trim_end_matches('/').to_owned();
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        bail!("[auth] public_url {public_url:?} must start with http:// or https://");
    }
    let session_ttl = match &a.session_ttl {
        Some(d) => {
            let ns = hapi_core::duration::parse(d)
                .with_context(|| format!("[auth] session_ttl {d:?} is not an ISO 8601 duration"))?;
            std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
        }
        None => std::time::Duration::from_secs(8 * 3600),
    };
    check_auth_ranges(&a.issuer, a.oidc.as_ref(), session_ttl)?;
    if a.mode == AuthMode::Oidc && a.oidc.is_none() {
        bail!("[auth] mode = \"oidc\" needs an [auth.oidc] section with issuer and audience");
    }
    let access = a.access.unwrap_or_else(|| hapi_auth::RulesConfig {
        authenticated: vec!["*".to_owned()],
        ..Default::default()
    });
    let rules = hapi_auth::AccessRules::new(&access).map_err(|e| anyhow::anyhow!("[auth.access]: {e}"))?;
    let mode = match a.mode {
        AuthMode::Open => ModeSettings::Open,
        AuthMode::Builtin => ModeSettings::Builtin {
            issuer: hapi_auth::IssuerConfig {
                audience: a.issuer.audience.unwrap_or_else(|| format!("{public_url}{prefix}/hapi")),
                issuer_url: public_url.clone(),
                scopes: vec![a.issuer.scope.unwrap_or_else(|| "swe_hapiserver".to_owned())],
                token_ttl: std::time::Duration::from_secs(a.issuer.token_ttl.unwrap_or(300)),
            },
            leeway: std::time::Duration::from_secs(a.issuer.leeway.unwrap_or(30)),
            max_clients_per_user: a.issuer.max_clients_per_user.unwrap_or(10),
            allow_registration: a.issuer.allow_registration,
            registration_roles: a.issuer.registration_roles,
        },
        AuthMode::Oidc => {
            let o = a.oidc.context("[auth.oidc] missing")?;
            oidc_settings(o)?
        }
    };
    Ok(AuthSettings {
        // Open mode is "everyone reads everything", not a special case downstream.
        rules: if matches!(mode, ModeSettings::Open) { hapi_auth::AccessRules::allow_all() } else { rules },
        mode,
        public_paths: a.public_paths,
        public_url,
        session_ttl,
        cookie_origins: a.cookie_origins,
        session_key_file: a.session_key_file.unwrap_or_else(|| data_dir.join("session-key")),
        issuer_key_file: a.issuer_key_file.unwrap_or_else(|| data_dir.join("issuer-key")),
    })
}

/// `[auth.oidc]` as validator settings and a login client (reading the secret file).
fn oidc_settings(o: OidcFileConfig) -> Result<ModeSettings> {
    if o.client_secret.is_some() && o.client_secret_file.is_some() {
        bail!("[auth.oidc]: give client_secret or client_secret_file, not both");
    }
    if o.audience.is_empty() {
        bail!("[auth.oidc]: audience must name at least one accepted audience");
    }
    let secret = match (o.client_secret, &o.client_secret_file) {
        (Some(v), _) => Some(v),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("[auth.oidc] reading client_secret_file {}", f.display()))?
                .trim()
                .to_owned(),
        ),
        (None, None) => None,
    };
    let login = match (o.client_id, secret) {
        (Some(client_id), Some(client_secret)) => Some(LoginClient { client_id, client_secret }),
        _ => None,
    };
    let mut v = hapi_auth::ValidatorConfig::new(o.issuer, o.audience);
    v.required_scope = o.scope;
    v.roles_claim = o.roles_claim;
    if let Some(l) = o.leeway {
        v.leeway = std::time::Duration::from_secs(l);
    }
    if let Some(r) = o.jwks_refetch_interval {
        v.jwks_min_refetch = std::time::Duration::from_secs(r);
    }
    if o.introspection {
        let c = login.as_ref().context("[auth.oidc] introspection needs client_id and a secret")?;
        v.introspection = Some(hapi_auth::Introspection {
            endpoint: None,
            client_id: c.client_id.clone(),
            client_secret: c.client_secret.clone(),
        });
    }
    let registration_url = o.registration_url;
    if registration_url.as_deref().is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://"))) {
        anyhow::bail!("[auth.oidc] registration_url must be an http(s) URL");
    }
    Ok(ModeSettings::Oidc { validator: v, login, registration_url })
}

/// Parses and validates a configuration. `base` is the directory that relative
/// `info_file` paths start from.
pub fn load(text: &str, base: &Path, overrides: &Overrides) -> Result<Config> {
    let file: FileConfig = toml::from_str(text).context("configuration is not valid")?;
    from_file(file, base, overrides)
}

/// Validates an already parsed configuration.
pub fn from_file(file: FileConfig, base: &Path, overrides: &Overrides) -> Result<Config> {
    if let Some(v) = file.version
        && v != 1
    {
        bail!("configuration version {v} is not supported (only 1)");
    }
    let listen = overrides.listen.clone().or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listen: SocketAddr =
        listen.parse().with_context(|| format!("listen address {listen:?} is not host:port"))?;
    let data_dir = overrides.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("hapi-data"));
    let path_prefix = normalize_prefix(file.path_prefix.as_deref().unwrap_or(""))?;
    let server_limits = Limits {
        max_elements: overrides.max_elements.or(file.limits.max_elements).unwrap_or(DEFAULT_MAX_ELEMENTS),
        max_bytes: overrides.max_bytes.or(file.limits.max_bytes).unwrap_or(DEFAULT_MAX_BYTES),
    };
    check_limits(&server_limits, "[limits]")?;

    if file.datasets.is_empty() && !file.upstreams.iter().any(|u| u.catalog) {
        bail!("configuration has no [[dataset]]: a HAPI catalog needs at least one");
    }
    let mut errors = Vec::new();
    let mut upstreams = Vec::with_capacity(file.upstreams.len());
    for u in file.upstreams {
        if upstreams.iter().any(|s: &UpstreamSpec| s.name == u.name) {
            errors.push(format!("upstream {:?}: name is used twice", u.name));
            continue;
        }
        match upstream(u, base, server_limits) {
            Ok(spec) => upstreams.push(spec),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let mut seen = HashSet::new();
    let mut datasets = Vec::with_capacity(file.datasets.len());
    let mut pending = Vec::new();
    for d in file.datasets {
        if !seen.insert(d.id.clone()) {
            errors.push(format!("dataset {:?}: id is used twice", d.id));
            continue;
        }
        match dataset(d, base, server_limits, &upstreams) {
            Ok(Checked::Spec(spec)) => datasets.push(*spec),
            Ok(Checked::Pending(mut p)) => {
                p.position = datasets.len();
                pending.push(p);
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !errors.is_empty() {
        bail!("configuration has {} error(s):\n  {}", errors.len(), errors.join("\n  "));
    }

    let about = about_json(file.about)?;
    let auth = auth_settings(file.auth, listen, &path_prefix, &data_dir)?;
    let mut server = server_settings(&file.server)?;
    if let Some(f) = overrides.log_format {
        server.log_format = f;
    }
    let metrics = metrics_settings(&file.server)?;
    let ingest_max_bytes = ingest_settings(&file.ingest, &auth, &mut datasets)?;
    let store = store_spec(file.store, base, overrides.database_url.as_deref())?;
    Ok(Config {
        listen,
        data_dir,
        path_prefix,
        about,
        datasets,
        upstreams,
        pending,
        auth,
        server,
        metrics,
        ingest_max_bytes,
        store,
    })
}

/// `[ingest]`: its role goes to every dataset of the embedded store without its own.
/// Returns the body limit.
fn ingest_settings(i: &IngestFileConfig, auth: &AuthSettings, datasets: &mut [DatasetSpec]) -> Result<u64> {
    let max_bytes = i.max_bytes.unwrap_or(DEFAULT_INGEST_BYTES);
    in_range("[ingest]", "max_bytes", max_bytes, 1024, 1 << 32, " bytes")?;
    if let Some(role) = &i.role {
        check_role("[ingest] role", role)?;
    }
    if matches!(auth.mode, ModeSettings::Open)
        && (i.role.is_some() || datasets.iter().any(|d| d.ingest_role.is_some()))
    {
        bail!(
            "ingest over HTTP needs callers with roles: [auth] mode = \"open\" has none (use `hapi-server ingest`)"
        );
    }
    for d in datasets.iter_mut().filter(|d| matches!(d.source, SourceSpec::Embedded)) {
        if d.ingest_role.is_none() {
            d.ingest_role.clone_from(&i.role);
        }
    }
    Ok(max_bytes)
}

/// A role name: not empty, no spaces or control characters (a typo would match nobody).
fn check_role(what: &str, role: &str) -> Result<()> {
    if role.is_empty() || role.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{what} {role:?} must be a role name: not empty, without spaces or control characters");
    }
    Ok(())
}

/// A `[[dataset]]`, checked: ready, or waiting for its info from an upstream.
enum Checked {
    Spec(Box<DatasetSpec>),
    Pending(PendingDataset),
}

fn upstream(u: UpstreamFileConfig, base: &Path, limits: Limits) -> Result<UpstreamSpec> {
    let what = format!("upstream {:?}", u.name);
    let url = u.url.trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("{what}: url {url:?} is not an http(s) URL");
    }
    let timeout = u.timeout.unwrap_or(30);
    in_range(&what, "timeout", timeout, 1, 3600, " s")?;
    let refresh = u.refresh.unwrap_or(300);
    in_range(&what, "refresh", refresh, 1, 86_400, " s")?;
    let credentials = match (u.client_id, u.client_secret_file) {
        (None, None) => None,
        (Some(client_id), Some(file)) => {
            let path = base.join(file);
            let secret = std::fs::read_to_string(&path)
                .with_context(|| format!("{what}: cannot read client_secret_file {}", path.display()))?;
            let client_secret = secret.trim_end_matches(['\n', '\r']).to_owned();
            if client_secret.is_empty() {
                bail!("{what}: client_secret_file {} is empty", path.display());
            }
            Some(hapi_upstream::Credentials {
                token_url: u.token_url,
                client_id,
                client_secret,
                scope: u.scope,
            })
        }
        _ => bail!("{what}: give both client_id and client_secret_file, or neither"),
    };
    let config = hapi_upstream::UpstreamConfig {
        url,
        credentials,
        timeout: std::time::Duration::from_secs(timeout),
        refresh: std::time::Duration::from_secs(refresh),
    };
    let catalog = u.catalog.then(|| u.id_prefix.unwrap_or_default());
    Ok(UpstreamSpec { name: u.name, config, catalog, limits })
}

fn dataset(d: DatasetConfig, base: &Path, server: Limits, upstreams: &[UpstreamSpec]) -> Result<Checked> {
    let id = &d.id;
    if id.is_empty() || id.contains(',') || id.chars().any(char::is_control) {
        bail!("dataset {id:?}: id must be non-empty, without commas or control characters");
    }
    let limits = Limits {
        max_elements: d.limits.max_elements.unwrap_or(server.max_elements),
        max_bytes: d.limits.max_bytes.unwrap_or(server.max_bytes),
    };
    check_limits(&limits, &format!("dataset {id:?} limits"))?;
    if let Some(role) = &d.ingest_role {
        if d.source.is_some() {
            bail!(
                "dataset {id:?}: ingest_role is for datasets of the embedded store; this one is read from its source"
            );
        }
        check_role(&format!("dataset {id:?} ingest_role"), role)?;
    }
    let remote = match &d.source {
        Some(SourceConfig::Hapi { upstream, dataset }) => {
            let Some(index) = upstreams.iter().position(|u| &u.name == upstream) else {
                bail!("dataset {id:?}: no [[upstream]] is named {upstream:?}");
            };
            Some((index, dataset.clone().unwrap_or_else(|| id.clone())))
        }
        _ => None,
    };
    if let Some((upstream, dataset)) = &remote
        && d.info.is_none()
        && d.info_file.is_none()
    {
        if d.demo.is_some() {
            bail!("dataset {id:?}: a demo generator fills the embedded store; drop `demo` or `source`");
        }
        return Ok(Checked::Pending(PendingDataset {
            position: 0,
            id: id.clone(),
            title: d.title,
            limits,
            upstream: *upstream,
            dataset: dataset.clone(),
        }));
    }
    let text = match (&d.info, &d.info_file) {
        (Some(t), None) => t.clone(),
        (None, Some(f)) => {
            let path = base.join(f);
            std::fs::read_to_string(&path)
                .with_context(|| format!("dataset {id:?}: cannot read info_file {}", path.display()))?
        }
        _ => bail!("dataset {id:?}: give exactly one of `info` (JSON text) and `info_file`"),
    };
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("dataset {id:?}: info is not valid JSON"))?;
    let info = DatasetInfo::from_json(id, &json).map_err(|errs| {
        anyhow::anyhow!(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))
    })?;
    if let Some(g) = &d.demo
        && !DEMO_GENERATORS.contains(&g.as_str())
    {
        bail!("dataset {id:?}: unknown demo generator {g:?} (known: {DEMO_GENERATORS:?})");
    }
    let source = match d.source {
        None => SourceSpec::Embedded,
        Some(_) if d.demo.is_some() => {
            bail!("dataset {id:?}: a demo generator fills the embedded store; drop `demo` or `source`")
        }
        Some(SourceConfig::Files { root, template, rescan, epoch }) => {
            let template =
                hapi_files::Template::parse(&template).map_err(|e| anyhow::anyhow!("dataset {id:?}: {e}"))?;
            let rescan = rescan.unwrap_or(60);
            in_range(&format!("dataset {id:?} source"), "rescan", rescan, 1, 86_400, " s")?;
            SourceSpec::Files(hapi_files::FilesConfig {
                root: base.join(root),
                template,
                rescan: std::time::Duration::from_secs(rescan),
                epoch,
            })
        }
        Some(SourceConfig::Command { program, args, timeout, max_running }) => {
            let what = format!("dataset {id:?} source");
            let timeout = timeout.unwrap_or(60);
            in_range(&what, "timeout", timeout, 1, 86_400, " s")?;
            let max_running = max_running.unwrap_or(4);
            in_range(&what, "max_running", max_running, 1, 1024, "")?;
            if info.start_date.is_none() || info.stop_date.is_none() {
                bail!(
                    "dataset {id:?}: a reader program is asked only for ranges, so its info needs startDate and stopDate"
                );
            }
            let program = executable(&program, base)
                .with_context(|| format!("dataset {id:?}: reader program {program:?}"))?;
            SourceSpec::Command(hapi_command::CommandConfig {
                program,
                args,
                timeout: std::time::Duration::from_secs(timeout),
                max_running: max_running as usize,
            })
        }
        Some(SourceConfig::Hapi { .. }) => {
            let (upstream, dataset) = remote.expect("checked above");
            SourceSpec::Hapi { upstream, dataset }
        }
    };
    Ok(Checked::Spec(Box::new(DatasetSpec {
        title: d.title.unwrap_or_else(|| d.id.clone()),
        info,
        limits,
        demo: d.demo,
        ingest_role: d.ingest_role,
        source,
    })))
}

/// The path of an executable program: `program` itself when it names a path (relative
/// ones from the configuration file's directory), else the first match in `PATH`.
fn executable(program: &str, base: &Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable =
        |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let path = base.join(program);
        if !runnable(&path) {
            bail!("{} is not an executable file", path.display());
        }
        return Ok(path.to_string_lossy().into_owned());
    }
    if program.is_empty() {
        bail!("the program is empty");
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| runnable(p))
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("not found in PATH"))
}

fn check_limits(l: &Limits, what: &str) -> Result<()> {
    in_range(what, "max_elements", l.max_elements, 1, MAX_ELEMENTS_BOUND, "")?;
    in_range(what, "max_bytes", l.max_bytes, 1, MAX_BYTES_BOUND, " bytes")
}

/// Upper bounds no operator reaches but that keep every product of them (records ×
/// cadence, elements × bytes) far from overflow: 10^12 elements, 1 TiB per response.
pub const MAX_ELEMENTS_BOUND: u64 = 1_000_000_000_000;
/// 1 TiB.
pub const MAX_BYTES_BOUND: u64 = 1 << 40;
/// Token lifetime: 1 s to 7 days (SWE uses 300 s; a longer token is an API key).
const TOKEN_TTL_SECS: (u64, u64) = (1, 7 * 86_400);
/// Clock leeway: up to 10 minutes; more is a broken clock, and it extends every token.
const LEEWAY_SECS: (u64, u64) = (0, 600);
/// JWKS refetches for unknown key ids: at least 1 s apart (0 would let forged `kid`s
/// make us hammer the provider), at most a day.
const JWKS_REFETCH_SECS: (u64, u64) = (1, 86_400);
/// Browser sessions: 1 minute to 366 days.
const SESSION_TTL_SECS: (u64, u64) = (60, 366 * 86_400);

/// `value` of `key` in `section` lies in `lo..=hi`; the error names the key and the range.
fn in_range(section: &str, key: &str, value: u64, lo: u64, hi: u64, unit: &str) -> Result<()> {
    if !(lo..=hi).contains(&value) {
        bail!("{section} {key} = {value}{unit} is out of range: it must be {lo} to {hi}{unit}");
    }
    Ok(())
}

/// The durations of `[auth]`, `[auth.issuer]` and `[auth.oidc]` (in seconds).
fn check_auth_ranges(
    i: &IssuerFileConfig,
    oidc: Option<&OidcFileConfig>,
    session_ttl: std::time::Duration,
) -> Result<()> {
    hapi_auth::check_roles(&i.registration_roles)
        .map_err(|e| anyhow::anyhow!("[auth.issuer] registration_roles: {e}"))?;
    let (lo, hi) = SESSION_TTL_SECS;
    if !(lo..=hi).contains(&session_ttl.as_secs()) {
        bail!("[auth] session_ttl is out of range: it must be PT1M to P366D");
    }
    let checks = [
        ("[auth.issuer]", "token_ttl", i.token_ttl, TOKEN_TTL_SECS),
        ("[auth.issuer]", "leeway", i.leeway, LEEWAY_SECS),
        ("[auth.oidc]", "leeway", oidc.and_then(|o| o.leeway), LEEWAY_SECS),
        (
            "[auth.oidc]",
            "jwks_refetch_interval",
            oidc.and_then(|o| o.jwks_refetch_interval),
            JWKS_REFETCH_SECS,
        ),
    ];
    for (section, key, value, (lo, hi)) in checks {
        if let Some(v) = value {
            in_range(section, key, v, lo, hi, " s")?;
        }
    }
    Ok(())
}

fn normalize_prefix(p: &str) -> Result<String> {
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    if !p.starts_with('/') || p.contains(['?', '#', ' ']) {
        bail!("path_prefix {p:?} must start with '/' and hold no '?', '#' or spaces");
    }
    Ok(p.to_owned())
}

fn about_json(about: Option<AboutConfig>) -> Result<Map<String, Value>> {
    let about = about.unwrap_or_else(|| AboutConfig {
        id: "hapi-server-rs".to_owned(),
        title: "Heliophysics time series (Rust server)".to_owned(),
        contact: "operator@localhost".to_owned(),
        extra: toml::Table::new(),
    });
    let mut m = Map::new();
    m.insert("id".to_owned(), Value::String(about.id));
    m.insert("title".to_owned(), Value::String(about.title));
    m.insert("contact".to_owned(), Value::String(about.contact));
    const KNOWN: [&str; 8] = [
        "description",
        "contactID",
        "resourceID",
        "citation",
        "serverCitation",
        "note",
        "warning",
        "dataTest",
    ];
    for (k, v) in about.extra {
        if !KNOWN.contains(&k.as_str()) && !k.starts_with("x_") {
            bail!("[about]: key {k:?} is not a HAPI /about key; extensions must start with x_");
        }
        let v = serde_json::to_value(v).context("[about] value")?;
        m.insert(k, v);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"{"parameters":[{"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
        {"name":"Bx","type":"double","units":"nT","fill":"-1e31"}],
        "startDate":"2016-01-01T00:00:00.000Z","stopDate":"2016-02-01T00:00:00.000Z","cadence":"PT1M"}"#;

    fn cfg(extra: &str) -> String {
        format!("listen = \"127.0.0.1:9000\"\n{extra}\n[[dataset]]\nid = \"ds1\"\ninfo = '''{INFO}'''\n")
    }

    #[test]
    fn the_store_is_sqlite_unless_a_postgres_url_is_given() {
        let load = |extra: &str, env: Option<&str>| {
            let o = Overrides { database_url: env.map(str::to_owned), ..Default::default() };
            super::load(&cfg(extra), Path::new("."), &o)
        };
        assert!(matches!(load("", None).unwrap().store, StoreSpec::Sqlite));
        let pg = |c: Config| match c.store {
            StoreSpec::Postgres(s) => s,
            StoreSpec::Sqlite => panic!("postgres expected"),
        };
        let s = pg(load("[store]\nurl = \"postgres://u:pw@db:5433/h\"\npool_size = 4", None).unwrap());
        assert_eq!(
            (s.url.redacted().as_str(), s.pool_size, s.pipelined_connections),
            ("postgres://u@db:5433/h", 4, 1)
        );
        let s = pg(load("[store]\nurl = \"postgres://u@db/h\"\npipelined_connections = 3", None).unwrap());
        assert_eq!((s.pool_size, s.pipelined_connections), (16, 3));
        for key in ["pool_size", "pipelined_connections"] {
            let err = load(&format!("[store]\nurl = \"postgres://u@db/h\"\n{key} = 0"), None).unwrap_err();
            assert_eq!(err.to_string(), format!("[store] {key} must be at least 1"));
        }
        // The environment wins and implies postgres.
        let s = pg(load("[store]\nurl = \"postgres://u:pw@db/h\"", Some("postgres://e:pw@envdb/h")).unwrap());
        assert_eq!(s.url.redacted(), "postgres://e@envdb:5432/h");
        assert!(matches!(load("", Some("postgres://e:pw@envdb/h")).unwrap().store, StoreSpec::Postgres(_)));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("url"), "postgres://f:secret@filedb/h\n").unwrap();
        std::fs::write(dir.path().join("ro"), "postgres://f:secret@standby/h").unwrap();
        let text = cfg("[store]\nurl_file = \"url\"\nread_url_file = \"ro\"");
        let s = pg(super::load(&text, dir.path(), &Overrides::default()).unwrap());
        assert_eq!(s.url.redacted(), "postgres://f@filedb:5432/h");
        assert_eq!(s.read_url.unwrap().redacted(), "postgres://f@standby:5432/h");
        assert!(
            !StoreSpec::Postgres(pg(super::load(&text, dir.path(), &Overrides::default()).unwrap()))
                .describe()
                .contains("secret")
        );
        for (extra, env, why) in [
            ("[store]\nkind = \"postgres\"", None, "needs url, url_file or HAPI_DATABASE_URL"),
            ("[store]\nkind = \"sqlite\"", Some("postgres://e@x/h"), "takes no url or read_url"),
            ("[store]\nurl = \"a\"\nurl_file = \"b\"", None, "give url or url_file, not both"),
            ("[store]\nurl = \"postgres://u:pw@h:x/d\"", None, "[store] url: database URL: not a PostgreSQL"),
            ("[store]\nurl_file = \"missing\"", None, "reading url_file"),
            ("[store]\nurl = \"postgres://h/d\"\nconnect_timeout = 0", None, "at least 1 second"),
        ] {
            let err = format!("{:#}", load(extra, env).unwrap_err());
            assert!(err.contains(why), "{extra}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }

    #[test]
    fn defaults_and_precedence() {
        let c = load(&cfg("[limits]\nmax_elements = 10"), Path::new("."), &Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.datasets[0].limits, Limits { max_elements: 10, max_bytes: DEFAULT_MAX_BYTES });
        let o = Overrides { listen: Some("127.0.0.1:1".into()), max_elements: Some(7), ..Default::default() };
        let c = load(&cfg("[limits]\nmax_elements = 10"), Path::new("."), &o).unwrap();
        assert_eq!(c.listen.port(), 1);
        assert_eq!(c.datasets[0].limits.max_elements, 7);
    }

    #[test]
    fn auth_sections() {
        let c = load(&cfg(""), Path::new("."), &Overrides::default()).unwrap();
        let issuer = c.auth.issuer().expect("protected by the built-in issuer unless told otherwise");
        assert_eq!(c.auth.public_url, "http://127.0.0.1:9000");
        assert_eq!(issuer.token_ttl.as_secs(), 300);
        assert_eq!(issuer.audience, "http://127.0.0.1:9000/hapi");
        let oidc = "[auth]\nmode = \"oidc\"\n[auth.oidc]\nissuer = \"https://sso.example/realms/swe\"\n\
                    audience = [\"swe_hapiserver\"]\njwks_refetch_interval = 5\nclient_secret = \"s3cret\"";
        let c = load(&cfg(oidc), Path::new("."), &Overrides::default()).unwrap();
        let ModeSettings::Oidc { validator, login, .. } = &c.auth.mode else { panic!("oidc mode") };
        assert_eq!(validator.jwks_min_refetch.as_secs(), 5);
        assert!(login.is_none(), "a secret without a client id is no login client");
        assert!(!format!("{c:?}").contains("s3cret"), "secrets never in Debug");
        let e = load(&cfg("[auth]\nmode = \"oidc\""), Path::new("."), &Overrides::default()).unwrap_err();
        assert!(format!("{e:#}").contains("[auth.oidc]"), "{e:#}");
        let bad = format!("{oidc}\nregistration_url = \"javascript:alert(1)\"");
        let e = load(&cfg(&bad), Path::new("."), &Overrides::default()).unwrap_err();
        assert!(format!("{e:#}").contains("registration_url"), "{e:#}");
        let c = load(&cfg("[auth.issuer]\nmax_clients_per_user = 3"), Path::new("."), &Overrides::default())
            .unwrap();
        assert!(matches!(
            c.auth.mode,
            ModeSettings::Builtin { max_clients_per_user: 3, allow_registration: false, .. }
        ));
        let c = load(
            &cfg("[auth.issuer]\nallow_registration = true\nregistration_roles = [\"guest\"]"),
            Path::new("."),
            &Overrides::default(),
        )
        .unwrap();
        let ModeSettings::Builtin { allow_registration: true, registration_roles, .. } = &c.auth.mode else {
            panic!("registration on")
        };
        assert_eq!(registration_roles, &["guest".to_owned()]);
        let e = load(
            &cfg("[auth.issuer]\nregistration_roles = [\"a b\"]"),
            Path::new("."),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("registration_roles"), "{e:#}");
        let e = load(&cfg("[auth]\npublic_paths = [\"/hapi/data\"]"), Path::new("."), &Overrides::default())
            .unwrap_err();
        assert!(format!("{e:#}").contains("public_paths"), "{e:#}");
    }

    /// Issue 6 item 11: absurd values are start-up errors that name the key.
    #[test]
    fn out_of_range_values_name_their_key() {
        let bad = [
            ("[auth.issuer]\ntoken_ttl = 18446744073709551615", "token_ttl"),
            ("[auth.issuer]\ntoken_ttl = 0", "token_ttl"),
            ("[auth.issuer]\nleeway = 86400", "leeway"),
            ("[auth]\nsession_ttl = \"P1000D\"", "session_ttl"),
            ("[auth]\nsession_ttl = \"PT0S\"", "session_ttl"),
            ("[limits]\nmax_elements = 18446744073709551615", "max_elements"),
            ("[limits]\nmax_bytes = 18446744073709551615", "max_bytes"),
            ("[limits]\nmax_bytes = 0", "max_bytes"),
            (
                "[auth]\nmode = \"oidc\"\n[auth.oidc]\nissuer = \"https://sso.example\"\naudience = [\"a\"]\njwks_refetch_interval = 0",
                "jwks_refetch_interval",
            ),
            (
                "[auth]\nmode = \"oidc\"\n[auth.oidc]\nissuer = \"https://sso.example\"\naudience = [\"a\"]\nleeway = 4000000000",
                "leeway",
            ),
        ];
        for (extra, key) in bad {
            let e = load(&cfg(extra), Path::new("."), &Overrides::default()).unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(key) && msg.contains("out of range"), "{extra}: {msg}");
        }
        let o = Overrides { max_elements: Some(u64::MAX), ..Default::default() };
        let e = load(&cfg(""), Path::new("."), &o).unwrap_err();
        assert!(format!("{e:#}").contains("max_elements"), "{e:#}");
        let e = load(&cfg("").replace("\"PT1M\"", "\"PT0S\""), Path::new("."), &Overrides::default())
            .unwrap_err();
        assert!(format!("{e:#}").contains("cadence"), "{e:#}");
        let ok = "[auth]\nsession_ttl = \"P366D\"\n[auth.issuer]\ntoken_ttl = 604800\nleeway = 600\n\
                  [limits]\nmax_elements = 1000000000000\nmax_bytes = 1099511627776";
        load(&cfg(ok), Path::new("."), &Overrides::default()).unwrap();
    }

    #[test]
    fn ingest_roles_and_limit() {
        let load = |text: &str| load(text, Path::new("."), &Overrides::default());
        let c = load(&cfg("")).unwrap();
        assert_eq!((c.datasets[0].ingest_role.as_deref(), c.ingest_max_bytes), (None, DEFAULT_INGEST_BYTES));
        let c = load(&cfg("[ingest]\nrole = \"writer\"\nmax_bytes = 2048")).unwrap();
        assert_eq!((c.datasets[0].ingest_role.as_deref(), c.ingest_max_bytes), (Some("writer"), 2048));
        let own = format!("{}ingest_role = \"owner\"\n", cfg("[ingest]\nrole = \"writer\""));
        assert_eq!(load(&own).unwrap().datasets[0].ingest_role.as_deref(), Some("owner"));
        let files = "source = { kind = \"files\", root = \"/archive\", template = \"$Y.csv\" }\n";
        let c = load(&format!("{}{files}", cfg("[ingest]\nrole = \"writer\""))).unwrap();
        assert_eq!(c.datasets[0].ingest_role, None, "only datasets of the embedded store");
        for (text, needle) in [
            (format!("{}{files}ingest_role = \"w\"\n", cfg("")), "embedded store"),
            (cfg("[ingest]\nrole = \"a b\""), "role name"),
            (cfg("[ingest]\nmax_bytes = 10"), "max_bytes"),
            (cfg("[auth]\nmode = \"open\"\n[ingest]\nrole = \"writer\""), "open"),
            (format!("{}ingest_role = \"w\"\n", cfg("[auth]\nmode = \"open\"")), "open"),
        ] {
            let e = format!("{:#}", load(&text).unwrap_err());
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn errors_name_the_place() {
        let e = load("listen = 3", Path::new("."), &Overrides::default()).unwrap_err();
        assert!(format!("{e:#}").contains("listen"), "{e:#}");
        let e = load(&cfg("bogus = 1"), Path::new("."), &Overrides::default()).unwrap_err();
        assert!(format!("{e:#}").contains("bogus"), "{e:#}");
        let bad = cfg("").replace("\"-1e31\"", "-1e31");
        let e = load(&bad, Path::new("."), &Overrides::default()).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("ds1") && msg.contains("Bx") && msg.contains("fill"), "{msg}");
        let twice = format!("{}[[dataset]]\nid = \"ds1\"\ninfo = '''{INFO}'''\n", cfg(""));
        let e = load(&twice, Path::new("."), &Overrides::default()).unwrap_err();
        assert!(format!("{e:#}").contains("used twice"));
        let e = load(
            &cfg("[about]\nid='a'\ntitle='b'\ncontact='c'\nfoo=1"),
            Path::new("."),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("x_"));
    }
}

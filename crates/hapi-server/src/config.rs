//! Configuration: one TOML file, overridden by `HAPI_*` environment variables,
//! overridden by command-line flags (the last two arrive here as [`Overrides`]).
//!
//! Loading is a pure function of the file's text and the overrides, so tests never
//! touch the process environment.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hapi_core::info::DatasetInfo;
use serde::Deserialize;
use serde_json::{Map, Value};

/// SWE's published limits: 100,000 data elements and 12,288 kB per `/data` response.
pub const DEFAULT_MAX_ELEMENTS: u64 = 100_000;
/// 12,288 kB.
pub const DEFAULT_MAX_BYTES: u64 = 12_288 * 1024;

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
    /// Datasets in catalog order.
    pub datasets: Vec<DatasetSpec>,
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

    if file.datasets.is_empty() {
        bail!("configuration has no [[dataset]]: a HAPI catalog needs at least one");
    }
    let mut seen = HashSet::new();
    let mut datasets = Vec::with_capacity(file.datasets.len());
    let mut errors = Vec::new();
    for d in file.datasets {
        if !seen.insert(d.id.clone()) {
            errors.push(format!("dataset {:?}: id is used twice", d.id));
            continue;
        }
        match dataset(d, base, server_limits) {
            Ok(spec) => datasets.push(spec),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !errors.is_empty() {
        bail!("configuration has {} error(s):\n  {}", errors.len(), errors.join("\n  "));
    }

    let about = about_json(file.about)?;
    Ok(Config { listen, data_dir, path_prefix, about, datasets })
}

fn dataset(d: DatasetConfig, base: &Path, server: Limits) -> Result<DatasetSpec> {
    let id = &d.id;
    if id.is_empty() || id.contains(',') || id.chars().any(char::is_control) {
        bail!("dataset {id:?}: id must be non-empty, without commas or control characters");
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
    let limits = Limits {
        max_elements: d.limits.max_elements.unwrap_or(server.max_elements),
        max_bytes: d.limits.max_bytes.unwrap_or(server.max_bytes),
    };
    check_limits(&limits, &format!("dataset {id:?} limits"))?;
    if let Some(g) = &d.demo
        && !crate::demo::GENERATORS.contains(&g.as_str())
    {
        bail!("dataset {id:?}: unknown demo generator {g:?} (known: {:?})", crate::demo::GENERATORS);
    }
    Ok(DatasetSpec { title: d.title.unwrap_or_else(|| d.id.clone()), info, limits, demo: d.demo })
}

fn check_limits(l: &Limits, what: &str) -> Result<()> {
    if l.max_elements == 0 || l.max_bytes == 0 {
        bail!("{what}: max_elements and max_bytes must be positive");
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

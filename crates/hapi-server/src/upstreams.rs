//! Opens the `[[upstream]]` HAPI servers when the datasets are opened (start-up and
//! reload): the datasets that take their info from an upstream, and its whole catalog
//! where asked, become datasets like the configured ones, each read through a
//! [`UpstreamSource`].
//!
//! What fails where (docs/decisions.md, "Upstream HAPI servers"): an upstream that
//! cannot give the info of a dataset we must describe stops the start-up, naming the
//! dataset; a dataset whose info is configured starts anyway (its dates come when the
//! upstream answers); one bad dataset of a whole catalog is logged and left out.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use futures::StreamExt;
use hapi_core::info::DatasetInfo;
use hapi_source::Source;
use hapi_upstream::{Upstream, UpstreamSource, local_info};
use serde_json::Value;

use crate::config::{Config, DatasetSpec, SourceSpec};

/// `/info` requests in flight at once when a whole catalog is read.
const INFO_AT_ONCE: usize = 8;

/// The sources of upstream datasets, by our id.
pub(crate) type Opened = HashMap<String, Arc<dyn Source>>;

/// `config` with every upstream dataset in its catalog, and their sources.
pub(crate) async fn open(config: &Config) -> Result<(Cow<'_, Config>, Opened)> {
    if config.upstreams.is_empty() {
        return Ok((Cow::Borrowed(config), HashMap::new()));
    }
    let mut servers = Vec::with_capacity(config.upstreams.len());
    for u in &config.upstreams {
        let server = Upstream::new(u.config.clone()).map_err(|e| anyhow!("upstream {:?}: {e}", u.name))?;
        let binary = match server.offers_binary().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(upstream = %u.name, error = %e, "reading the upstream's capabilities failed: asking it for csv");
                false
            }
        };
        servers.push((server, binary));
    }
    let mut sources = Opened::new();
    let mut datasets = config.datasets.clone();

    for d in &config.datasets {
        if let SourceSpec::Hapi { upstream, dataset } = &d.source {
            let (server, binary) = &servers[*upstream];
            let raw = server.info(dataset).await.unwrap_or_else(|e| {
                tracing::warn!(dataset = %d.info.id, error = %e, "the upstream did not give the dataset's dates yet");
                Value::Null
            });
            let source = UpstreamSource::new(server.clone(), dataset, d.info.clone(), &raw, *binary);
            sources.insert(d.info.id.clone(), Arc::new(source));
        }
    }

    // In reverse, so that each position still counts the configured datasets before it.
    for p in config.pending.iter().rev() {
        let (server, binary) = &servers[p.upstream];
        let raw = server.info(&p.dataset).await.map_err(|e| anyhow!("dataset {:?}: {e}", p.id))?;
        let info = upstream_info(&p.id, &raw).with_context(|| format!("dataset {:?}", p.id))?;
        let source = UpstreamSource::new(server.clone(), &p.dataset, info.clone(), &raw, *binary);
        sources.insert(p.id.clone(), Arc::new(source));
        let title = p.title.clone().unwrap_or_else(|| p.id.clone());
        let source = SourceSpec::Hapi { upstream: p.upstream, dataset: p.dataset.clone() };
        datasets.insert(
            p.position,
            DatasetSpec { title, info, limits: p.limits, demo: None, ingest_role: None, source },
        );
    }

    for (index, u) in config.upstreams.iter().enumerate() {
        let Some(prefix) = &u.catalog else { continue };
        let (server, binary) = &servers[index];
        let entries =
            server.catalog().await.map_err(|e| anyhow!("upstream {:?}: reading its catalog: {e}", u.name))?;
        let infos: Vec<_> = futures::stream::iter(entries)
            .map(|(remote, title)| async move {
                let raw = server.info(&remote).await;
                (remote, title, raw)
            })
            .buffered(INFO_AT_ONCE)
            .collect()
            .await;
        for (remote, title, raw) in infos {
            let id = format!("{prefix}{remote}");
            // The rule a configured id must follow: a comma would split `dataset=`.
            if remote.is_empty() || id.contains(',') || id.chars().any(char::is_control) {
                tracing::error!(upstream = %u.name, dataset = ?id, "an id with a comma or a control character is left out");
                continue;
            }
            if datasets.iter().any(|d| d.info.id == id) {
                tracing::warn!(upstream = %u.name, dataset = %id, "a configured dataset has this id: the upstream's is not served");
                continue;
            }
            let checked =
                raw.map_err(|e| anyhow!("{e}")).and_then(|raw| Ok((upstream_info(&id, &raw)?, raw)));
            let (info, raw) = match checked {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(upstream = %u.name, dataset = %id, error = %format!("{e:#}"), "the upstream's dataset is left out");
                    continue;
                }
            };
            let source = UpstreamSource::new(server.clone(), &remote, info.clone(), &raw, *binary);
            sources.insert(id.clone(), Arc::new(source));
            let spec = SourceSpec::Hapi { upstream: index, dataset: remote };
            datasets.push(DatasetSpec {
                title: title.unwrap_or(id),
                info,
                limits: u.limits,
                demo: None,
                ingest_role: None,
                source: spec,
            });
        }
    }
    if datasets.is_empty() {
        anyhow::bail!("no dataset to serve: the upstream catalogs are empty");
    }
    let mut config = config.clone();
    config.datasets = datasets;
    config.pending.clear();
    Ok((Cow::Owned(config), sources))
}

/// Our info of a dataset from the upstream's `/info`, checked as a configured one is.
fn upstream_info(id: &str, raw: &Value) -> Result<DatasetInfo> {
    DatasetInfo::from_json(id, &local_info(raw)).map_err(|errs| {
        let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        anyhow!("the upstream's info is not valid HAPI: {}", errs.join("; "))
    })
}

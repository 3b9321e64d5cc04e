//! The `command` source: a reader program per request, as server-nodejs runs them.
//!
//! The program and its arguments come from the configuration, with `${id}`,
//! `${parameters}`, `${start}`, `${stop}` and `${format}` replaced in each argument; it
//! is started directly, never through a shell, so nothing of a request can become a
//! command. It writes HAPI csv to stdout: every parameter in info order, or only those
//! asked for. What it prints is checked like ingest checks a file (types, lengths,
//! strictly increasing times) and cut to the request, so a program that ignores the
//! time range or prints every column still gives the exact answer.
//!
//! The program is killed when the response ends early (the client went away), when it
//! runs past `timeout`, and when it prints something that is not a record; at most
//! `max_running` run at once (more wait, within the timeout). A failure is
//! [`ErrorKind::Upstream`] (HAPI 1501), named with the dataset in the log.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use hapi_core::Batch;
use hapi_core::decode::CsvDecoder;
use hapi_core::info::DatasetInfo;
use hapi_core::time::{self, TimeFormat};
use hapi_source::{Batches, Count, ErrorKind, Extent, Scan, ScanRequest, Source, SourceError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Records decoded before a batch is handed on.
const BATCH_ROWS: usize = 4096;
/// Bytes of the program's stderr kept for the log.
const STDERR_KEPT: u64 = 2048;

/// A reader program and how it may run.
#[derive(Debug, Clone)]
pub struct CommandConfig {
    /// The program (a path, or a name looked up in `PATH`).
    pub program: String,
    /// Its arguments, with `${...}` placeholders.
    pub args: Vec<String>,
    /// Longest a run may take, start to last record.
    pub timeout: Duration,
    /// Runs at once.
    pub max_running: usize,
}

/// The read side of a dataset whose records a program prints.
#[derive(Debug)]
pub struct CommandSource {
    info: Arc<DatasetInfo>,
    config: CommandConfig,
    running: Arc<Semaphore>,
}

impl CommandSource {
    /// A source running `config.program` for `info`'s records.
    pub fn new(info: DatasetInfo, config: CommandConfig) -> CommandSource {
        let running = Arc::new(Semaphore::new(config.max_running.max(1)));
        CommandSource { info: Arc::new(info), config, running }
    }

    /// The arguments of one run.
    fn args(&self, r: &ScanRequest) -> Vec<String> {
        let names: Vec<&str> = r
            .columns
            .iter()
            .filter_map(|&c| self.info.parameters.get(c + 1))
            .map(|p| p.name.as_str())
            .collect();
        let fmt = TimeFormat::YMD_NANOS;
        let values = [
            ("${id}", self.info.id.clone()),
            ("${parameters}", names.join(",")),
            ("${start}", time::format_string(r.start, fmt)),
            ("${stop}", time::format_string(r.stop, fmt)),
            ("${format}", "csv".to_owned()),
        ];
        self.config.args.iter().map(|a| values.iter().fold(a.clone(), |a, (k, v)| a.replace(k, v))).collect()
    }

    fn failed(&self, what: impl std::fmt::Display) -> SourceError {
        SourceError::msg(
            ErrorKind::Upstream,
            format!("dataset {:?}: reader {:?} {what}", self.info.id, self.config.program),
        )
    }

    /// A decoder of the program's lines: those before `start` (a program that ignores
    /// the range) are checked for their time only.
    fn decoder(info: DatasetInfo, start: hapi_core::Nanos) -> CsvDecoder<'static> {
        let mut d = CsvDecoder::owned(info, None);
        d.skip_before(start);
        d
    }

    async fn start(&self, r: ScanRequest) -> Result<Scan, SourceError> {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let permit = tokio::time::timeout_at(deadline, self.running.clone().acquire_owned())
            .await
            .map_err(|_| self.failed("did not get a turn to run before its timeout"))?
            .map_err(|e| SourceError::new(ErrorKind::Internal, "reader slots", e))?;
        let mut child = tokio::process::Command::new(&self.config.program)
            .args(self.args(&r))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.failed(format!("cannot be started: {e}")))?;
        let stdout = child.stdout.take().expect("piped");
        let run = Run {
            label: format!("dataset {:?}: reader {:?}", self.info.id, self.config.program),
            info: self.info.clone(),
            lines: BufReader::with_capacity(64 * 1024, stdout),
            decoder: Self::decoder((*self.info).clone(), r.start),
            widths: self.info.parameters.iter().skip(1).map(|p| p.width()).collect(),
            line: Vec::new(),
            number: 0,
            request: r,
            subset: None,
            child,
            deadline,
            ended: false,
            _permit: permit,
        };
        let batches = futures::stream::unfold(run, |mut run| async move {
            match run.next().await {
                Ok(Some(b)) => Some((Ok(b), run)),
                Ok(None) => None,
                Err(e) => {
                    run.ended = true;
                    Some((Err(e), run))
                }
            }
        });
        Ok(Scan { count: Count::Unknown, batches: Batches::Async(batches.boxed()) })
    }
}

impl Source for CommandSource {
    /// Unknown: a program is only asked for ranges. The configured dates are published.
    fn extent(&self) -> BoxFuture<'_, Result<Extent, SourceError>> {
        Box::pin(futures::future::ready(Ok(None)))
    }

    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, Result<Scan, SourceError>> {
        Box::pin(self.start(request))
    }
}

/// One running program.
struct Run {
    label: String,
    info: Arc<DatasetInfo>,
    lines: BufReader<ChildStdout>,
    decoder: CsvDecoder<'static>,
    /// Elements of each non-time parameter.
    widths: Vec<usize>,
    line: Vec<u8>,
    number: usize,
    request: ScanRequest,
    /// Whether the program printed only the requested columns (known at its first record).
    subset: Option<bool>,
    child: Child,
    deadline: tokio::time::Instant,
    ended: bool,
    _permit: OwnedSemaphorePermit,
}

impl Run {
    fn failed(&self, what: impl std::fmt::Display) -> SourceError {
        SourceError::msg(ErrorKind::Upstream, format!("{}: {what}", self.label))
    }

    /// The next batch of records inside the request, `None` after the last.
    async fn next(&mut self) -> Result<Option<Batch>, SourceError> {
        while !self.ended {
            let batch = match tokio::time::timeout_at(self.deadline, self.read_batch()).await {
                Ok(b) => b?,
                Err(_) => return Err(self.failed("ran past its timeout and was stopped")),
            };
            let Some(mut batch) = batch else { break };
            if batch.keep_times(self.request.start, self.request.stop) {
                // Past the range: the rest is not needed.
                self.ended = true;
                let _ = self.child.start_kill();
            }
            if !batch.is_empty() {
                // A program that printed only the requested columns needs no selection.
                let all = self.subset != Some(true);
                return Ok(Some(if all { batch.select(&self.request.columns) } else { batch }));
            }
        }
        Ok(None)
    }

    /// Up to [`BATCH_ROWS`] records from the program; `None` at its end (a clean exit).
    async fn read_batch(&mut self) -> Result<Option<Batch>, SourceError> {
        while self.decoder.rows() < BATCH_ROWS {
            self.line.clear();
            let n = self
                .lines
                .read_until(b'\n', &mut self.line)
                .await
                .map_err(|e| self.failed(format!("output unreadable: {e}")))?;
            if n == 0 {
                self.finish().await?;
                break;
            }
            self.number += 1;
            if self.line.last() == Some(&b'\n') {
                self.line.pop();
            }
            if self.subset.is_none() && !self.line.is_empty() && self.line[0] != b'#' {
                self.choose_columns();
            }
            if let Err(e) = self.decoder.line(self.number, &self.line) {
                let _ = self.child.start_kill();
                return Err(self.failed(format!("printed a line that is not a record: {e}")));
            }
        }
        Ok((self.decoder.rows() > 0).then(|| self.decoder.take_batch()))
    }

    /// At the first record: does the program print every column or just those asked
    /// for? The decoder is set up for what it prints.
    fn choose_columns(&mut self) {
        let fields = 1 + self.line.iter().filter(|&&c| c == b',').count();
        let all = 1 + self.widths.iter().sum::<usize>();
        let asked = 1 + self.request.columns.iter().map(|&c| self.widths[c]).sum::<usize>();
        let subset = fields != all && fields == asked && !self.line.contains(&b'"');
        if subset {
            let mut info = (*self.info).clone();
            let kept = std::iter::once(0).chain(self.request.columns.iter().map(|&c| c + 1));
            info.parameters = kept.map(|i| self.info.parameters[i].clone()).collect();
            self.decoder = CommandSource::decoder(info, self.request.start);
        }
        self.subset = Some(subset);
    }

    /// The program's exit: anything but success fails the response.
    async fn finish(&mut self) -> Result<(), SourceError> {
        self.ended = true;
        let status =
            self.child.wait().await.map_err(|e| self.failed(format!("cannot be waited for: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let mut err = String::new();
        if let Some(stderr) = self.child.stderr.take() {
            let _ = stderr.take(STDERR_KEPT).read_to_string(&mut err).await;
        }
        Err(self.failed(format!("exited with {status}: {}", err.trim())))
    }
}

//! `hapi data`: any range, in pieces the server accepts, written in order to one output
//! that is what a single unlimited request would have returned.
//!
//! Pieces are [t0, t1), [t1, t2), ... (HAPI's stop is exclusive), so their records
//! join without a duplicate or a gap. Every piece asks for the header, which is checked
//! against `/info` and written once: the first header of a piece with records (its
//! status is the single request's 1200), or the first piece's when none has any. json
//! pieces are cut around their records and joined into one document.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use hapi_core::Nanos;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::{self, Checked, Format, Layout, fmt_time};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::log::Log;

/// What `hapi data` was asked.
#[derive(Debug, Clone)]
pub struct DataArgs {
    /// The dataset id.
    pub dataset: String,
    /// `a,b` or all.
    pub parameters: Option<String>,
    /// HAPI times.
    pub start: String,
    /// HAPI times (exclusive).
    pub stop: String,
    /// The output format.
    pub format: Format,
    /// Write the header (csv and binary; json always has it).
    pub include_header: bool,
    /// A file, or stdout.
    pub output: Option<PathBuf>,
    /// Continue an interrupted download to `output`.
    pub resume: bool,
    /// Pieces in flight at once.
    pub parallel: usize,
    /// Show a progress bar.
    pub progress: bool,
}

/// What a download did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Records written by this run.
    pub records: u64,
    /// Bytes written by this run.
    pub bytes: u64,
    /// Requests answered with data (after splits).
    pub pieces: u64,
}

/// The state kept beside an output file while it is being written (`FILE.hapi-part`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct State {
    /// The request this file is the answer to.
    request: Value,
    /// Bytes of the file that are final.
    offset: u64,
    /// Records before this time are in those bytes.
    next: Nanos,
    /// csv/binary: the header was written; json: the part before the records was.
    header_done: bool,
    /// The first piece's header (json: its part before the records) and json tail,
    /// for the end of an answer without records.
    first_header: Option<String>,
    tail: Option<String>,
}

/// The sidecar of `out`.
pub fn state_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".hapi-part");
    PathBuf::from(s)
}

/// The pieces [a, b) of [from, to) no longer than `len`.
pub fn plan(from: Nanos, to: Nanos, len: Option<Nanos>) -> Vec<(Nanos, Nanos)> {
    let mut out = Vec::new();
    let mut a = from;
    while a < to {
        let b = match len {
            Some(l) if l > 0 => a.saturating_add(l).min(to),
            _ => to,
        };
        out.push((a, b));
        a = b;
    }
    out
}

/// Where the bytes go.
enum Sink {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    /// A file that is not a regular file (a device, a pipe): no state, nothing to resume.
    Plain(std::io::BufWriter<std::fs::File>),
    File {
        file: std::io::BufWriter<std::fs::File>,
        state: PathBuf,
    },
}

impl Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout(w) => w.write_all(b),
            Sink::Plain(w) => w.write_all(b),
            Sink::File { file, .. } => file.write_all(b),
        }
    }

    /// Makes what was written final: on disk, then the state that says so.
    fn commit(&mut self, st: &State) -> std::io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::Plain(w) => w.flush(),
            Sink::File { file, state } => {
                file.flush()?;
                file.get_ref().sync_data()?;
                let tmp = state.with_extension("hapi-part.tmp");
                std::fs::write(&tmp, serde_json::to_vec(st).unwrap_or_default())?;
                std::fs::rename(&tmp, state)
            }
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(mut w) => w.flush(),
            Sink::Plain(mut w) => w.flush(),
            Sink::File { mut file, state } => {
                file.flush()?;
                file.get_ref().sync_all()?;
                std::fs::remove_file(&state)
                    .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            }
        }
    }
}

fn io_err(what: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io(format!("{}: {e}", what.display()))
}

/// Runs `hapi data`.
pub async fn data(client: &Client, args: &DataArgs, log: Log) -> Result<Summary> {
    let parse = |s: &str, which: &str| {
        hapi_core::time::parse(s)
            .map_err(|e| Error::Usage(format!("--{which} {s:?} is not a HAPI time: {e}")))
    };
    let (t0, t1) = (parse(&args.start, "start")?, parse(&args.stop, "stop")?);
    if t1 <= t0 {
        return Err(Error::Usage("--stop must be after --start".into()));
    }
    let params = args.parameters.as_deref().filter(|p| !p.is_empty());
    let (info, _) = client.json("info", &[("dataset", Some(&args.dataset)), ("parameters", params)]).await?;
    let layout = Layout::of_info(&info)?;
    let len = match info.get("maxRequestDuration").and_then(Value::as_str) {
        Some(d) => Some(hapi_core::duration::parse(d).filter(|&n| n > 0).ok_or_else(|| {
            Error::Response(format!("/info: maxRequestDuration {d:?} is not an ISO 8601 duration"))
        })?),
        None => None,
    };
    let request = serde_json::json!({
        "server": client.server, "dataset": args.dataset, "parameters": params,
        "start": t0, "stop": t1, "format": args.format.as_str(), "include_header": args.include_header,
    });
    let (mut sink, mut st) = open_sink(args, request)?;
    let span = (t1 - t0) as u64;
    let bar = progress_bar(args.progress, span);
    let started = Instant::now();
    let pieces = plan(st.next, t1, len);
    log.say(format_args!(
        "{} piece(s) of at most {} from {}",
        pieces.len(),
        len.map_or("the whole range".to_owned(), hapi_core::duration::format),
        fmt_time(st.next)
    ));
    let mut results = futures::stream::iter(pieces)
        .map(|(a, b)| fetch_piece(client, args, &layout, a, b, log))
        .buffered(args.parallel.max(1));
    let mut sum = Summary::default();
    let base = st.offset;
    let want_header = args.include_header || args.format == Format::Json;
    while let Some(done) = results.next().await {
        let (b, parts) = match done {
            Ok(v) => v,
            Err(e) => {
                bar.abandon();
                return Err(interrupted(e, args, &sink));
            }
        };
        for c in parts {
            sum.pieces += 1;
            let mut out: Vec<&[u8]> = Vec::new();
            if c.records > 0 {
                match (args.format, st.header_done) {
                    (Format::Json, true) => out.extend([&b","[..], &c.data[..]]),
                    (Format::Json, false) => out.extend([&c.header[..], &c.data[..]]),
                    (_, false) if want_header => out.extend([&c.header[..], &c.data[..]]),
                    _ => out.push(&c.data[..]),
                }
                st.header_done |= want_header;
            }
            for b in &out {
                sink.write(b).map_err(|e| Error::Io(format!("writing the output: {e}")))?;
                sum.bytes += b.len() as u64;
            }
            sum.records += c.records;
            if st.first_header.is_none() {
                st.first_header = Some(String::from_utf8_lossy(&c.header).into_owned());
                st.tail = Some(String::from_utf8_lossy(&c.tail).into_owned());
            }
            // Written: the body's buffer takes the next piece.
            let Checked { header, data, tail, body, .. } = c;
            drop((header, data, tail));
            client.http.recycle(body);
        }
        st.next = b;
        st.offset = base + sum.bytes;
        tokio::task::block_in_place(|| sink.commit(&st))
            .map_err(|e| Error::Io(format!("writing the output: {e}")))?;
        bar.set_position((b - t0) as u64);
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{} records, {:.1} MB, {:.1} MB/s",
            sum.records,
            sum.bytes as f64 / 1e6,
            sum.bytes as f64 / 1e6 / secs
        ));
    }
    // The end: a header nobody wrote yet (no records at all), the json closing.
    let mut end: Vec<u8> = Vec::new();
    if want_header && !st.header_done {
        end.extend_from_slice(st.first_header.as_deref().unwrap_or_default().as_bytes());
    }
    if args.format == Format::Json {
        end.extend_from_slice(st.tail.as_deref().unwrap_or_default().as_bytes());
    }
    sink.write(&end).map_err(|e| Error::Io(format!("writing the output: {e}")))?;
    sum.bytes += end.len() as u64;
    tokio::task::block_in_place(|| sink.finish())
        .map_err(|e| Error::Io(format!("writing the output: {e}")))?;
    // The last frame stays on the terminal as the summary (records, size, rate); a
    // cleared bar left the user with nothing, and its last update could be one that
    // the draw rate limit skipped.
    bar.finish();
    Ok(sum)
}

/// The output and the state to continue from: a fresh file (or stdout), or with
/// `--resume` the file cut back to its last final byte.
fn open_sink(args: &DataArgs, request: Value) -> Result<(Sink, State)> {
    let fresh = |request: Value| State {
        request,
        offset: 0,
        next: hapi_core::time::parse(&args.start).unwrap_or_default(),
        header_done: false,
        first_header: None,
        tail: None,
    };
    let Some(out) = &args.output else {
        if args.resume {
            return Err(Error::Usage("--resume needs an output file (-o FILE)".into()));
        }
        return Ok((
            Sink::Stdout(std::io::BufWriter::with_capacity(1 << 20, std::io::stdout())),
            fresh(request),
        ));
    };
    let state = state_path(out);
    let err = io_err(out);
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file()) {
        if args.resume {
            return Err(Error::Usage(format!("{} is not a regular file: nothing to resume", out.display())));
        }
        let f = std::fs::OpenOptions::new().write(true).open(out).map_err(&err)?;
        return Ok((Sink::Plain(std::io::BufWriter::with_capacity(1 << 20, f)), fresh(request)));
    }
    if args.resume {
        match std::fs::read(&state) {
            Ok(bytes) => {
                let st: State = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::Usage(format!("{}: not a state file of hapi data ({e})", state.display()))
                })?;
                if st.request != request {
                    return Err(Error::Usage(format!(
                        "{} belongs to another request ({}); remove it or run without --resume",
                        state.display(),
                        st.request
                    )));
                }
                let mut f = std::fs::OpenOptions::new().write(true).open(out).map_err(&err)?;
                // Bytes past the last state were written but not confirmed: they come again.
                f.set_len(st.offset).map_err(&err)?;
                f.seek(std::io::SeekFrom::End(0)).map_err(&err)?;
                let sink = Sink::File { file: std::io::BufWriter::with_capacity(1 << 20, f), state };
                return Ok((sink, st));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if out.exists() {
                    return Err(Error::Usage(format!(
                        "nothing to resume: {} has no {} beside it (the download finished, or it is not from hapi data)",
                        out.display(),
                        state.display()
                    )));
                }
            }
            Err(e) => return Err(io_err(&state)(e)),
        }
    }
    let f = std::fs::File::create(out).map_err(&err)?;
    let st = fresh(request);
    let mut sink = Sink::File { file: std::io::BufWriter::with_capacity(1 << 20, f), state };
    sink.commit(&st).map_err(&err)?;
    Ok((sink, st))
}

/// An error in the middle of a download, with what is left to do.
fn interrupted(e: Error, args: &DataArgs, sink: &Sink) -> Error {
    let note = match (sink, &args.output) {
        (Sink::File { .. }, Some(out)) => {
            format!(" ({} is incomplete: run the same command with --resume to continue)", out.display())
        }
        _ => " (the output is incomplete)".to_owned(),
    };
    match e {
        Error::Hapi { code, message } => Error::Hapi { code, message: format!("{message}{note}") },
        Error::Token(m) => Error::Token(format!("{m}{note}")),
        Error::Network(m) => Error::Network(format!("{m}{note}")),
        Error::Response(m) => Error::Response(format!("{m}{note}")),
        Error::Usage(m) => Error::Usage(format!("{m}{note}")),
        Error::Io(m) => Error::Io(format!("{m}{note}")),
    }
}

fn progress_bar(show: bool, span: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(span);
    let style = indicatif::ProgressStyle::with_template("{wide_bar} {percent:>3}% {msg} ETA {eta}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// One planned piece: its end, and the answers it took (more than one when the server
/// refused it with 1408 and it was halved, in time order).
async fn fetch_piece(
    client: &Client,
    args: &DataArgs,
    layout: &Layout,
    a: Nanos,
    b: Nanos,
    log: Log,
) -> Result<(Nanos, Vec<Checked>)> {
    let mut todo = vec![(a, b)];
    let mut out = Vec::new();
    while let Some((x, y)) = todo.pop() {
        match fetch_one(client, args, layout, x, y).await {
            Ok(c) => out.push(c),
            Err(Error::Hapi { code: 1408, message }) if y - x >= 2 => {
                let mid = x + (y - x) / 2;
                log.say(format_args!(
                    "[{}, {}) refused with 1408, halved: {message}",
                    fmt_time(x),
                    fmt_time(y)
                ));
                todo.push((mid, y));
                todo.push((x, mid));
            }
            Err(e) => return Err(e),
        }
    }
    Ok((b, out))
}

async fn fetch_one(client: &Client, args: &DataArgs, layout: &Layout, a: Nanos, b: Nanos) -> Result<Checked> {
    let (start, stop) = (fmt_time(a), fmt_time(b));
    let params = args.parameters.as_deref().filter(|p| !p.is_empty());
    let url = client.url(
        "data",
        &[
            ("dataset", Some(&args.dataset)),
            ("parameters", params),
            ("start", Some(&start)),
            ("stop", Some(&stop)),
            ("format", Some(args.format.as_str())),
            ("include", Some("header")),
        ],
    );
    let what = format!("{}/data [{start}, {stop})", client.server);
    let fmt = args.format;
    // A piece that arrives whole but malformed is not retried: a server that lies once lies again.
    let a_ = client.get(&url, fmt.media_type(), &what).await?;
    if a_.status != 200 {
        return Err(Client::status_error(&a_, &what));
    }
    let ctype = a_.header("content-type").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if ctype != fmt.media_type() {
        return Err(Error::Response(format!(
            "{what}: a {} answer where {} ({}) was asked",
            if ctype.is_empty() { "untyped" } else { &ctype },
            fmt.as_str(),
            fmt.media_type()
        )));
    }
    let enc = a_.header("content-encoding").trim().to_ascii_lowercase();
    if !enc.is_empty() && enc != "identity" {
        return Err(Error::Response(format!("{what}: an answer in {enc} encoding, which was not asked")));
    }
    let layout = layout.clone();
    let body = a_.body;
    // Checking is CPU work; off the runtime threads that move the other pieces' bytes.
    tokio::task::spawn_blocking(move || check::piece(body, fmt, &layout, a, b, &what))
        .await
        .map_err(|e| Error::Io(format!("a check failed to run: {e}")))?
}

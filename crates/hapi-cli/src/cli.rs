//! The command line of `hapi`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::check::Format;
use crate::client::Client;
use crate::data::{DataArgs, data};
use crate::error::{Error, Result};
use crate::http::{Http, RetryPolicy};
use crate::log::Log;
use crate::profile::{self, Profile};
use crate::token::{Credentials, Endpoint, Tokens};

/// Any range of any dataset from a HAPI server, with the access token handled for you.
///
/// Exit status: 0 done, 1 local I/O, 2 usage, 3 HAPI error (the code and message are
/// printed), 4 token or access failure (the OAuth2 error), 5 network failure after
/// every retry, 6 a malformed answer.
#[derive(Debug, Parser)]
#[command(name = "hapi", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command. Flags beat the environment, which beats the profile.
#[derive(Debug, Args)]
pub struct Global {
    /// The HAPI base URL, e.g. https://hapi.example.org/hapi
    #[arg(long, global = true, env = "HAPI_SERVER")]
    pub server: Option<String>,
    /// OAuth2 client id (machine-to-machine credentials).
    #[arg(long, global = true, env = "HAPI_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The client secret. Prefer HAPI_CLIENT_SECRET or `hapi login`: a command line is
    /// visible to every user of the machine while it runs and stays in shell history.
    #[arg(long, global = true, env = "HAPI_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// The token endpoint (default: from the server's OpenID discovery document).
    #[arg(long, global = true, env = "HAPI_TOKEN_URL")]
    pub token_url: Option<String>,
    /// An OpenID provider whose discovery document names the token endpoint.
    #[arg(long, global = true, env = "HAPI_ISSUER")]
    pub issuer: Option<String>,
    /// The scope asked for [default: swe_hapiserver].
    #[arg(long, global = true, env = "HAPI_SCOPE")]
    pub scope: Option<String>,
    /// The profile of the profile file to use.
    #[arg(long, global = true, env = "HAPI_PROFILE", default_value = "default")]
    pub profile: String,
    /// The profile file [default: $HAPI_CONFIG, else ~/.config/hapi/profiles.toml].
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Retries of a failed request (connection errors, cut bodies, 429, 5xx).
    #[arg(long, global = true, default_value_t = 5)]
    pub retries: u32,
    /// No progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Tell on stderr what happens besides the output (tokens, retries, splits).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prints the token response, or with -s only the access token.
    Token {
        /// Only the access token.
        #[arg(short, long)]
        silent: bool,
    },
    /// Prints /catalog.
    Catalog,
    /// Prints /info of a dataset.
    Info {
        dataset: String,
        /// Only these parameters (a,b).
        #[arg(long)]
        parameters: Option<String>,
    },
    /// Writes the records of [start, stop), fetched in pieces the server accepts.
    Data(DataCmd),
    /// Checks credentials and saves them with the server in the profile file (mode
    /// 0600). The secret comes from HAPI_CLIENT_SECRET, --client-secret or one line of stdin.
    Login,
}

#[derive(Debug, Args)]
pub struct DataCmd {
    dataset: String,
    /// The first time (HAPI restricted ISO 8601).
    #[arg(long)]
    start: String,
    /// The end, exclusive.
    #[arg(long)]
    stop: String,
    /// Only these parameters (a,b; the time is always included).
    #[arg(long)]
    parameters: Option<String>,
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Write the header (json always has it).
    #[arg(long)]
    include_header: bool,
    /// The output file (default: stdout).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Continue an interrupted download to --output without fetching its finished pieces again.
    #[arg(long, requires = "output")]
    resume: bool,
    /// Pieces in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    parallel: u16,
}

/// What the flags, the environment and the profile say, merged.
struct Settings {
    server: String,
    creds: Option<Credentials>,
    endpoint: Endpoint,
    token_url: Option<String>,
    issuer: Option<String>,
    scope: Option<String>,
}

fn settings(g: &Global, login: bool) -> Result<Settings> {
    let path = g.config.clone().or_else(profile::default_path);
    let p = match (&path, login) {
        (Some(path), false) => profile::read(path, &g.profile)?.unwrap_or_default(),
        _ => Profile::default(),
    };
    let pick =
        |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone()).filter(|s| !s.is_empty());
    let server = pick(&g.server, &p.server).ok_or_else(|| {
        Error::Usage("no server: give --server URL or set HAPI_SERVER (or run `hapi login`)".into())
    })?;
    let server = server.trim_end_matches('/').to_owned();
    let (token_url, issuer, scope) =
        (pick(&g.token_url, &p.token_url), pick(&g.issuer, &p.issuer), pick(&g.scope, &p.scope));
    let id = pick(&g.client_id, &p.client_id);
    let secret = pick(&g.client_secret, &p.client_secret);
    let creds = match (id, secret) {
        (Some(client_id), Some(client_secret)) => Some(Credentials {
            client_id,
            client_secret,
            scope: scope.clone().unwrap_or_else(|| "swe_hapiserver".to_owned()),
        }),
        (Some(_), None) if !login => {
            return Err(Error::Usage(
                "a client id without a secret: set HAPI_CLIENT_SECRET (or run `hapi login`)".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::Usage("a client secret without a client id: give --client-id".into()));
        }
        _ => None,
    };
    let endpoint = match (&token_url, &issuer) {
        (Some(u), _) => Endpoint::Url(u.clone()),
        (None, Some(i)) => {
            Endpoint::Discover(format!("{}/.well-known/openid-configuration", i.trim_end_matches('/')))
        }
        // The built-in issuer publishes discovery beside /hapi, under the same prefix.
        (None, None) => Endpoint::Discover(format!(
            "{}/.well-known/openid-configuration",
            server.strip_suffix("/hapi").unwrap_or(&server)
        )),
    };
    Ok(Settings { server, creds, endpoint, token_url, issuer, scope })
}

/// Runs the command; the error is what `main` prints before exiting with its code.
pub async fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    let log = Log { verbose: g.verbose };
    let policy = RetryPolicy { retries: g.retries, ..RetryPolicy::default() };
    let http = Http::new(policy, log)?;
    let login = matches!(cli.command, Command::Login);
    let mut s = settings(g, login)?;
    if login && s.creds.is_none() {
        s.creds = Some(login_creds(g, &s)?);
    }
    let tokens = s.creds.clone().map(|c| Tokens::new(c, s.endpoint.clone(), http.clone(), log));
    let client = Client { server: s.server.clone(), http, tokens };
    let mut out = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock<'_>, b: &[u8]| -> Result<()> {
        out.write_all(b)
            .and_then(|()| if b.ends_with(b"\n") { Ok(()) } else { out.write_all(b"\n") })
            .and_then(|()| out.flush())
            .map_err(|e| Error::Io(format!("writing stdout: {e}")))
    };
    match &cli.command {
        Command::Token { silent } => {
            let Some(t) = &client.tokens else {
                return Err(Error::Usage(
                    "no credentials: give --client-id and set HAPI_CLIENT_SECRET".into(),
                ));
            };
            let (doc, _) = t.request().await?;
            let text = if *silent {
                doc["access_token"].as_str().unwrap_or_default().to_owned()
            } else {
                doc.to_string()
            };
            print(&mut out, text.as_bytes())
        }
        Command::Catalog => print(&mut out, &client.json("catalog", &[]).await?.1),
        Command::Info { dataset, parameters } => {
            let q = [("dataset", Some(dataset.as_str())), ("parameters", parameters.as_deref())];
            print(&mut out, &client.json("info", &q).await?.1)
        }
        Command::Data(d) => {
            drop(out);
            let args = DataArgs {
                dataset: d.dataset.clone(),
                parameters: d.parameters.clone(),
                start: d.start.clone(),
                stop: d.stop.clone(),
                format: d.format,
                include_header: d.include_header,
                output: d.output.clone(),
                resume: d.resume,
                parallel: usize::from(d.parallel),
                progress: !g.quiet && std::io::stdout().is_terminal(),
            };
            let sum = data(&client, &args, log).await?;
            log.say(format_args!(
                "{} records, {} bytes in {} piece(s); {} token(s) fetched",
                sum.records,
                sum.bytes,
                sum.pieces,
                client.tokens.as_ref().map_or(0, Tokens::fetches)
            ));
            Ok(())
        }
        Command::Login => {
            let t = client.tokens.as_ref().ok_or_else(|| Error::Usage("no credentials".into()))?;
            // A profile is saved only once its credentials got a token.
            t.request().await?;
            let path = g.config.clone().or_else(profile::default_path).ok_or_else(|| {
                Error::Usage("no place for the profile file: set HAPI_CONFIG or HOME".into())
            })?;
            let c = s.creds.as_ref().expect("login has credentials");
            let p = Profile {
                server: Some(s.server.clone()),
                client_id: Some(c.client_id.clone()),
                client_secret: Some(c.client_secret.clone()),
                token_url: s.token_url.clone(),
                issuer: s.issuer.clone(),
                scope: s.scope.clone(),
            };
            profile::write(&path, &g.profile, &p)?;
            eprintln!("hapi: profile {:?} (client {}) saved to {}", g.profile, c.client_id, path.display());
            Ok(())
        }
    }
}

/// `hapi login` without a secret in the flags or environment: one line of stdin.
fn login_creds(g: &Global, s: &Settings) -> Result<Credentials> {
    let client_id = g
        .client_id
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Error::Usage("hapi login needs --client-id (or HAPI_CLIENT_ID)".into()))?;
    let term = console::Term::stderr();
    let client_secret = if std::io::stdin().is_terminal() && term.is_term() {
        // Typed at a terminal: not echoed (console switches ECHO off for the line).
        term.write_str(&format!("client secret for {client_id} (not shown): "))
            .and_then(|()| term.read_secure_line())
            .map_err(|e| Error::Io(format!("reading the secret: {e}")))?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| Error::Io(format!("reading the secret: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if client_secret.is_empty() {
        return Err(Error::Usage("no client secret on stdin".into()));
    }
    let scope = s.scope.clone().unwrap_or_else(|| "swe_hapiserver".to_owned());
    Ok(Credentials { client_id, client_secret, scope })
}

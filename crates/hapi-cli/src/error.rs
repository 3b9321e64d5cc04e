//! What stopped a command, and the exit status a script sees for it.

/// An error of the `hapi` command. Each kind has its own exit status (see [`Error::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a HAPI error status (14xx, 15xx).
    #[error("{}", hapi_message(*.code, .message))]
    Hapi {
        /// The HAPI status code.
        code: i64,
        /// The server's message.
        message: String,
    },
    /// No usable access token: the token endpoint's OAuth2 error, or the server refused the token.
    #[error("{0}")]
    Token(String),
    /// The server could not be reached, or no answer came through whole after every retry.
    #[error("{0}")]
    Network(String),
    /// An answer that cannot be right (malformed, cut, contradicting /info).
    #[error("{0}")]
    Response(String),
    /// The command line or the local set-up (profile, output file) is wrong.
    #[error("{0}")]
    Usage(String),
    /// Writing the output or the state file failed.
    #[error("{0}")]
    Io(String),
}

fn hapi_message(code: i64, message: &str) -> String {
    // This server's messages already start "HAPI error 1408: ..."; others give only the text.
    if message.starts_with(&format!("HAPI error {code}")) {
        message.to_owned()
    } else {
        format!("HAPI error {code}: {message}")
    }
}

impl Error {
    /// 3 for a HAPI error, 4 for a token failure, 5 for a network failure, 6 for a
    /// malformed answer, 2 for a usage error (as clap's own), 1 for local I/O.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io(_) => 1,
            Error::Usage(_) => 2,
            Error::Hapi { .. } => 3,
            Error::Token(_) => 4,
            Error::Network(_) => 5,
            Error::Response(_) => 6,
        }
    }
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// An error and its causes on one line (reqwest's own message names only the outer layer).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

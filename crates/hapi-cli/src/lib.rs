//! The `hapi` command as a library: a HAPI client that handles OAuth2 machine-to-machine
//! tokens and fetches any time range in pieces the server accepts (issue 8, item 3).
//!
//! - [`client`]: one server, GETs with the token (renewed once on 401 `invalid_token`).
//! - [`token`]: the token keeper (discovery, renewal before `expires_in` ends).
//! - [`http`]: retries with backoff and `Retry-After`.
//! - [`data`]: pieces by `maxRequestDuration`, in flight together, written in order;
//!   halved on 1408; `--resume`.
//! - [`check`]: every answer checked against `/info` and its piece.
//! - [`profile`]: the profile file of `hapi login`.

pub mod check;
pub mod cli;
pub mod client;
pub mod data;
pub mod error;
pub mod http;
pub mod log;
pub mod profile;
pub mod token;

pub use error::{Error, Result};

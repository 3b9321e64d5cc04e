//! `hapi` against real servers on 127.0.0.1 (and a fault-injecting proxy in front of them).

mod auth;
mod data;
mod faults;
mod oidc;
mod resume;
mod support;

//! Integration tests of hapi-auth: one binary (ripgrep style). The validator runs
//! against a fake provider on 127.0.0.1:0 with tokens minted in-process; the issuer
//! against a temporary data directory. No test touches the network.

mod introspection;
mod issuer;
mod keys;
mod provider;
mod resilience;
mod validator;

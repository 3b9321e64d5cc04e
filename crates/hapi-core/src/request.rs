//! Request parsing from the raw query string. STUB.

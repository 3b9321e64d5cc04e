//! Integration tests of hapi-cdf: against files written and read back by PyPI cdflib
//! (skipped without the venv), hostile files, and the fuzzer's crash inputs.

mod hostile;
mod reference;
mod regressions;
mod support;
mod v2;

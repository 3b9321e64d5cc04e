//! HAPI csv records into batches (for ingest). STUB.

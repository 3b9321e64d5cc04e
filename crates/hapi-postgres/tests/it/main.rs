//! Integration tests against a throwaway PostgreSQL (hapi-pgtest); they skip with a
//! printed reason when PostgreSQL is not installed.

mod auth;
mod migrations;
mod store;

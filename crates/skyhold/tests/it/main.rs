//! Integration tests: one binary, one module per feature, one harness.
//! Run on SQLite by default; `SKYHOLD_TEST_DB=postgres` runs the same tests
//! on PostgreSQL (`TEST_DATABASE_URL`).

mod harness;

mod actions;
mod audit;

mod api;
mod auth;
mod budgets;
mod cli;
mod expiry;
mod failing_kind;
mod hardening;
mod idle;
mod images;
mod inventory;
mod launches;
mod leases;
mod ledger;
mod matrix;
mod notifications;
mod oidc;
mod ondemand;
mod openapi;
mod pages;
mod pages_access;
mod policies;
mod proxy;
mod quotas;
mod refresh;
mod regions;
mod replicas;
mod reverse_proxy;
mod services;
mod store;
mod sync;
mod views;

//! skyhold: a self-hosted inventory and control panel for shared cloud
//! accounts. `main.rs` is a thin shim over [`cli::main`].

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod serve;
pub mod sync;
pub mod web;

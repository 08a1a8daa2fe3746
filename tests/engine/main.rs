//! End-to-end tests of the engine: temp-dir projects driving the `cegraph` binary.

mod bad_input;
mod binary;
mod cache;
mod cache_guard;
mod cli_contract;
mod hostile_yaml;
mod incremental;
mod injection;
mod project;
mod remote;
mod slurm;
mod verify;

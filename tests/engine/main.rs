//! End-to-end tests of the engine: temp-dir projects driving the `cegraph` binary.

mod bad_input;
mod binary;
mod cache;
mod cache_guard;
mod cache_modes;
mod cli_commands;
mod cli_contract;
mod cli_daily;
mod experiments;
mod hostile_yaml;
mod incremental;
mod injection;
mod integrity;
mod keys;
mod orphans;
mod plots;
mod project;
mod remote;
mod remote_endpoints;
mod remote_trust;
mod slurm;
mod slurm_setups;
mod verify;

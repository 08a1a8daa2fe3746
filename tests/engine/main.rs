//! End-to-end tests of the engine: temp-dir projects driving the `cegraph` binary.

mod bad_input;
mod binary;
mod cache;
mod incremental;
mod integrity;
mod keys;
mod orphans;
mod project;
mod remote;
mod remote_endpoints;
mod remote_trust;
mod slurm;
mod verify;

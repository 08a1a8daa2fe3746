//! End-to-end tests of the engine: temp-dir projects driving the `cegraph` binary.

mod bad_input;
mod binary;
mod cache;
mod incremental;
mod keys;
mod project;
mod remote;
mod slurm;
mod verify;

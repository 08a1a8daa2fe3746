//! cegraph: a content-addressed build system for machine-learning experiments.
//!
//! Data flows one way through the modules:
//! spec → graph → hash → store → exec → stages → analysis → report, with the CLI on top.
//! [`kind`] is the leaf interface that built-in stage kinds implement.

pub mod analysis;
pub mod cli;
pub mod error;
pub mod exec;
pub mod graph;
pub mod hash;
pub mod kind;
pub mod ml;
pub mod remote;
pub mod report;
pub mod rng;
pub mod spec;
pub mod stages;
pub mod store;

//! rhscope: finds the cluster API calls that hang Windows failover-cluster
//! resources, from ETW traces.
//!
//! The pipeline: read ([`etl`]; also [`clusterlog`], `eventlog` for .evtx,
//! [`capture`] for live ETW; [`manifest`] decodes manifest events) -> model
//! ([`model`], [`usage`], [`providers`]) -> correlate ([`analysis`]) ->
//! report. The `rhscope` binary is thin glue over this library.

pub mod analysis;
pub mod capture;
pub mod clusterlog;
pub mod config;
pub mod etl;
#[cfg(feature = "evtx")]
pub mod eventlog;
pub mod manifest;
pub mod model;
pub mod output;
pub mod providers;
#[cfg(feature = "report")]
pub mod report;
pub mod simulate;
pub mod usage;

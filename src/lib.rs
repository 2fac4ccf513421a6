//! rhscope: finds the cluster API calls that hang Windows failover-cluster
//! resources, from ETW traces, cluster.logs and event logs.
//!
//! The pipeline, each part importing only the parts before it:
//! [`read`] (bytes -> events: .etl, cluster.log, .evtx) ->
//! [`source`] (events -> model records, one node's timeline) ->
//! [`model`] (the vocabulary: records, spans, findings) ->
//! [`analysis`] (the rules) -> [`report`] (every printer).
//! [`providers`] says what events mean (definitions, usage table,
//! manifests); [`capture`] feeds live ETW into a source; [`simulate`]
//! writes traces with a known truth. The `rhscope` binary is thin glue.

// Unsafe code only where a mapping or an OS structure needs it, each
// place allowed by name with its reasons beside it.
#![deny(unsafe_code)]

pub mod analysis;
pub mod capture;
pub mod model;
pub mod providers;
pub mod read;
pub mod report;
pub mod simulate;
pub mod source;

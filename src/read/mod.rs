//! Readers: bytes of an input file -> events. Nothing here knows what an
//! event means to rhscope; this part imports nothing outside itself.

pub mod clusterlog;
pub mod etl;
#[cfg(feature = "evtx")]
pub mod evtx;
pub mod symbols;
pub mod text;

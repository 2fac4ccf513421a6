//! Live capture on a cluster node and replay through Windows' own ETW
//! decoder. The Windows calls (ferrisetw) are in `session.rs`, behind the
//! `etw` feature; everything else here (the record adapter, the live rules,
//! the session plan, the event loop, decoder comparison) builds and is
//! tested on any OS with events built in tests.

pub mod compare;
pub mod event;
pub mod live;
pub mod plan;
#[cfg(feature = "etw")]
pub mod session;

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::analysis::{AnalysisError, EventSource, Observed};
use crate::model::Evidence;
use crate::providers::ProviderSet;

pub use event::RawEvent;
pub use live::{Live, LiveFinding};
pub use plan::{CaptureError, SessionPlan};

/// An event through the provider definitions, with live evidence.
pub fn observe(raw: &RawEvent, providers: &ProviderSet) -> Observed {
    let time = raw.time_ns();
    let Ok(ev) = raw.event() else {
        return Observed::Unmapped(time);
    };
    match providers.map(&ev) {
        Some(Ok(mut r)) => {
            r.evidence = Evidence::Live {
                sequence: raw.sequence,
            };
            Observed::Record(r)
        }
        Some(Err(_)) => Observed::Unmapped(time),
        None => Observed::Seen(time),
    }
}

/// Events from a channel (a live session or a replay) as a source for the
/// offline analysis.
pub struct ChannelSource<'p> {
    name: String,
    rx: Receiver<RawEvent>,
    providers: &'p ProviderSet,
}

impl<'p> ChannelSource<'p> {
    pub fn new(name: &str, rx: Receiver<RawEvent>, providers: &'p ProviderSet) -> Self {
        ChannelSource {
            name: name.to_string(),
            rx,
            providers,
        }
    }
}

impl EventSource for ChannelSource<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn next_observed(&mut self) -> Option<Result<Observed, AnalysisError>> {
        let raw = self.rx.recv().ok()?;
        Some(Ok(observe(&raw, self.providers)))
    }
}

/// Counts of a live run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriveCounts {
    pub events: u64,
    pub records: u64,
    pub unmapped: u64,
}

/// The live loop: takes events as they come, lets time pass on the clock
/// while none do, and hands every finding to `report` as soon as a rule
/// fires. Returns when `stop` says so or the channel closes (the session
/// ended); the caller then stops the session and calls it again with a
/// `stop` that never fires to drain what ETW still delivers.
pub fn drive(
    rx: &Receiver<RawEvent>,
    providers: &ProviderSet,
    live: &mut Live<'_>,
    counts: &mut DriveCounts,
    mut stop: impl FnMut() -> bool,
    mut now_ns: impl FnMut() -> i64,
    mut report: impl FnMut(&LiveFinding),
) {
    loop {
        if stop() {
            return;
        }
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(raw) => {
                counts.events += 1;
                let o = observe(&raw, providers);
                match &o {
                    Observed::Record(_) => counts.records += 1,
                    Observed::Unmapped(_) => counts.unmapped += 1,
                    Observed::Seen(_) => {}
                }
                for f in live.push(o) {
                    report(&f);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                for f in live.tick(now_ns()) {
                    report(&f);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

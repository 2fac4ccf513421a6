//! Live capture on a cluster node and replay through Windows' own ETW
//! decoder. The Windows calls (ferrisetw) are in `session.rs`, behind the
//! `etw` feature; everything else here (the record adapter, the live rules,
//! the session plan, the event loop, decoder comparison) builds and is
//! tested on any OS with events built in tests.

pub mod compare;
pub mod event;
pub mod plan;
// Reads EVENT_RECORDs ferrisetw hands to its callback (see raw_event).
#[cfg(feature = "etw")]
#[allow(unsafe_code)]
pub mod session;

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::analysis::live::{Live, LiveFinding};
use crate::model::Evidence;
use crate::providers::ProviderSet;
use crate::source::{EventSource, Observed, SourceError};

pub use event::RawEvent;
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
            Observed::Record(Box::new(r))
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

    fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
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

/// The .etl inputs of a timeline replayed by Windows' own reader
/// (ferrisetw's FileTrace), as sources for the offline analysis.
#[cfg(feature = "etw")]
pub fn replay_sources<'p>(
    timeline: &crate::source::Timeline,
    providers: &'p ProviderSet,
) -> Result<Vec<Box<dyn EventSource + 'p>>, CaptureError> {
    let mut sources: Vec<Box<dyn EventSource + 'p>> = Vec::new();
    for input in &timeline.inputs {
        let crate::source::Input::Etl(trace) = input else {
            return Err(CaptureError::NotEtl {
                path: input.path().to_path_buf(),
            });
        };
        let rx = session::replay(trace.path())?;
        sources.push(Box::new(ChannelSource::new(
            &trace.path().display().to_string(),
            rx,
            providers,
        )));
    }
    Ok(sources)
}

/// Without Windows' reader there is nothing to replay with.
#[cfg(not(feature = "etw"))]
pub fn replay_sources<'p>(
    _: &crate::source::Timeline,
    _: &'p ProviderSet,
) -> Result<Vec<Box<dyn EventSource + 'p>>, CaptureError> {
    Err(CaptureError::Unsupported)
}

/// A live capture from start to stop: starts the sessions the plan says
/// (warning through `warn` of providers not registered), feeds every event
/// to the live rules (`report` hears each finding as it fires) until `stop`
/// says so, stops the sessions, drains what ETW still held, and returns
/// the full analysis of what was seen.
#[cfg(feature = "etw")]
pub fn run_live(
    plan: &SessionPlan,
    output: &std::path::Path,
    force: bool,
    (providers, table, cfg): (
        &ProviderSet,
        &crate::providers::usage::UsageTable,
        &crate::analysis::Config,
    ),
    mut stop: impl FnMut() -> bool,
    mut warn: impl FnMut(&CaptureError),
    mut report: impl FnMut(&LiveFinding),
) -> Result<(crate::analysis::Analysis, DriveCounts), CaptureError> {
    let manifest_guids: Vec<_> = providers
        .definitions()
        .iter()
        .filter(|d| d.header.decoder == crate::providers::Decoder::Manifest)
        .map(|d| d.guid)
        .collect();
    for p in session::unregistered(plan, &manifest_guids) {
        warn(&CaptureError::ProviderNotRegistered {
            name: p.name,
            guid: p.guid,
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    // On any error below, dropping `capture` stops the sessions.
    let capture = session::Capture::start(plan, output, force, tx)?;
    let mut live = Live::new(table, cfg.clone());
    let mut counts = DriveCounts::default();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64)
    };
    drive(
        &rx,
        providers,
        &mut live,
        &mut counts,
        &mut stop,
        now,
        &mut report,
    );
    capture.stop()?;
    // What ETW still held, until the sessions' callbacks are gone.
    drive(
        &rx,
        providers,
        &mut live,
        &mut counts,
        || false,
        now,
        &mut report,
    );
    Ok((live.finish(&output.display().to_string()), counts))
}

/// Windows' own decodings (TDH) of every event of the trace at `path`,
/// asked for the fields the native reader named in `native`.
#[cfg(feature = "etw")]
pub fn windows_events(
    path: &std::path::Path,
    native: &[compare::DecodedEvent],
) -> Result<Vec<compare::DecodedEvent>, CaptureError> {
    let mut names: std::collections::HashMap<_, Vec<String>> = Default::default();
    for e in native {
        names
            .entry((e.provider, e.id, e.version))
            .or_insert_with(|| e.fields.iter().map(|(k, _)| k.clone()).collect());
    }
    session::windows_decode(path, names)
}

/// Without Windows there is no second decoder.
#[cfg(not(feature = "etw"))]
pub fn windows_events(
    _: &std::path::Path,
    _: &[compare::DecodedEvent],
) -> Result<Vec<compare::DecodedEvent>, CaptureError> {
    Err(CaptureError::Unsupported)
}

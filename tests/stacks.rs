//! Stacks and images of real traces, against the figures the shared
//! reference measured independently (`kernel-stacks.md`).

mod common;

use std::collections::HashMap;

use rhscope::read::etl::kernel::{self, KernelEvent};
use rhscope::read::etl::stacks;
use rhscope::read::etl::stackwalk::StackRecord;
use rhscope::read::etl::Trace;

fn net() -> Trace {
    Trace::open(common::data("net.4.5.2.x86.etl")).unwrap()
}

/// net.4.5.2.x86.etl (a 64-bit kernel trace of a 32-bit .NET program,
/// compressed buffers): 229 whole stacks and 12,172 references to cached
/// stacks (3,640 kernel, 8,532 user), 1,134 keys defined by 4,073
/// definitions, every reference resolved. Each reference takes the frames
/// of the first later definition of its key: 296,507 frames, 87.8% of
/// them inside an image loaded in their process.
#[test]
fn the_net_fixture_has_the_reference_counts() {
    let s = stacks::collect(&net(), |_, _| true).unwrap();
    let c = s.counts;
    assert_eq!((c.plain, c.key_references), (229, 12_172));
    assert_eq!((c.key_definitions, c.distinct_keys), (3_049 + 1_024, 1_134));
    assert_eq!(c.unresolved, 0);
    assert_eq!((c.frames, c.frames_in_images), (296_507, 260_310));
    // Every reference's event got its stack (kernel and user halves of
    // one event are one stack).
    assert_eq!(s.len(), 9_666);
    assert!(!s.images.is_empty());
}

/// The reference's own frame figures (315,917 frames, 78.6% inside an
/// image) come from resolving every reference to the last definition of
/// its key anywhere in the file, not to the first later one as its text
/// (and PerfView) says; reproduced here from the same decoded records, so
/// the decoders agree with the independent parser and the difference is
/// the binding rule alone.
#[test]
fn binding_each_key_to_its_last_definition_gives_the_reference_figure() {
    let trace = net();
    let mut defs: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut refs: Vec<(u64, u32)> = Vec::new();
    let mut plain: Vec<(u32, Vec<u64>)> = Vec::new();
    let mut events = trace.events();
    while let Some(ev) = events.next_event() {
        let ev = ev.unwrap();
        if let Some(Ok(KernelEvent::StackWalk(r))) = kernel::decode(&ev) {
            match r {
                StackRecord::Stack {
                    process, frames, ..
                } => plain.push((process, frames)),
                StackRecord::KeyReference { key, process, .. } => refs.push((key, process)),
                StackRecord::KeyDefinition { key, frames, .. } => {
                    defs.insert(key, frames);
                }
            }
        }
    }
    let images = stacks::collect(&trace, |_, _| false).unwrap().images;
    let (mut frames, mut inside) = (0u64, 0u64);
    let stacks = refs
        .iter()
        .map(|(k, p)| (*p, &defs[k]))
        .chain(plain.iter().map(|(p, f)| (*p, f)));
    for (p, f) in stacks {
        frames += f.len() as u64;
        inside += f
            .iter()
            .filter(|&&a| images.find(p, a, 8).is_some())
            .count() as u64;
    }
    assert_eq!(frames, 315_917);
    assert_eq!(
        (inside as f64 / frames as f64 * 1000.0).round() / 10.0,
        78.6
    );
}

use rhscope::analysis::{analyze_sources, Config};
use rhscope::providers::usage::UsageTable;
use rhscope::providers::ProviderSet;
use rhscope::read::symbols::SymbolFiles;
use rhscope::simulate::{symbols_path, write_files, FileOptions, Scenario};
use rhscope::source::stacks::StackContext;
use rhscope::source::{EtlSource, EventSource};

/// Analyses an .etl with its stacks read through the symbols in `dir`.
fn analyse_with_symbols(
    etl: &std::path::Path,
    dir: &std::path::Path,
) -> rhscope::analysis::Analysis {
    let trace = Trace::open(etl).unwrap();
    let providers = ProviderSet::embedded();
    let symbols = SymbolFiles::scan(&[dir.to_path_buf()]).unwrap();
    let analyse = |mappers: usize| {
        let stacks =
            StackContext::read(&trace, &symbols, |_, n| n.is_none_or(|n| n == "rhs.exe")).unwrap();
        let mut src = EtlSource::with_mappers(&trace, &providers, mappers).with_stacks(stacks);
        analyze_sources(
            vec![&mut src as &mut dyn EventSource],
            &UsageTable::embedded(),
            &Config::default(),
            true,
        )
        .unwrap()
    };
    // Events mapped on threads of their own get their stacks as they come
    // back, in order: the same findings and calls as mapped in turn.
    let a = analyse(0);
    let threaded = analyse(2);
    assert_eq!(threaded.findings, a.findings);
    assert_eq!(threaded.calls.len(), a.calls.len());
    a
}

/// `simulate --uninstrumented`: a kernel trace with context-switch stacks
/// and the images' symbols. From the stacks alone rhscope finds exactly
/// the calls the simulator planted where a stack can show them: a usage
/// table function the DLL blocked in, named with the entry point RHS's
/// frame names, on an entry-point thread or a worker.
#[test]
fn uninstrumented_simulations_find_their_truth_from_stacks() {
    let dir = common::temp_dir("stack-truth");
    for s in Scenario::ALL {
        let etl = dir.join(format!("{}.etl", s.name()));
        let truth = write_files(
            s,
            FileOptions {
                seed: 5,
                scale: 20_000,
                fixed: Vec::new(),
                etl: &etl,
                cluster_log: None,
                uninstrumented: true,
            },
        )
        .unwrap();
        let a = analyse_with_symbols(&etl, &symbols_path(&etl));
        let mut found: Vec<_> = a.findings.iter().map(|r| r.finding.clone()).collect();
        found.sort();
        assert_eq!(found, truth.findings, "{}", s.name());
        // Every inferred finding carries its stack as evidence.
        for r in &a.findings {
            assert!(
                r.stack
                    .iter()
                    .any(|f| f.starts_with("clusapi.dll!") || f.starts_with("resutils.dll!")),
                "{:?}",
                r.stack
            );
            assert_eq!(r.dll.as_deref(), Some("contosoapp.dll"));
            // Where it waited: in the cluster library, never the system's
            // wait functions.
            if let Some(b) = r.blocking.as_ref().filter(|b| b.waiting_ns > Some(0)) {
                let site = &b
                    .waited_in
                    .first()
                    .expect("a waiting call has its place")
                    .site;
                assert!(
                    site.starts_with("clusapi.dll!") || site.starts_with("resutils.dll!"),
                    "{site}"
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same node, instrumented and not: where the stacks show a call, it is
/// the call the DLL's own events name (entry point, API, thread).
#[test]
fn stacks_and_instrumentation_agree() {
    use rhscope::simulate::{simulate_with, Options};
    let run = |uninstrumented: bool| {
        let opts = Options {
            seed: 2,
            scale: 0,
            uninstrumented,
            ..Options::default()
        };
        simulate_with(Scenario::Mixed, opts, std::io::Cursor::new(Vec::new()))
            .unwrap()
            .1
    };
    let (with, without) = (run(false), run(true));
    let key = |f: &rhscope::model::Finding| (f.rule, f.entry_point, f.api.clone(), f.tid, f.usage);
    let shown: Vec<_> = without.findings.iter().map(key).collect();
    assert!(!shown.is_empty());
    for k in &shown {
        assert!(with.findings.iter().any(|f| key(f) == *k), "{k:?}");
    }
    // What the stacks cannot show is said: the control codes (a stack
    // names ClusterResourceControl only), and with no log, the deadlock,
    // the hang, the pending timeout and the restart.
    use rhscope::model::Rule;
    for f in &without.not_shown {
        match f.rule {
            Rule::ApiMisuse => {
                assert_eq!(f.api.as_deref(), Some("CLUSCTL_RESOURCE_GET_CLASS_INFO"))
            }
            r => assert!(
                matches!(
                    r,
                    Rule::Hang | Rule::DeadlockTimeout | Rule::PendingTimeout | Rule::RhsRestart
                ),
                "{f:?}"
            ),
        }
    }
}

/// PE files copied from a node: their exports name the functions, found by
/// the image's PDB identity, its PE timestamp and size, or its name.
#[test]
fn exports_of_pe_files_name_functions() {
    use rhscope::read::etl::Guid;
    use rhscope::read::symbols::Identity;
    let files = SymbolFiles::scan(&[common::data("pe")]).unwrap();
    assert_eq!(files.len(), 2, "{:?}", files.unreadable);
    let by_pdb = Identity {
        debug: Some((
            "4c1e3a52-9b7d-4e2f-a1c3-5d6e7f809a1b"
                .parse::<Guid>()
                .unwrap(),
            2,
        )),
        ..Identity::default()
    };
    let r = files.resolve(&by_pdb, 0x1015).unwrap();
    assert_eq!(
        (r.function.as_str(), r.offset),
        ("OnlineClusterResource", 5)
    );
    let by_code = Identity {
        code: Some((0x5f3a_2b2d, 0x5000)),
        ..Identity::default()
    };
    assert_eq!(
        files.resolve(&by_code, 0x1052).unwrap().function,
        "ResUtilGetResourceDependency"
    );
    let by_name = Identity {
        code_file: Some("clusapi.dll".into()),
        ..Identity::default()
    };
    // Ordinals are not in name order in this file: the name's own address.
    assert_eq!(
        files.resolve(&by_name, 0x10c4).unwrap().function,
        "ClusterRegSetValue"
    );
    let wrong_age = Identity {
        debug: Some((
            "4c1e3a52-9b7d-4e2f-a1c3-5d6e7f809a1b"
                .parse::<Guid>()
                .unwrap(),
            3,
        )),
        ..Identity::default()
    };
    assert!(files.resolve(&wrong_age, 0x1015).is_none());
}

/// A thread blocked in a call since before the trace began shows up only
/// in the rundowns: it was listed at the start, never switched, and its
/// rundown stack at the stop shows where it waits. The call is inferred
/// as blocked since at least the start's rundown, never returned.
#[test]
fn a_thread_blocked_for_the_whole_trace_is_seen_in_its_rundown() {
    use rhscope::model::{Evidence, Frame, Record, RecordKind, Timestamp};
    use rhscope::source::Pairer;
    use std::sync::Arc;
    let ev = |t: i64| Evidence::Line {
        input: 0,
        line: 1,
        time: Timestamp(t),
    };
    let frame = |m: &str, f: &str, a: u64| Frame {
        address: a,
        module: Some(m.into()),
        function: (!f.is_empty()).then(|| f.into()),
        offset: 0,
    };
    let mut p = Pairer::new();
    let mut start = Record::new(RecordKind::ThreadStart, 1_000, ev(1_000));
    (start.thread, start.process, start.state) = (Some(77), Some(5), Some("dc_start".into()));
    p.push(start);
    let mut rundown = Record::new(RecordKind::ThreadRundown, 9_000_000_000, ev(9_000_000_000));
    rundown.thread = Some(77);
    rundown.stack = Some(Arc::from(vec![
        frame("ntdll.dll", "NtWaitForSingleObject", 1),
        frame("clusapi.dll", "OnlineClusterResource", 2),
        frame("vendor.dll", "", 3),
        frame("rhs.exe", "OnlineCall::CallIntoResource", 4),
    ]));
    p.push(rundown);
    let mut spans = p.finish();
    let added = rhscope::analysis::stacks::infer(&mut spans, &UsageTable::embedded());
    assert_eq!(added, 1);
    let c = &spans.calls[0];
    assert_eq!((c.pid, c.tid, c.begin_ns, c.end_ns), (5, 77, 1_000, None));
    assert_eq!(c.api, "OnlineClusterResource");
    let i = c.inferred.as_ref().unwrap();
    assert_eq!(i.entry_point, Some(rhscope::model::EntryPoint::Online));
    assert_eq!(i.dll.as_deref(), Some("vendor.dll"));
}

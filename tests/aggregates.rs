//! Duration figures per entry point and per API, checked against the
//! spans by hand: counts, nearest-rank quantiles, calls that never
//! returned, grouping by name, order.

mod common;

use common::analysis;

#[test]
fn duration_figures_match_the_spans() {
    let a = analysis("mixed");
    let looks: Vec<i64> = {
        let mut d: Vec<i64> = a
            .spans
            .entries
            .iter()
            .filter(|e| {
                &*e.resource == "AppRes-1"
                    && e.entry_point == rhscope::model::EntryPoint::LooksAlive
            })
            .map(|e| e.end_ns().unwrap() - e.begin_ns)
            .collect();
        d.sort();
        d
    };
    let g = a
        .by_entry_point
        .iter()
        .find(|g| g.key == "AppRes-1 LooksAlive")
        .unwrap();
    assert_eq!(g.count, looks.len());
    assert_eq!(g.unreturned, 0);
    assert_eq!(g.max_ns, *looks.last().unwrap());
    assert_eq!(g.total_ns, looks.iter().sum::<i64>());
    // Nearest rank: round((n - 1) * q), half away from zero.
    let rank = |q: f64| ((looks.len() - 1) as f64 * q).round() as usize;
    assert_eq!((g.p50_ns, g.p95_ns), (looks[rank(0.5)], looks[rank(0.95)]));
    assert!(g.p50_ns <= g.p95_ns && g.p95_ns <= g.max_ns);
    let online = a
        .by_entry_point
        .iter()
        .find(|g| g.key == "AppRes-2 Online")
        .unwrap();
    assert_eq!((online.count, online.unreturned), (1, 1));
    let api = a
        .by_api
        .iter()
        .find(|g| g.key == "CLUSCTL_RESOURCE_GET_CLASS_INFO")
        .unwrap();
    let calls = a
        .spans
        .calls
        .iter()
        .filter(|c| c.api == "0x0100000d" || c.api == "CLUSCTL_RESOURCE_GET_CLASS_INFO")
        .count();
    assert_eq!(api.count, calls);
}

#[test]
fn groups_are_keyed_by_name_not_by_copy_of_the_name() {
    let a = analysis("mixed");
    let once = a.by_entry_point.clone();
    // Every other span of each resource gets a copy of its name of its own,
    // as a timeline merged from several pairers could hold.
    let mut b = analysis("mixed");
    for e in b.spans.entries.iter_mut().step_by(2) {
        e.resource = std::sync::Arc::from(&*e.resource);
    }
    b.by_entry_point.clear();
    rhscope::analysis::aggregates::fill(&mut b);
    assert_eq!(b.by_entry_point, once);
    // Longest total first, ties by resource, then entry point (whose names
    // have no space; a resource's may).
    assert!(once.len() > 3, "{} groups", once.len());
    let key = |g: &rhscope::analysis::Aggregate| {
        g.key
            .rsplit_once(' ')
            .map(|(r, e)| (r.to_string(), e.to_string()))
    };
    for w in once.windows(2) {
        assert!(
            w[0].total_ns > w[1].total_ns
                || w[0].total_ns == w[1].total_ns && key(&w[0]) < key(&w[1]),
            "{} before {}",
            w[0].key,
            w[1].key
        );
    }
    let keys: std::collections::BTreeSet<&str> = once.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(
        keys.len(),
        once.len(),
        "one group per resource and entry point"
    );
    assert!(keys.contains("AppRes-1 LooksAlive") && keys.contains("AppRes-2 Online"));
}

#[test]
fn a_call_that_never_returned_counts_until_the_end_and_ranks_first() {
    let a = analysis("mixed");
    let end = a.spans.last_ns.unwrap();
    let hung = a
        .spans
        .calls
        .iter()
        .find(|c| c.api == "OnlineClusterResource" && c.end_ns.is_none())
        .unwrap();
    let lower_bound = end - hung.begin_ns;
    assert!(lower_bound > 300_000_000_000, "{lower_bound}");
    let top = &a.by_api[0];
    assert_eq!(top.key, "OnlineClusterResource");
    assert_eq!((top.count, top.unreturned), (1, 1));
    assert_eq!((top.max_ns, top.total_ns), (lower_bound, lower_bound));
    assert!(a.by_api.windows(2).all(|w| w[0].total_ns >= w[1].total_ns));
    let misuse = a
        .findings
        .iter()
        .find(|r| {
            r.finding.api.as_deref() == Some("OnlineClusterResource")
                && r.finding.rule == rhscope::model::Rule::ApiMisuse
        })
        .unwrap();
    assert_eq!(misuse.finding.duration_ns, Some(lower_bound));
    assert!(misuse.finding.never_returned);
    // The text table says the figure is a lower bound.
    let mut out = Vec::new();
    rhscope::report::text::write_analyses(&mut out, std::slice::from_ref(&a)).unwrap();
    let text = String::from_utf8(out).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("OnlineClusterResource "))
        .unwrap();
    assert!(
        line.contains(&format!("≥{:.3} s", lower_bound as f64 / 1e9)),
        "{line}"
    );
}

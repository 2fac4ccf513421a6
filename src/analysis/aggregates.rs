//! Count and duration figures per entry point of each resource and per
//! API: how many calls, how many never returned, the nearest-rank p50 and
//! p95, the longest and the total, the groups that ran longest first.
//!
//! Computed here in two passes over the spans, holding a duration per
//! call (and an API call's group number; an entry point's is looked up
//! again): the polars group-by this replaces held 30-50 MiB more at the
//! peak of the bench's 180 MB log and 1 GB trace (and 23 MiB of start-up
//! on any input) and took about a tenth of a node log's analysis. The
//! figures are the ones it gave, to its rank rule (see [`nearest`]), but
//! for two extremes where these are the true ones: polars returned
//! quantiles as floats (a duration over 2^53 ns, 104 days, came back
//! rounded) and wrapped a sum that overflowed; here quantiles are the
//! durations themselves and sums saturate.

use super::{Aggregate, Analysis, CallFacts, Duration, EntryFacts};
use crate::model::{EntryPoint, EntrySpan, SpanVec};

/// Durations held at once: 32 MiB.
const BATCH: usize = 4 << 20;

/// Fills `by_entry_point` and `by_api`.
pub fn fill(a: &mut Analysis) {
    a.by_entry_point = by_entry_point(&a.spans.entries, &a.entries);
    a.by_api = by_api(&a.calls);
}

/// Per (resource, entry point), keyed "resource entry point"; ties in
/// total go by resource, then entry point (not by the joined key: a
/// resource's name may hold a space).
pub fn by_entry_point(spans: &SpanVec<EntrySpan>, facts: &SpanVec<EntryFacts>) -> Vec<Aggregate> {
    const EPS: u64 = EntryPoint::ALL.len() as u64;
    // Resource names are shared per timeline: each distinct name is
    // numbered once, each span's found by its name's address (two copies
    // of one name still rank as one, below). Distinct values are inserted
    // one by one: collecting a set from a per-span iterator reserves room
    // for every span, and the few thousand values land on as many pages of
    // a table of millions (16 MiB on the bench's 1 GB trace).
    let mut by_address: foldhash::HashMap<*const u8, u32> = Default::default();
    let mut distinct: Vec<&str> = Vec::new();
    // A (resource number, entry point) pair as one number.
    let raw = |resource: u32, ep: EntryPoint| u64::from(resource) * EPS + ep as u64;
    let mut seen: foldhash::HashSet<u64> = Default::default();
    for e in spans {
        let resource = *by_address.entry(e.resource.as_ptr()).or_insert_with(|| {
            distinct.push(&e.resource);
            distinct.len() as u32 - 1
        });
        seen.insert(raw(resource, e.entry_point));
    }
    let (resource_rank, resources) = ranks(&distinct);
    // Entry points by name, among those seen.
    let mut entry_points: Vec<EntryPoint> = EntryPoint::ALL
        .into_iter()
        .filter(|&ep| seen.iter().any(|p| p % EPS == ep as u64))
        .collect();
    entry_points.sort_unstable_by_key(|ep| ep.name());
    let mut ep_rank = [0u64; EntryPoint::ALL.len()];
    for (rank, &ep) in entry_points.iter().enumerate() {
        ep_rank[ep as usize] = rank as u64;
    }
    // Each pair seen as its (resource rank, entry-point rank), which
    // orders as the groups are numbered; two copies of a name make one.
    let n_eps = entry_points.len() as u64;
    let ranked =
        |p: u64| u64::from(resource_rank[(p / EPS) as usize]) * n_eps + ep_rank[(p % EPS) as usize];
    let mut pairs: Vec<u64> = seen.iter().map(|&p| ranked(p)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let number: foldhash::HashMap<u64, u32> = seen
        .iter()
        .map(|&p| {
            // Every ranked pair is in `pairs`, which was made from them.
            let n = pairs.binary_search(&ranked(p)).unwrap_or(0);
            (p, n as u32)
        })
        .collect();
    // A span's group, looked up in both passes rather than held (4 bytes
    // a call): every span's name and pair were gathered above.
    let group = |e: &EntrySpan| number[&raw(by_address[&e.resource.as_ptr()], e.entry_point)];
    let keys = pairs
        .iter()
        .map(|p| {
            let (r, e) = ((p / n_eps) as usize, (p % n_eps) as usize);
            format!("{} {}", resources[r], entry_points[e].name())
        })
        .collect();
    let durations = facts.iter().map(|f| f.duration);
    per_group(keys, || spans.iter().map(group).zip(durations.clone()))
}

/// Per API as the usage table names it.
pub fn by_api(calls: &SpanVec<CallFacts>) -> Vec<Aggregate> {
    let mut ids: foldhash::HashMap<&str, u32> = Default::default();
    let mut distinct: Vec<&str> = Vec::new();
    let mut group: Vec<u32> = calls
        .iter()
        .map(|f| {
            *ids.entry(f.api.as_str()).or_insert_with(|| {
                distinct.push(&f.api);
                distinct.len() as u32 - 1
            })
        })
        .collect();
    let (rank, keys) = ranks(&distinct);
    for g in &mut group {
        *g = rank[*g as usize];
    }
    let durations = calls.iter().map(|f| f.duration);
    per_group(keys, || group.iter().copied().zip(durations.clone()))
}

/// Each name's rank among the distinct names (equal names rank alike),
/// and the distinct names in order.
fn ranks(names: &[&str]) -> (Vec<u32>, Vec<String>) {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_unstable_by_key(|&i| names[i]);
    let mut rank = vec![0u32; names.len()];
    let mut sorted: Vec<String> = Vec::new();
    for i in order {
        if sorted.last().map(String::as_str) != Some(names[i]) {
            sorted.push(names[i].to_string());
        }
        rank[i] = sorted.len() as u32 - 1;
    }
    (rank, sorted)
}

/// The figures of groups numbered in the order of `keys`, from `rows`
/// (group, duration), which can be walked more than once: once to count,
/// then once per batch of groups to lay their durations side by side.
fn per_group<I>(keys: Vec<String>, rows: impl Fn() -> I) -> Vec<Aggregate>
where
    I: Iterator<Item = (u32, Duration)>,
{
    per_group_by(keys, rows, BATCH)
}

/// [`per_group`], holding about `batch` durations at once.
fn per_group_by<I>(keys: Vec<String>, rows: impl Fn() -> I, batch: usize) -> Vec<Aggregate>
where
    I: Iterator<Item = (u32, Duration)>,
{
    let mut out: Vec<Aggregate> = keys
        .into_iter()
        .map(|key| Aggregate {
            key,
            count: 0,
            unreturned: 0,
            unknown: 0,
            total_ns: 0,
            p50_ns: 0,
            p95_ns: 0,
            max_ns: 0,
        })
        .collect();
    // Where each group's known durations begin in `values`.
    let mut starts = vec![0usize; out.len() + 1];
    // Group numbers are below `keys.len()` by construction; one that is
    // not is left out of both passes alike.
    for (g, d) in rows() {
        let Some(figures) = out.get_mut(g as usize) else {
            continue;
        };
        figures.count += 1;
        match d.ns() {
            None => figures.unknown += 1,
            Some(_) => {
                starts[g as usize + 1] += 1;
                figures.unreturned += usize::from(!d.returned());
            }
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    // The durations of a batch of groups at a time, side by side, a pass
    // over the rows each: one pass for up to BATCH calls (a 1 GB node log
    // has about 4 million), more beyond, so that memory does not grow with
    // the log (a batch is at least one group, whatever its size).
    let mut g0 = 0;
    while g0 < out.len() {
        let mut g1 = g0 + 1;
        while g1 < out.len() && starts[g1 + 1] - starts[g0] <= batch {
            g1 += 1;
        }
        let base = starts[g0];
        if starts[g1] == base {
            // No known durations: their figures stay 0, no pass needed.
            g0 = g1;
            continue;
        }
        let mut values = vec![0i64; starts[g1] - base];
        let mut next: Vec<usize> = starts[g0..g1].iter().map(|s| s - base).collect();
        for (g, d) in rows() {
            let g = g as usize;
            if let Some(ns) = d.ns().filter(|_| (g0..g1).contains(&g)) {
                values[next[g - g0]] = ns;
                next[g - g0] += 1;
            }
        }
        for (g, figures) in out.iter_mut().enumerate().take(g1).skip(g0) {
            let known = &mut values[starts[g] - base..starts[g + 1] - base];
            known.sort_unstable();
            figures.total_ns = known.iter().fold(0i64, |t, &d| t.saturating_add(d));
            figures.max_ns = known.last().copied().unwrap_or(0);
            figures.p50_ns = nearest(known, 0.5, figures.unknown);
            figures.p95_ns = nearest(known, 0.95, figures.unknown);
        }
        g0 = g1;
    }
    // Stable: equal totals keep the keys' order.
    out.sort_by_key(|g| std::cmp::Reverse(g.total_ns));
    out
}

/// The nearest-rank quantile `q` of sorted `known` durations, a group's
/// `unknown` ones left out (0 when none is known). The rank is polars'
/// `QuantileMethod::Nearest` to the float: (n - 1) * q, plus the unknown
/// ones sorted first, rounded half away from zero (not to even).
fn nearest(known: &[i64], q: f64, unknown: usize) -> i64 {
    let Some(last) = known.len().checked_sub(1) else {
        return 0;
    };
    let rank = (last as f64 * q + unknown as f64).round() as usize;
    known[rank.saturating_sub(unknown).min(last)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ns: Option<i64>, returned: bool) -> Duration {
        match (ns, returned) {
            (Some(ns), true) => Duration::Returned(ns),
            (Some(ns), false) => Duration::Running(ns),
            (None, _) => Duration::Unknown,
        }
    }

    #[test]
    fn nearest_rank_rounds_half_away_from_zero_past_the_unknown() {
        let v = [10, 20, 30, 40];
        // (4 - 1) * 0.5 = 1.5: rounds up, to the third.
        assert_eq!(nearest(&v, 0.5, 0), 30);
        // 0.5 and 2.5 round away from zero, where to even would go down.
        assert_eq!(nearest(&[10, 20], 0.5, 0), 20);
        assert_eq!(nearest(&[10, 20, 30, 40, 50, 60], 0.5, 0), 40);
        // (4 - 1) * 0.95 = 2.85.
        assert_eq!(nearest(&v, 0.95, 0), 40);
        assert_eq!(nearest(&[7], 0.95, 0), 7);
        assert_eq!(nearest(&[], 0.5, 3), 0);
        // Two unknown sorted first: 1.5 + 2 = 3.5 rounds to 4, the third
        // known.
        assert_eq!(nearest(&v, 0.5, 2), 30);
    }

    #[test]
    fn per_group_figures_longest_total_first_ties_in_key_order() {
        let rows = [
            (1, d(Some(5), true)),
            (0, d(Some(3), true)),
            (2, d(None, false)),
            (1, d(Some(1), true)),
            (0, d(Some(3), true)),
            (1, d(Some(900), false)),
            (3, d(Some(6), true)),
            (1, d(None, false)),
        ];
        let keys = ["a", "b", "c", "d"].map(String::from).to_vec();
        let out = per_group(keys, || rows.iter().copied());
        // (key, [count, unreturned, unknown], [total, p50, p95, max])
        let want = [
            // 1, 5, 900 known, one unknown: rank (2 * 0.5 + 1) - 1 = 1.
            ("b", [4, 1, 1], [906, 5, 900, 900]),
            ("a", [2, 0, 0], [6, 3, 3, 3]),
            ("d", [1, 0, 0], [6, 6, 6, 6]),
            ("c", [1, 0, 1], [0, 0, 0, 0]),
        ]
        .map(
            |(key, [count, unreturned, unknown], [total, p50, p95, max])| Aggregate {
                key: key.to_string(),
                count,
                unreturned,
                unknown,
                total_ns: total,
                p50_ns: p50,
                p95_ns: p95,
                max_ns: max,
            },
        );
        assert_eq!(out, want);
        // Batches of at most 1, 2 or 3 durations (each at least a group):
        // the same figures, a pass over the rows per batch.
        for batch in [0, 1, 2, 3] {
            let walks = std::cell::Cell::new(0);
            let keys = ["a", "b", "c", "d"].map(String::from).to_vec();
            let again = per_group_by(
                keys,
                || {
                    walks.set(walks.get() + 1);
                    rows.iter().copied()
                },
                batch,
            );
            assert_eq!(again, want, "batches of {batch}");
            // Known durations by group: 2, 3, 0, 1. Counting, then groups
            // 0 | 1 | 3 by none (2 alone has nothing to lay out); 0 | 1 |
            // 2, 3 by ones and twos (b alone is over); 0 | 1, 2 | 3 by
            // threes.
            let batches = 3;
            assert_eq!(walks.get(), 1 + batches, "batches of {batch}");
        }
    }

    #[test]
    fn ranks_are_by_name_and_shared_by_equal_names() {
        let (rank, names) = ranks(&["b", "a", "b", "c"]);
        assert_eq!(rank, vec![1, 0, 1, 2]);
        assert_eq!(names, vec!["a", "b", "c"]);
    }
}

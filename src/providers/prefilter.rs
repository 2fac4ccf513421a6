//! Which message patterns a line can match, found before any pattern runs.
//!
//! Most lines of a node's log match no pattern, and a line that matches
//! one matches one or two of dozens. Nearly every pattern has a literal
//! every match of it contains (`rhscope: api-call-begin `, `Issuing `,
//! `timed out`): one search of the line for all of them finds which it
//! holds, and only the patterns whose literal is there are tried. The
//! few patterns without such a literal (case-insensitive ones, say) are
//! tried through one set of their own.
//!
//! The search is aho-corasick's packed (SIMD, Teddy) searcher where the
//! CPU has one: it looks at 16 or 32 bytes a step where an automaton
//! looks at one, and stops only near a literal. It finds one match per
//! place a literal starts (the longest there); the literals inside that
//! one are known in advance. Elsewhere, a full Aho-Corasick DFA.

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::packed;
use aho_corasick::{Anchored, MatchKind, Span, StartKind};
use regex::RegexSet;
use regex_syntax::hir::{Hir, HirKind};

/// Shorter literals (a space, a quote) are in nearly every line: such a
/// pattern is better tried through the set.
const MIN_LITERAL: usize = 3;

/// The message patterns of every definition, indexed by what they must
/// contain.
#[derive(Debug, Clone)]
pub struct MessageIndex {
    /// How many patterns, in the order they are tried.
    patterns: usize,
    /// How the line is searched for the literals.
    literals: Option<Literals>,
    /// The patterns that require each literal.
    by_literal: Vec<Vec<usize>>,
    /// The patterns with no required literal, and a set telling which of
    /// them a line matches.
    rest: Option<(RegexSet, Vec<usize>)>,
}

/// Every pattern's required literal, in one searcher.
#[derive(Debug, Clone)]
enum Literals {
    /// The packed searcher (leftmost-longest), and for each literal the
    /// literals it holds (itself among them).
    Packed(packed::Searcher, Vec<Vec<usize>>),
    /// An automaton and the state it starts in (boxed: the searcher is
    /// the usual one, and the automaton's fields are many).
    Dfa(Box<DFA>, aho_corasick::automaton::StateID),
}

impl MessageIndex {
    /// From the patterns' sources, in the order they are tried; None when
    /// a pattern cannot be read or the automata cannot be built (the
    /// caller then tries every pattern).
    pub fn new(sources: &[&str]) -> Option<MessageIndex> {
        MessageIndex::searching_with(sources, Literals::new)
    }

    /// [`MessageIndex::new`], searching for the literals as `search`
    /// builds it.
    fn searching_with(
        sources: &[&str],
        search: fn(&[Vec<u8>]) -> Option<Literals>,
    ) -> Option<MessageIndex> {
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut by_literal: Vec<Vec<usize>> = Vec::new();
        let (mut rest_sources, mut rest) = (Vec::new(), Vec::new());
        for (i, source) in sources.iter().enumerate() {
            let literal = regex_syntax::parse(source)
                .ok()
                .and_then(|hir| required(&hir).1)
                .filter(|l| l.len() >= MIN_LITERAL);
            match literal {
                Some(lit) => match literals.iter().position(|l| *l == lit) {
                    Some(at) => by_literal[at].push(i),
                    None => {
                        literals.push(lit);
                        by_literal.push(vec![i]);
                    }
                },
                None => {
                    rest_sources.push(*source);
                    rest.push(i);
                }
            }
        }
        let literals = match literals.is_empty() {
            true => None,
            false => Some(search(&literals)?),
        };
        let rest = match rest.is_empty() {
            true => None,
            false => Some((RegexSet::new(&rest_sources).ok()?, rest)),
        };
        Some(MessageIndex {
            patterns: sources.len(),
            literals,
            by_literal,
            rest,
        })
    }

    /// `f` of each pattern `text` may match, in the order they are
    /// tried, until one gives an answer: the candidates are a superset of
    /// the patterns that match (a literal found does not make a match),
    /// never missing one.
    pub fn find_map<R>(&self, text: &str, mut f: impl FnMut(usize) -> Option<R>) -> Option<R> {
        // One bit per pattern, on the stack for any likely number of them.
        let mut inline = [0u64; 4];
        let mut spilled = Vec::new();
        let words = self.patterns.div_ceil(64);
        let bits: &mut [u64] = match inline.get_mut(..words) {
            Some(bits) => bits,
            None => {
                spilled.resize(words, 0);
                &mut spilled
            }
        };
        let mut mark = |i: usize| bits[i / 64] |= 1 << (i % 64);
        let mut found = |literal: usize| {
            for &i in &self.by_literal[literal] {
                mark(i);
            }
        };
        match &self.literals {
            Some(Literals::Packed(searcher, inside)) => {
                // From each place a literal starts, on from the next byte:
                // every place one starts is reached, and of the literals
                // starting there all but the longest are inside it.
                let mut at = 0;
                while let Some(m) = searcher.find_in(text, Span::from(at..text.len())) {
                    for &literal in &inside[m.pattern().as_usize()] {
                        found(literal);
                    }
                    at = m.start() + 1;
                }
            }
            Some(Literals::Dfa(dfa, start)) => {
                // By hand rather than through `find_overlapping_iter`, whose
                // general loop cost about two and a half times as many
                // instructions on a node's log (cachegrind). With Standard
                // semantics the state reached at a byte holds every literal
                // that ends there (those inside a longer one too), so one
                // pass sees every literal the line holds.
                let mut sid = *start;
                for &byte in text.as_bytes() {
                    sid = dfa.next_state(Anchored::No, sid, byte);
                    if !dfa.is_special(sid) {
                        continue;
                    }
                    if dfa.is_match(sid) {
                        for k in 0..dfa.match_len(sid) {
                            found(dfa.match_pattern(sid, k).as_usize());
                        }
                    } else if dfa.is_dead(sid) {
                        break;
                    }
                }
            }
            None => {}
        }
        if let Some((set, which)) = &self.rest {
            for k in set.matches(text).iter() {
                mark(which[k]);
            }
        }
        for (w, &word) in bits.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                if let Some(r) = f(w * 64 + bit) {
                    return Some(r);
                }
            }
        }
        None
    }

    /// Every candidate for `text`, in order (for tests).
    #[cfg(test)]
    fn candidates(&self, text: &str) -> Vec<usize> {
        let mut all = Vec::new();
        self.find_map(text, |i| {
            all.push(i);
            None::<()>
        });
        all
    }
}

impl Literals {
    /// The packed searcher where this CPU and these literals allow one,
    /// else the automaton; None when neither can be built.
    fn new(literals: &[Vec<u8>]) -> Option<Literals> {
        let searcher = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(literals)
            .build();
        if let Some(searcher) = searcher {
            let inside = literals
                .iter()
                .map(|outer| {
                    (0..literals.len())
                        .filter(|&k| memchr::memmem::find(outer, &literals[k]).is_some())
                        .collect()
                })
                .collect();
            return Some(Literals::Packed(searcher, inside));
        }
        Literals::automaton(literals)
    }

    fn automaton(literals: &[Vec<u8>]) -> Option<Literals> {
        // A full DFA: a few hundred states for dozens of literals, and one
        // table lookup per byte of every line. Without a prefilter its
        // start state is not special, so the scan in `find_map` leaves its
        // fast path only where a literal ends.
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .prefilter(false)
            .build(literals)
            .ok()?;
        let start = dfa.start_state(Anchored::No).ok()?;
        Some(Literals::Dfa(Box::new(dfa), start))
    }
}

/// Of what `hir` matches: the one string it matches, if it matches only
/// one; and a literal every match of it contains (the longest this walk
/// finds: alternations and classes are not looked into), if any.
fn required(hir: &Hir) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    match hir.kind() {
        // Zero-width: the literals on either side stay adjacent.
        HirKind::Empty | HirKind::Look(_) => (Some(Vec::new()), None),
        HirKind::Literal(lit) => (Some(lit.0.to_vec()), Some(lit.0.to_vec())),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) => match (r.min, r.max) {
            (0, _) => (None, None),
            (1, Some(1)) => required(&r.sub),
            _ => (None, required(&r.sub).1),
        },
        HirKind::Concat(parts) => {
            let mut run = Some(Vec::new());
            let mut current = Vec::new();
            let mut best: Option<Vec<u8>> = None;
            for part in parts {
                let (exact, inner) = required(part);
                best = longer(best, inner);
                match exact {
                    Some(e) => {
                        current.extend_from_slice(&e);
                        if let Some(r) = run.as_mut() {
                            r.extend_from_slice(&e);
                        }
                    }
                    None => {
                        best = longer(best, Some(std::mem::take(&mut current)));
                        run = None;
                    }
                }
            }
            (run, longer(best, Some(current)))
        }
        // A class of one byte or an alternation could give literals too;
        // without one the pattern is simply tried through the set.
        HirKind::Class(_) | HirKind::Alternation(_) => (None, None),
    }
}

fn longer(a: Option<Vec<u8>>, b: Option<Vec<u8>>) -> Option<Vec<u8>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.len() > a.len() { b } else { a }),
        (a, b) => a.or(b).filter(|l| !l.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(source: &str) -> Option<String> {
        let hir = regex_syntax::parse(source).unwrap();
        required(&hir).1.map(|l| String::from_utf8(l).unwrap())
    }

    #[test]
    fn the_longest_literal_every_match_contains() {
        assert_eq!(
            literal(r"^(?P<resource_type>[^<]+) <(?P<resource>[^>]+)>: rhscope: entry-point-begin (?P<entry_point>\w+)$")
                .as_deref(),
            Some(">: rhscope: entry-point-begin ")
        );
        // Inside a group that must match, across anchors.
        assert_eq!(
            literal(r"^(?:Issuing )(?P<ep>\w+)").as_deref(),
            Some("Issuing ")
        );
        // A repetition's own literal counts; it ends the run before it.
        assert_eq!(literal(r"x+ab(?:cdef)+").as_deref(), Some("cdef"));
        assert_eq!(literal(r"x+abc(?:de)+").as_deref(), Some("abc"));
        // Optional parts and alternations promise nothing.
        assert_eq!(literal(r"(?:abc)?\d").as_deref(), None);
        assert_eq!(literal(r"^abc|^abd").as_deref(), None);
        // Letters of a case-insensitive pattern are classes: a space is
        // all it promises, too short to filter by.
        assert_eq!(literal(r"(?i)^the cluster").as_deref(), Some(" "));
    }

    #[test]
    fn candidates_are_every_pattern_that_can_match_in_order() {
        let sources = [
            r"^Res (?P<r>.+): \w+ -> (?P<s>\w+)",
            r"(?i)^the end",
            r"^Issuing (?P<ep>\w+)",
            r"rhscope: api-call-begin (?P<api>\S+)",
            r"rhscope: api-call-end (?P<api>\S+)",
        ];
        let index = MessageIndex::new(&sources).unwrap();
        let c = |t: &str| index.candidates(t);
        assert_eq!(c("X <Y>: rhscope: api-call-end Foo"), [4]);
        assert_eq!(c("THE END"), [1]);
        assert_eq!(c("Res r: a -> b"), [0]);
        // A literal found is a candidate even where the pattern fails.
        assert_eq!(c("not Issuing x; rhscope: api-call-begin A"), [2, 3]);
        assert_eq!(c("nothing at all"), Vec::<usize>::new());
        for (i, source) in sources.iter().enumerate() {
            let re = regex::Regex::new(source).unwrap();
            for t in [
                "Res r: a -> b",
                "the end",
                "Issuing Online",
                "rhscope: api-call-end A",
            ] {
                if re.is_match(t) {
                    assert!(c(t).contains(&i), "{source} on {t}");
                }
            }
        }
    }

    /// The built-in definitions' patterns, in the order they are tried.
    fn built_in() -> Vec<String> {
        crate::providers::ProviderSet::embedded()
            .definitions()
            .iter()
            .flat_map(|d| d.pattern_sources().map(String::from))
            .collect()
    }

    #[test]
    fn built_in_patterns_all_but_one_have_a_literal() {
        // Loading them compiles every built-in pattern, in any build of
        // the features (a build without polars once could not).
        let sources = built_in();
        let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
        let index = MessageIndex::new(&sources).unwrap();
        let rest = index.rest.as_ref().map(|(_, which)| which.clone());
        // The case-insensitive "RHS process was terminated" pattern.
        let case_insensitive = sources.iter().position(|s| s.starts_with("(?i)"));
        assert_eq!(rest, case_insensitive.map(|i| vec![i]));
        assert_eq!(
            index.by_literal.iter().map(Vec::len).sum::<usize>(),
            sources.len() - 1
        );
    }

    #[test]
    fn literals_inside_others_and_ending_together_are_all_found() {
        let sources = [r"bcdef", r"cde", r"def", r"^a.*efg", r"zzz"];
        let index = MessageIndex::new(&sources).unwrap();
        assert_eq!(index.candidates("abcdefg"), [0, 1, 2, 3]);
        assert_eq!(index.candidates("xcdefzz"), [1, 2]);
        assert_eq!(index.candidates(""), Vec::<usize>::new());
        // Non-ASCII bytes walk the same table.
        assert_eq!(index.candidates("\u{e9}def\u{1F600}zzz"), [2, 4]);
    }

    /// The packed search finds what the automaton finds, literal inside
    /// literal, overlapping, repeated, at either end, on short lines (the
    /// packed searcher's slow path) and long ones; on the built-in
    /// patterns too.
    #[test]
    fn the_packed_search_finds_what_the_automaton_finds() {
        let built_in = built_in();
        let built_in: Vec<&str> = built_in.iter().map(String::as_str).collect();
        let small = [
            r"bcdef", r"cde", r"def", r"^a.*efg", r"zzz", r"abcd", r"dea",
        ];
        for sources in [&small[..], &built_in[..]] {
            let packed = MessageIndex::new(sources).unwrap();
            let dfa = MessageIndex::searching_with(sources, Literals::automaton).unwrap();
            #[cfg(target_arch = "x86_64")]
            assert!(matches!(packed.literals, Some(Literals::Packed(..))));
            assert!(matches!(dfa.literals, Some(Literals::Dfa(..))));
            let mut texts: Vec<String> = [
                "abcdefg",
                "xcdefzz",
                "zzzz",
                "abcdeabcdefgdeazzz",
                "",
                "\u{e9}def\u{1F600}zzz",
            ]
            .iter()
            .map(|t| t.to_string())
            .collect();
            // Every line of the bundled logs, and each one's literals
            // joined with and without filler around them.
            for log in [
                "traces/mixed.cluster.log",
                "tests/data/cluster-sample.log",
                "tests/data/clusterlog/NODE1_cluster.log",
            ] {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(log);
                // The sample has Latin-1 bytes: they are searched as the
                // replacement character, like any byte outside UTF-8.
                let bytes = std::fs::read(&path).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                texts.extend(text.lines().map(str::to_string));
            }
            let mut literals = Vec::new();
            for source in sources {
                let hir = regex_syntax::parse(source).unwrap();
                if let Some(l) = required(&hir).1 {
                    literals.push(String::from_utf8(l).unwrap());
                }
            }
            for (i, a) in literals.iter().enumerate() {
                let b = &literals[(i * 7 + 3) % literals.len()];
                texts.push(format!("{a}{b}"));
                texts.push(format!(
                    "{}{a} and some more words after it {b}",
                    "x".repeat(i)
                ));
                texts.push(a.get(1..).unwrap_or_default().to_string());
            }
            for t in &texts {
                assert_eq!(packed.candidates(t), dfa.candidates(t), "{t:?}");
            }
        }
    }

    #[test]
    fn more_patterns_than_a_word_of_bits() {
        // Past the 256 kept on the stack, too.
        let sources: Vec<String> = (0..300).map(|i| format!("^p{i:03}$")).collect();
        let refs: Vec<&str> = sources.iter().map(String::as_str).collect();
        let index = MessageIndex::new(&refs).unwrap();
        assert_eq!(index.candidates("p129"), [129]);
        assert_eq!(index.candidates("p064"), [64]);
        assert_eq!(index.candidates("p299 p000"), [0, 299]);
    }
}

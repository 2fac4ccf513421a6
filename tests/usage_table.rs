//! The usage table against its sources: the seed document (every row and
//! usage code, no more, no fewer) and clusapi.h (every control code's value,
//! recomputed here by evaluating the header's own macros).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use rhscope::model::UsageCode;
use rhscope::providers::usage::{ApiKind, UsageTable};

fn shared(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the project's shared/ folder must sit beside it)",
            p.display()
        )
    })
}

/// (name, usage code) of every row of the seed's first table.
fn seed_rows() -> Vec<(String, UsageCode)> {
    let doc = shared("seed/function-calls-to-avoid-in-resource-dlls.md");
    let mut rows = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() != 4 || !cells[1].starts_with('[') {
            continue;
        }
        let Some(end) = cells[1].find(']') else {
            continue;
        };
        let name = cells[1][1..end].trim_matches('*').replace('\\', "");
        let usage = match cells[2] {
            "Do not use." => UsageCode::DoNotUse,
            "Worker thread only." => UsageCode::WorkerThreadOnly,
            "Some entry points okay." => UsageCode::SomeEntryPointsOkay,
            other => panic!("unknown usage code {other:?}"),
        };
        rows.push((name, usage));
    }
    rows
}

#[test]
fn the_table_has_exactly_the_seed_rows() {
    let rows = seed_rows();
    assert_eq!(rows.len(), 105);
    let table = UsageTable::embedded();
    let mine: Vec<(String, UsageCode)> = table
        .apis()
        .iter()
        .map(|a| (a.name.clone(), a.usage))
        .collect();
    assert_eq!(mine, rows);
    for a in table.apis() {
        assert_eq!(
            a.kind == ApiKind::ControlCode,
            a.name.starts_with("CLUSCTL_"),
            "{}",
            a.name
        );
    }
    let count = |u| rows.iter().filter(|(_, c)| *c == u).count();
    assert_eq!(count(UsageCode::DoNotUse), 22);
    assert_eq!(count(UsageCode::WorkerThreadOnly), 67);
    assert_eq!(count(UsageCode::SomeEntryPointsOkay), 16);
}

#[test]
fn the_usage_code_meanings_follow_the_seed() {
    let doc = shared("seed/function-calls-to-avoid-in-resource-dlls.md");
    let line = doc
        .lines()
        .find(|l| l.starts_with("| Some entry points okay."))
        .unwrap();
    let table = UsageTable::embedded();
    let forbidden = &table
        .meaning(UsageCode::SomeEntryPointsOkay)
        .forbidden_entry_points;
    // The seed names these five; their V2 forms are the same entry points.
    for name in ["Close", "Offline", "Online", "Open", "Terminate"] {
        assert!(line.contains(&format!("[**{name}**]")), "{name}");
        assert!(forbidden.iter().any(|e| e.name() == name), "{name}");
    }
    for e in forbidden {
        let base = e.name().trim_end_matches("V2");
        assert!(
            line.contains(&format!("[**{base}**]")),
            "{e} is not in the seed's list"
        );
    }
    let worker = doc
        .lines()
        .find(|l| l.starts_with("| Worker thread only."))
        .unwrap();
    assert!(worker.contains("ClusWorkerCreate"));
    assert_eq!(
        table.meaning(UsageCode::WorkerThreadOnly).allowed_threads,
        vec![rhscope::model::ThreadKind::ClusterWorker]
    );
}

/// A small evaluator for the integer macros and enums of clusapi.h.
struct Header {
    values: HashMap<String, i64>,
    macros: HashMap<String, (Vec<String>, String)>,
}

impl Header {
    fn parse(text: &str) -> Header {
        let mut h = Header {
            values: HashMap::new(),
            macros: HashMap::new(),
        };
        // Join continuation lines, drop comments.
        let text = text.replace("\\\n", " ");
        let text = strip_comments(&text);
        let mut enum_bodies = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(def) = line.strip_prefix("#define ") {
                let def = def.trim();
                let name_end = def
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(def.len());
                let name = &def[..name_end];
                let rest = &def[name_end..];
                if let Some(params) = rest.strip_prefix('(') {
                    let close = params.find(')').unwrap();
                    let args = params[..close]
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .collect();
                    h.macros.insert(
                        name.to_string(),
                        (args, params[close + 1..].trim().to_string()),
                    );
                } else if !rest.trim().is_empty() {
                    h.macros
                        .insert(name.to_string(), (Vec::new(), rest.trim().to_string()));
                }
            }
        }
        let mut rest = text.as_str();
        while let Some(i) = rest.find("enum") {
            rest = &rest[i + 4..];
            if let (Some(open), Some(close)) = (rest.find('{'), rest.find('}')) {
                if open < close {
                    enum_bodies.push(rest[open + 1..close].to_string());
                    rest = &rest[close..];
                }
            }
        }
        for body in enum_bodies {
            let mut next = 0i64;
            for item in split_top_level(&body) {
                let item = item.trim();
                if item.is_empty() || item.starts_with('#') {
                    continue;
                }
                let (name, value) = match item.split_once('=') {
                    Some((n, e)) => (n.trim(), h.eval(e)),
                    None => (item, Some(next)),
                };
                if let Some(v) = value {
                    h.values.insert(name.to_string(), v);
                    next = v + 1;
                }
            }
        }
        h
    }

    fn eval(&self, expr: &str) -> Option<i64> {
        let tokens = tokenize(&self.expand(expr, 0)?);
        let mut p = Parser {
            t: &tokens,
            i: 0,
            h: self,
        };
        let v = p.or()?;
        (p.i == tokens.len()).then_some(v)
    }

    /// Expands function-like macros textually.
    fn expand(&self, expr: &str, depth: usize) -> Option<String> {
        if depth > 20 {
            return None;
        }
        let tokens = tokenize(expr);
        let mut out = String::new();
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            match self.macros.get(t.as_str()) {
                Some((params, body))
                    if !params.is_empty() && tokens.get(i + 1).map(String::as_str) == Some("(") =>
                {
                    let mut level = 0;
                    let mut j = i + 1;
                    let mut args = vec![String::new()];
                    loop {
                        let tok = tokens.get(j)?;
                        match tok.as_str() {
                            "(" => {
                                level += 1;
                                if level > 1 {
                                    args.last_mut()?.push_str("( ");
                                }
                            }
                            ")" => {
                                level -= 1;
                                if level == 0 {
                                    break;
                                }
                                args.last_mut()?.push_str(") ");
                            }
                            "," if level == 1 => args.push(String::new()),
                            other => {
                                args.last_mut()?.push_str(other);
                                args.last_mut()?.push(' ');
                            }
                        }
                        j += 1;
                    }
                    let mut b = String::new();
                    for bt in tokenize(body) {
                        match params.iter().position(|p| *p == bt) {
                            Some(k) => b.push_str(&format!("( {} )", args[k])),
                            None => b.push_str(&bt),
                        }
                        b.push(' ');
                    }
                    out.push_str(&format!("( {} ) ", self.expand(&b, depth + 1)?));
                    i = j + 1;
                }
                Some((params, body)) if params.is_empty() => {
                    out.push_str(&format!("( {} ) ", self.expand(body, depth + 1)?));
                    i += 1;
                }
                _ => {
                    out.push_str(t);
                    out.push(' ');
                    i += 1;
                }
            }
        }
        Some(out)
    }
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn split_top_level(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut level = 0;
    for c in s.chars() {
        match c {
            '(' => level += 1,
            ')' => level -= 1,
            ',' if level == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().unwrap().push(c);
    }
    out
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(cs[start..i].iter().collect());
        } else if c == '<' && cs.get(i + 1) == Some(&'<') {
            out.push("<<".into());
            i += 2;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

struct Parser<'a> {
    t: &'a [String],
    i: usize,
    h: &'a Header,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.t.get(self.i).map(String::as_str)
    }
    fn or(&mut self) -> Option<i64> {
        let mut v = self.shift()?;
        while self.peek() == Some("|") {
            self.i += 1;
            v |= self.shift()?;
        }
        Some(v)
    }
    fn shift(&mut self) -> Option<i64> {
        let mut v = self.add()?;
        while self.peek() == Some("<<") {
            self.i += 1;
            v <<= self.add()?;
        }
        Some(v)
    }
    fn add(&mut self) -> Option<i64> {
        let mut v = self.primary()?;
        while self.peek() == Some("+") {
            self.i += 1;
            v += self.primary()?;
        }
        Some(v)
    }
    fn primary(&mut self) -> Option<i64> {
        let t = self.peek()?.to_string();
        self.i += 1;
        if t == "(" {
            let v = self.or()?;
            (self.peek() == Some(")")).then(|| self.i += 1)?;
            return Some(v);
        }
        let t = t.trim_end_matches(['u', 'U', 'l', 'L']);
        if let Some(hex) = t.strip_prefix("0x") {
            return i64::from_str_radix(hex, 16).ok();
        }
        if let Ok(v) = t.parse() {
            return Some(v);
        }
        self.h.values.get(t).copied()
    }
}

#[test]
fn control_code_values_come_from_clusapi_h() {
    let header = Header::parse(&shared("reference/clusapi.h"));
    // Spot checks of the evaluator against values the header states in
    // comments and Microsoft documents.
    assert_eq!(
        header
            .values
            .get("CLUSCTL_RESOURCE_STORAGE_GET_DISK_INFO_EX"),
        Some(&0x0100_01f1)
    );
    assert_eq!(
        header.values.get("CLUSCTL_RESOURCE_STORAGE_CLUSTER_DISK"),
        Some(&0x01c0_0212)
    );
    let table = UsageTable::embedded();
    let mut checked = BTreeMap::new();
    for api in table
        .apis()
        .iter()
        .filter(|a| a.kind == ApiKind::ControlCode)
    {
        let want = header
            .values
            .get(&api.name)
            .unwrap_or_else(|| panic!("{} not in clusapi.h", api.name));
        assert_eq!(i64::from(api.code.unwrap()), *want, "{}", api.name);
        checked.insert(api.name.clone(), *want);
    }
    assert_eq!(checked.len(), 51);
    assert_eq!(checked["CLUSCTL_RESOURCE_GET_CLASS_INFO"], 0x0100_000d);
    assert_eq!(checked["CLUSCTL_GROUP_UNKNOWN"], 0x0300_0000);
}

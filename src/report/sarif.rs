//! SARIF 2.1.0 for code-scanning front ends: one result per finding, the
//! trace file as the artifact, evidence byte offsets as regions.

use crate::analysis::Analysis;
use crate::model::{advice, Evidence, Rule, Severity, UsageCode};
use serde_json::{json, Value};

fn rule_id(r: Rule) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn report(all: &[Analysis]) -> Value {
    let rules = Rule::ALL;
    let results: Vec<Value> = all
        .iter()
        .flat_map(|a| a.findings.iter().map(move |r| (a, r)))
        .map(|(a, r)| {
            let f = &r.finding;
            let text = format!(
                "{}{}{} on thread {} (pid {}) at {}",
                f.rule.summary(),
                f.resource.as_ref().map_or(String::new(), |x| format!(": resource {x}")),
                match (&f.api, f.entry_point) {
                    (Some(api), Some(ep)) => format!(", {api} in {ep}"),
                    (Some(api), None) => format!(", {api}"),
                    (None, Some(ep)) => format!(", {ep}"),
                    (None, None) => String::new(),
                },
                f.tid,
                f.pid,
                f.begin
            );
            let text = format!(
                "{text} ({}). Why: {}. What to do: {}.",
                super::story::blocked_for(f),
                advice::why(f),
                advice::fix(f)
            );
            let locations: Vec<Value> = r
                .evidence
                .iter()
                .map(|e| {
                    let uri = a.inputs.get(usize::from(e.input())).unwrap_or(&r.trace);
                    let region = match (e, e.byte_offset()) {
                        (_, Some(offset)) => json!({"byteOffset": offset}),
                        (Evidence::Line { line, .. }, None) => json!({"startLine": line}),
                        _ => json!({}),
                    };
                    json!({"physicalLocation": {"artifactLocation": {"uri": uri}, "region": region}})
                })
                .collect();
            json!({
                "ruleId": rule_id(f.rule),
                "level": if f.severity == Severity::Error { "error" } else { "warning" },
                "message": {"text": text},
                "locations": locations,
                "properties": {"finding": f},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rhscope",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|r| rule(*r)).collect::<Vec<_>>(),
            }},
            "results": results,
        }]
    })
}

/// A rule's description and help: why it matters and what to do, and for
/// misuse, what each usage code means.
fn rule(r: Rule) -> Value {
    let mut help = format!("Why: {}. What to do: {}.", r.why(), r.fix());
    if r == Rule::ApiMisuse {
        help = format!("Why: {}.", r.why());
        for u in [
            UsageCode::DoNotUse,
            UsageCode::WorkerThreadOnly,
            UsageCode::SomeEntryPointsOkay,
        ] {
            help.push_str(&format!(
                " {} ({}): {}; what to do: {}.",
                u.name(),
                u.words(),
                u.why(),
                u.fix()
            ));
        }
    }
    json!({
        "id": rule_id(r),
        "shortDescription": {"text": r.summary()},
        "fullDescription": {"text": format!("{}: {}.", r.summary(), r.why())},
        "help": {"text": help},
    })
}

//! Message patterns: the `[[pattern]]`s of a definition, regexes whose
//! named groups fill model fields from a log line's or an event's text.

use std::collections::BTreeMap;

use regex::Regex;

use crate::model::record::{FieldValue, ModelField};
use crate::model::{Record, RecordKind};
use crate::providers::config::ConfigError;
use crate::read::text::strip_ascii;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatternDef {
    regex: String,
    record: RecordKind,
    /// Only for lines of this component (the `[TAG]` of a cluster.log
    /// line; "" for lines without one); any when absent.
    #[serde(default)]
    component: Option<String>,
    /// model field -> constant value, for fields the pattern does not capture.
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

/// A message pattern, compiled.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
    record: RecordKind,
    component: Option<String>,
    /// Constant model fields, in their names' order.
    fields: Vec<(ModelField, String)>,
    /// Capture group index -> the model field it fills.
    groups: Vec<(usize, ModelField)>,
}

impl Pattern {
    /// Compiles a definition's pattern, checking that its groups and
    /// constant fields name model fields; `err` places a problem in the
    /// definition's text by a needle.
    pub(super) fn compile(
        p: &PatternDef,
        err: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<Pattern, ConfigError> {
        let regex = Regex::new(&p.regex).map_err(|e| {
            // Regex errors draw a caret under the pattern on extra lines.
            let text: Vec<String> = e
                .to_string()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('^'))
                .map(String::from)
                .collect();
            err(&p.regex, format!("bad regex: {}", text.join(" ")))
        })?;
        let mut groups = Vec::new();
        for (i, name) in regex.capture_names().enumerate() {
            let Some(name) = name else { continue };
            match ModelField::from_name(&name.replace('_', "-")) {
                Some(field) => groups.push((i, field)),
                None => {
                    return Err(err(
                        &p.regex,
                        format!("capture group {name:?} names no model field"),
                    ))
                }
            }
        }
        let mut fields = Vec::new();
        for (model_field, value) in &p.fields {
            match ModelField::from_name(model_field) {
                Some(field) => fields.push((field, value.clone())),
                None => {
                    return Err(err(
                        &format!("{model_field} ="),
                        format!("unknown model field {model_field:?}"),
                    ))
                }
            }
        }
        Ok(Pattern {
            regex,
            record: p.record,
            component: p.component.clone(),
            fields,
            groups,
        })
    }

    /// Its regex, as written.
    pub fn source(&self) -> &str {
        self.regex.as_str()
    }

    /// The record a message stands for, if this pattern matches it.
    /// `base` is cloned only when the pattern matches: most lines try
    /// several patterns.
    pub(super) fn apply(
        &self,
        message: &str,
        component: &str,
        base: &Record,
    ) -> Option<Result<Record, String>> {
        if self
            .component
            .as_deref()
            .is_some_and(|c| !c.eq_ignore_ascii_case(component))
        {
            return None;
        }
        let caps = self.regex.captures(message)?;
        let mut r = base.clone();
        r.kind = self.record;
        r.message = Some(message.to_string());
        let mut set = || -> Result<(), String> {
            for (field, value) in &self.fields {
                r.set_field(*field, FieldValue::Text(value.into()))?;
            }
            for &(i, field) in &self.groups {
                if let Some(m) = caps.get(i) {
                    r.set_field(field, FieldValue::Text(m.as_str().into()))?;
                }
            }
            Ok(())
        };
        Some(set().map(|()| r))
    }
}

/// `[TAG] text` as (TAG, text); ("", text) without a tag.
pub fn split_tag(message: &str) -> (&str, &str) {
    match strip_ascii(message, b'[').and_then(|t| t.split_once("] ")) {
        Some((tag, text)) if !tag.contains('[') => (tag, text),
        _ => ("", message),
    }
}

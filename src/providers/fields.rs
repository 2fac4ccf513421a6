//! An event's decoded fields as provider definitions read them: by name,
//! as model values (text or a number), whichever decoder read the event.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::model::record::FieldValue;
use crate::read::etl::cursor::Cursor;
use crate::read::etl::payload::kernel_event_name;
use crate::read::etl::tracelogging::{Schema, Value};

/// A payload of UTF-16 strings, each NUL-terminated, as events whose
/// template is strings alone carry them.
pub(super) fn insertion_strings(payload: &[u8]) -> Vec<String> {
    let mut c = Cursor::new(payload, 0);
    let mut out = Vec::new();
    while !c.is_empty() {
        match c.utf16z("insertion string") {
            Ok(s) => out.push(s),
            Err(_) => break,
        }
    }
    out
}

/// An event's decoded fields: JSON, or a kernel event read field by field
/// (the kernel's context switches are most of a big trace's events: no
/// JSON object is built for them).
pub(super) enum EventFields<'a> {
    /// Its fields as JSON, and its name where its decoder gives one.
    Json(Option<String>, Json),
    /// A TraceLogging event's top-level values, in its schema's field
    /// order: a few, found by a scan of the schema rather than through a
    /// map built per event, and made model values only when a definition
    /// reads them (converting every field of every event to JSON was a
    /// tenth of analysing a trace). The schema is shared when it comes
    /// from a [`SchemaCache`].
    TraceLogging(Arc<Schema<'a>>, Vec<Value<'a>>),
    Kernel(crate::read::etl::kernel::KernelEvent),
}

impl EventFields<'_> {
    /// The event's name, as definitions match it.
    pub(super) fn name(&self) -> Option<Cow<'_, str>> {
        match self {
            EventFields::Json(name, _) => name.as_deref().map(Cow::Borrowed),
            EventFields::TraceLogging(schema, _) => Some(Cow::Borrowed(&schema.event_name)),
            EventFields::Kernel(k) => Some(Cow::Owned(kernel_event_name(k))),
        }
    }

    /// The field `name`: None if the event has no such field, Some(None)
    /// if it is null. A value is the text its JSON form has (a number
    /// kept as one), so a definition maps the same whichever decoder read
    /// the event.
    pub(super) fn get(&self, name: &str) -> Result<Option<Option<FieldValue<'_>>>, String> {
        use crate::read::etl::kernel::KernelEvent as K;
        Ok(match self {
            EventFields::Json(_, v) => v.get(name).map(json_value),
            EventFields::TraceLogging(schema, values) => {
                match schema.fields.iter().position(|f| f.name == name) {
                    Some(i) => match values.get(i) {
                        Some(v) => Some(tracelogging_value(v)?),
                        None => None,
                    },
                    None => None,
                }
            }
            EventFields::Kernel(k) => {
                let direct = match (k, name) {
                    (K::CSwitch { new_thread_id, .. }, "new_thread_id") => *new_thread_id,
                    (K::CSwitch { old_thread_id, .. }, "old_thread_id") => *old_thread_id,
                    (
                        K::CSwitch {
                            old_thread_wait_reason,
                            ..
                        },
                        "old_thread_wait_reason",
                    ) => u32::from(*old_thread_wait_reason),
                    (K::ReadyThread { thread_id, .. }, "thread_id") => *thread_id,
                    (K::Thread { thread_id, .. }, "thread_id") => *thread_id,
                    (K::Thread { process_id, .. }, "process_id") => *process_id,
                    // Anything else, as its JSON form names it.
                    _ => {
                        return Ok(serde_json::to_value(k)
                            .ok()
                            .and_then(|v| v.get(name).map(|j| json_value(j).map(owned))))
                    }
                };
                Some(Some(FieldValue::Number(u64::from(direct))))
            }
        })
    }

    /// [`EventFields::get`] for the last read of a field: a decoded
    /// TraceLogging string is moved out, not copied (a second read would
    /// find it empty).
    pub(super) fn take(&mut self, name: &str) -> Result<Option<Option<FieldValue<'_>>>, String> {
        if let EventFields::TraceLogging(schema, values) = self {
            let at = schema.fields.iter().position(|f| f.name == name);
            if let Some(Value::Str(s)) = at.and_then(|i| values.get_mut(i)) {
                return Ok(Some(Some(FieldValue::Text(Cow::Owned(std::mem::take(s))))));
            }
        }
        self.get(name)
    }
}

/// A JSON value as a model value: null is none, a string its text, a
/// non-negative integer a number, anything else its JSON text.
fn json_value(v: &Json) -> Option<FieldValue<'_>> {
    match v {
        Json::Null => None,
        Json::String(s) => Some(FieldValue::Text(Cow::Borrowed(s))),
        Json::Number(n) => Some(match n.as_u64() {
            Some(n) => FieldValue::Number(n),
            None => FieldValue::Text(Cow::Owned(n.to_string())),
        }),
        other => Some(FieldValue::Text(Cow::Owned(other.to_string()))),
    }
}

/// A decoded TraceLogging value as a model value, as its JSON form reads
/// (strings, integers and hex integers without building JSON).
fn tracelogging_value<'v>(v: &'v Value<'_>) -> Result<Option<FieldValue<'v>>, String> {
    Ok(match v {
        Value::Null => None,
        Value::Str(s) => Some(FieldValue::Text(Cow::Borrowed(s))),
        Value::U64(n) => Some(FieldValue::Number(*n)),
        Value::Hex(n) => Some(FieldValue::Text(Cow::Owned(format!("{n:#x}")))),
        other => {
            let json = serde_json::to_value(other).map_err(|e| e.to_string())?;
            json_value(&json).map(owned)
        }
    })
}

/// The value, owning its text.
fn owned(v: FieldValue<'_>) -> FieldValue<'static> {
    match v {
        FieldValue::Text(t) => FieldValue::Text(Cow::Owned(t.into_owned())),
        FieldValue::Number(n) => FieldValue::Number(n),
    }
}

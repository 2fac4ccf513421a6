//! Provider definitions (providers/*.toml): declarative mappings from ETW
//! events to model records, so supporting a new source is data, not code.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::Value as Json;

use crate::model::record::{FieldValue, ModelField, FIELDS};
use crate::model::{Evidence, Record, RecordKind};
use crate::providers::config::{self, ConfigError};
use crate::providers::fields::{insertion_strings, EventFields};
use crate::providers::manifest::ManifestSet;
use crate::providers::patterns::{split_tag, Pattern, PatternDef};
use crate::providers::prefilter::MessageIndex;
use crate::read::etl::cursor::Cursor;
use crate::read::etl::kernel;
use crate::read::etl::tracelogging::{self, Fields, Schema, SchemaCache};
use crate::read::etl::{Event, Guid};
use crate::read::text::ansi_lossy;

/// The definitions rhscope ships, built into the binary.
const EMBEDDED: [(&str, &str); 3] = [
    (
        "providers/rhscope-resource.toml",
        include_str!("../../providers/rhscope-resource.toml"),
    ),
    (
        "providers/failover-clustering.toml",
        include_str!("../../providers/failover-clustering.toml"),
    ),
    (
        "providers/kernel.toml",
        include_str!("../../providers/kernel.toml"),
    ),
];

/// Files in a providers folder that are not provider definitions.
const NOT_DEFINITIONS: [&str; 1] = ["usage-table.toml"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decoder {
    /// Self-describing events, matched by event name.
    Tracelogging,
    /// Manifest events, matched by id; payload read with `payload`.
    Manifest,
    /// Kernel (MOF) events, matched by name such as "Thread/CSwitch".
    Kernel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PayloadType {
    UnicodeString,
    AnsiString,
    U8,
    U16,
    U32,
    U64,
    Guid,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadField {
    name: String,
    #[serde(rename = "type")]
    ty: PayloadType,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProviderHeader {
    pub name: String,
    /// Omitted for TraceLogging providers: derived from the name.
    pub guid: Option<Guid>,
    pub decoder: Decoder,
    /// Level and keywords to enable when capturing.
    #[serde(default = "default_level")]
    pub level: u8,
    #[serde(default)]
    pub keywords: u64,
}

fn default_level() -> u8 {
    5
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct EventDef {
    /// TraceLogging event name, or kernel event name ("Thread/Start").
    name: Option<String>,
    /// Manifest event id.
    id: Option<u16>,
    /// Every event of the provider.
    #[serde(default)]
    any: bool,
    record: RecordKind,
    /// model field -> event field.
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    provider: ProviderHeader,
    #[serde(default)]
    payload: Vec<PayloadField>,
    #[serde(default)]
    event: Vec<EventDef>,
    #[serde(default)]
    pattern: Vec<PatternDef>,
}

/// An `[[event]]` as mapping reads it: its fields named once, when the
/// definition is loaded, not for every event.
#[derive(Debug, Clone)]
struct EventMap {
    name: Option<String>,
    id: Option<u16>,
    any: bool,
    record: RecordKind,
    /// In the definition's order (by model field name).
    fields: Vec<(ModelField, EventField)>,
    /// Some field is an insertion string.
    insertion_strings: bool,
}

/// Where a model field's value is in an event.
#[derive(Debug, Clone)]
enum EventField {
    /// `%N`: the N-th insertion string (from 1).
    Insertion(usize),
    /// A decoded field by name; `optional` (`name?`): some versions of the
    /// event lack it. `last`: no later model field of the event reads it,
    /// so its value is moved into the record, not copied.
    Named {
        name: String,
        optional: bool,
        last: bool,
    },
}

impl EventMap {
    fn new(def: &EventDef, mut fields: Vec<(ModelField, EventField)>) -> EventMap {
        for i in 0..fields.len() {
            let (before, after) = fields.split_at_mut(i + 1);
            if let EventField::Named { name, last, .. } = &mut before[i].1 {
                *last = !after
                    .iter()
                    .any(|(_, f)| matches!(f, EventField::Named { name: n, .. } if n == name));
            }
        }
        EventMap {
            name: def.name.clone(),
            id: def.id,
            any: def.any,
            record: def.record,
            insertion_strings: fields
                .iter()
                .any(|(_, f)| matches!(f, EventField::Insertion(_))),
            fields,
        }
    }
}

/// One loaded provider definition.
#[derive(Debug, Clone)]
pub struct ProviderDef {
    pub path: PathBuf,
    pub header: ProviderHeader,
    pub guid: Guid,
    payload: Vec<PayloadField>,
    events: Vec<EventMap>,
    /// Some event is matched by name (so every event is decoded to learn
    /// its name).
    wants_name: bool,
    patterns: Vec<Pattern>,
}

/// The message patterns' index, and the (definition, pattern) each of its
/// patterns is.
type Messages = (MessageIndex, Vec<(usize, usize)>);

/// Every provider definition in use, indexed for mapping events.
#[derive(Debug, Clone, Default)]
pub struct ProviderSet {
    defs: Vec<ProviderDef>,
    /// Looked up for every event: foldhash, not SipHash (which hashed a
    /// GUID field by field, 3.6% of analysing a trace).
    by_guid: HashMap<Guid, usize, foldhash::fast::RandomState>,
    kernel: Option<usize>,
    /// Decode manifest events whose definition gives no [[payload]].
    manifests: Arc<ManifestSet>,
    /// Every definition's message patterns indexed by what they must
    /// contain, and which (definition, pattern) each is: a log line that
    /// matches nothing (most do) costs one pass, not one per pattern.
    /// Built when a first message is matched (its automaton takes
    /// milliseconds, which a trace without messages need not wait for).
    messages: OnceLock<Option<Messages>>,
}

impl ProviderSet {
    /// The definitions built into the binary.
    pub fn embedded() -> ProviderSet {
        let mut set = ProviderSet::default();
        for (path, text) in EMBEDDED {
            // Tested: a failure here is a build defect.
            set.add(
                ProviderDef::parse(text, Path::new(path))
                    .expect("built-in provider definitions are valid"),
            )
            .expect("built-in provider definitions do not overlap");
        }
        set
    }

    /// Uses these manifests for manifest providers mapped by field name.
    pub fn with_manifests(mut self, manifests: ManifestSet) -> ProviderSet {
        self.manifests = Arc::new(manifests);
        self
    }

    pub fn manifests(&self) -> &ManifestSet {
        &self.manifests
    }

    /// Every `*.toml` definition in a folder (sorted by name).
    pub fn load_dir(dir: &Path) -> Result<ProviderSet, ConfigError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| ConfigError::new(dir, "", None, format!("cannot read folder: {e}")))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| NOT_DEFINITIONS.iter().any(|x| n == *x))
            })
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(ConfigError::new(
                dir,
                "",
                None,
                "no provider definitions (*.toml) in this folder",
            ));
        }
        let mut set = ProviderSet::default();
        for p in paths {
            set.add(ProviderDef::parse(&config::read(&p)?, &p)?)?;
        }
        Ok(set)
    }

    fn add(&mut self, def: ProviderDef) -> Result<(), ConfigError> {
        let i = self.defs.len();
        if def.header.decoder == Decoder::Kernel {
            if let Some(other) = self.kernel {
                return Err(ConfigError::new(
                    &def.path,
                    "",
                    None,
                    format!(
                        "a second kernel definition ({} has one)",
                        self.defs[other].path.display()
                    ),
                ));
            }
            self.kernel = Some(i);
        } else if let Some(&other) = self.by_guid.get(&def.guid) {
            return Err(ConfigError::new(
                &def.path,
                "",
                None,
                format!(
                    "provider {} is also defined in {}",
                    def.guid,
                    self.defs[other].path.display()
                ),
            ));
        } else {
            self.by_guid.insert(def.guid, i);
        }
        self.defs.push(def);
        self.messages = OnceLock::new();
        Ok(())
    }

    /// The message index over every definition's patterns, built once.
    fn message_index(&self) -> Option<&Messages> {
        self.messages
            .get_or_init(|| {
                let mut which = Vec::new();
                let mut sources = Vec::new();
                for (d, def) in self.defs.iter().enumerate() {
                    for (k, source) in def.pattern_sources().enumerate() {
                        which.push((d, k));
                        sources.push(source);
                    }
                }
                MessageIndex::new(&sources).map(|index| (index, which))
            })
            .as_ref()
    }

    pub fn definitions(&self) -> &[ProviderDef] {
        &self.defs
    }

    /// The definition an event belongs to, if any.
    pub fn definition_for(&self, ev: &Event<'_>) -> Option<&ProviderDef> {
        let i = match ev.kernel_group {
            Some(_) => self.kernel?,
            None => *self.by_guid.get(&ev.provider).or_else(|| {
                crate::read::etl::known::kernel_group_by_guid(&ev.provider)
                    .and(self.kernel.as_ref())
            })?,
        };
        Some(&self.defs[i])
    }

    /// The model record an event stands for, if a definition maps it.
    /// Errors name what in the event did not fit the definition.
    pub fn map(&self, ev: &Event<'_>) -> Option<Result<Record, String>> {
        self.definition_for(ev)?.map(ev, &self.manifests, None)
    }

    /// [`ProviderSet::map`], parsing each TraceLogging schema once, in
    /// `schemas`: what a reader of many events of one trace calls.
    pub fn map_with(
        &self,
        ev: &Event<'_>,
        schemas: &mut SchemaCache,
    ) -> Option<Result<Record, String>> {
        self.definition_for(ev)?
            .map(ev, &self.manifests, Some(schemas))
    }

    /// Applies message patterns of every definition to a text line (as
    /// cluster.log lines need); None when no pattern matches.
    pub fn match_message(
        &self,
        message: &str,
        component: &str,
        base: &Record,
    ) -> Option<Result<Record, String>> {
        match self.message_index() {
            Some((index, which)) => index.find_map(message, |m| {
                let (d, k) = which[m];
                self.defs[d].patterns[k].apply(message, component, base)
            }),
            None => self
                .defs
                .iter()
                .find_map(|d| d.apply_patterns(message, component, base)),
        }
    }
}

impl ProviderDef {
    /// Its message patterns' sources, in the order they are tried.
    pub fn pattern_sources(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(Pattern::source)
    }

    pub fn parse(text: &str, path: &Path) -> Result<ProviderDef, ConfigError> {
        let file: ProviderFile = config::parse_toml(text, path)?;
        let at = |needle: &str| text.find(needle);
        let err = |needle: &str, msg: String| ConfigError::new(path, text, at(needle), msg);
        let guid = match (file.provider.guid, file.provider.decoder) {
            (Some(g), _) => g,
            (None, Decoder::Tracelogging) => Guid::from_provider_name(&file.provider.name),
            (None, Decoder::Kernel) => Guid::NIL,
            (None, Decoder::Manifest) => {
                return Err(err(
                    "[provider]",
                    "a manifest provider needs its `guid`".into(),
                ))
            }
        };
        let mut events = Vec::with_capacity(file.event.len());
        for ev in &file.event {
            let key = ev
                .name
                .as_deref()
                .map(|n| format!("\"{n}\""))
                .or(ev.id.map(|i| format!("id = {i}")))
                .unwrap_or_else(|| "any".into());
            let selectors =
                usize::from(ev.name.is_some()) + usize::from(ev.id.is_some()) + usize::from(ev.any);
            if selectors != 1 {
                return Err(err(
                    &key,
                    "an [[event]] needs exactly one of `name`, `id` or `any`".into(),
                ));
            }
            match file.provider.decoder {
                Decoder::Manifest if ev.name.is_some() => {
                    return Err(err(
                        &key,
                        "manifest events are matched by `id` (or `any`), not `name`".into(),
                    ))
                }
                Decoder::Tracelogging | Decoder::Kernel if ev.id.is_some() => {
                    return Err(err(
                        &key,
                        "this provider's events are matched by `name`, not `id`".into(),
                    ))
                }
                _ => {}
            }
            let mut fields = Vec::with_capacity(ev.fields.len());
            for (model_field, event_field) in &ev.fields {
                let Some(model_field) = ModelField::from_name(model_field) else {
                    return Err(err(
                        &format!("{model_field} ="),
                        format!(
                            "unknown model field {model_field:?} (known: {})",
                            FIELDS.join(", ")
                        ),
                    ));
                };
                // `last` is set by EventMap::new, which sees every field.
                let source = match positional(event_field) {
                    Some(n) => EventField::Insertion(n),
                    None => match event_field.strip_suffix('?') {
                        Some(name) => EventField::Named {
                            name: name.to_string(),
                            optional: true,
                            last: false,
                        },
                        None => EventField::Named {
                            name: event_field.clone(),
                            optional: false,
                            last: false,
                        },
                    },
                };
                fields.push((model_field, source));
            }
            events.push(EventMap::new(ev, fields));
        }
        let patterns = file
            .pattern
            .iter()
            .map(|p| Pattern::compile(p, &err))
            .collect::<Result<_, _>>()?;
        Ok(ProviderDef {
            path: path.to_path_buf(),
            guid,
            header: file.provider,
            payload: file.payload,
            wants_name: events.iter().any(|e| e.name.is_some()),
            events,
            patterns,
        })
    }

    /// The event's fields, by the decoder this provider uses.
    fn fields<'a>(
        &self,
        ev: &Event<'a>,
        manifests: &ManifestSet,
        schemas: Option<&mut SchemaCache>,
    ) -> Result<EventFields<'a>, String> {
        match self.header.decoder {
            Decoder::Tracelogging | Decoder::Kernel => {
                // The decoders as `Event::decode_payload` tries them:
                // TraceLogging where the event has a schema, then kernel.
                if let Some((bytes, base)) = tracelogging::schema_of(ev) {
                    let schema = match schemas {
                        Some(cache) => cache.get(bytes, base),
                        None => Schema::parse(bytes, base).map(Arc::new),
                    }
                    .map_err(|e| e.to_string())?;
                    let values = schema
                        .decode_values(ev.payload, ev.pointer_size, base)
                        .map_err(|e| e.to_string())?;
                    return Ok(EventFields::TraceLogging(schema, values));
                }
                match kernel::decode(ev).transpose().map_err(|e| e.to_string())? {
                    Some(k) => Ok(EventFields::Kernel(k)),
                    None => Ok(EventFields::Json(None, Json::Null)),
                }
            }
            Decoder::Manifest if !self.payload.is_empty() => {
                self.read_payload(ev).map(|v| EventFields::Json(None, v))
            }
            Decoder::Manifest => match manifests.decode(ev) {
                Some(Ok(m)) => {
                    let v = serde_json::to_value(Fields(&m.fields)).map_err(|e| e.to_string())?;
                    Ok(EventFields::Json(Some(m.name), v))
                }
                Some(Err(e)) => Err(e.to_string()),
                None => Err(format!(
                    "no manifest describes event {} version {} (give one with --manifest)",
                    ev.descriptor.id, ev.descriptor.version
                )),
            },
        }
    }

    fn read_payload(&self, ev: &Event<'_>) -> Result<Json, String> {
        let mut c = Cursor::new(ev.payload, 0);
        let mut obj = serde_json::Map::new();
        for f in &self.payload {
            let v = match f.ty {
                PayloadType::UnicodeString => {
                    Json::from(c.utf16z("string field").map_err(|e| e.to_string())?)
                }
                PayloadType::AnsiString => Json::from(ansi_lossy(
                    c.cstr("string field").map_err(|e| e.to_string())?,
                )),
                PayloadType::U8 => Json::from(c.u8("u8 field").map_err(|e| e.to_string())?),
                PayloadType::U16 => Json::from(c.u16("u16 field").map_err(|e| e.to_string())?),
                PayloadType::U32 => Json::from(c.u32("u32 field").map_err(|e| e.to_string())?),
                PayloadType::U64 => Json::from(c.u64("u64 field").map_err(|e| e.to_string())?),
                PayloadType::Guid => {
                    Json::from(c.guid("GUID field").map_err(|e| e.to_string())?.to_string())
                }
            };
            obj.insert(f.name.clone(), v);
        }
        Ok(Json::Object(obj))
    }

    fn map(
        &self,
        ev: &Event<'_>,
        manifests: &ManifestSet,
        schemas: Option<&mut SchemaCache>,
    ) -> Option<Result<Record, String>> {
        let id = ev.descriptor.id;
        // Decode only events a definition could match.
        if !self.wants_name && !self.events.iter().any(|e| e.any || e.id == Some(id)) {
            return None;
        }
        let mut fields = match self.fields(ev, manifests, schemas) {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let name = fields.name();
        let def = self.events.iter().find(|e| {
            e.any
                || e.id == Some(id) && ev.kernel_group.is_none()
                || (e.name.is_some() && e.name.as_deref() == name.as_deref())
        })?;
        let mut record = Record::new(
            def.record,
            ev.time_ns,
            Evidence::etl(ev.location, ev.time_ns),
        );
        record.pid = ev.process_id;
        record.tid = ev.thread_id;
        record.cpu = ev.cpu;
        let strings = def.insertion_strings.then(|| insertion_strings(ev.payload));
        if def.id.is_some() {
            record.event = Some(u32::from(id));
        }
        for (model_field, event_field) in &def.fields {
            let (name, optional, last) = match event_field {
                EventField::Insertion(n) => {
                    // Insertion strings vary by the event's variant: one
                    // that is not there is no field, not an error.
                    let value = strings.as_ref().and_then(|s| s.get(n - 1));
                    if let Some(v) = value {
                        if let Err(e) = record.set_field(*model_field, FieldValue::Text(v.into())) {
                            return Some(Err(e));
                        }
                    }
                    continue;
                }
                EventField::Named {
                    name,
                    optional,
                    last,
                } => (name, *optional, *last),
            };
            let v = if last {
                fields.take(name)
            } else {
                fields.get(name)
            };
            let v = match v {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            let Some(v) = v else {
                if optional {
                    continue;
                }
                return Some(Err(format!(
                    "event has no field {name:?} for {}",
                    model_field.name()
                )));
            };
            // A null value is no value.
            let Some(v) = v else { continue };
            if let Err(e) = record.set_field(*model_field, v) {
                return Some(Err(e));
            }
        }
        if let Some(message) = record.message.as_deref() {
            // A diagnostic event's text may carry its line's `[TAG] `.
            let (component, text) = split_tag(message);
            if let Some(mapped) = self.apply_patterns(text, component, &record) {
                return Some(mapped);
            }
        }
        Some(Ok(record))
    }

    /// The record an event of `id` stands for, from its insertion strings
    /// (`%1` the first), where an `[[event]]` names that id: events read
    /// from an event log, whose fields are their strings.
    pub fn map_strings(
        &self,
        id: u16,
        strings: &[String],
        base: Record,
    ) -> Option<Result<Record, String>> {
        let def = self.events.iter().find(|e| e.id == Some(id))?;
        let mut r = base;
        r.kind = def.record;
        r.event = Some(u32::from(id));
        for (model_field, event_field) in &def.fields {
            let EventField::Insertion(n) = event_field else {
                continue;
            };
            if let Some(Err(e)) = strings
                .get(n - 1)
                .map(|v| r.set_field(*model_field, FieldValue::Text(v.into())))
            {
                return Some(Err(e));
            }
        }
        Some(Ok(r))
    }

    fn apply_patterns(
        &self,
        message: &str,
        component: &str,
        base: &Record,
    ) -> Option<Result<Record, String>> {
        self.patterns
            .iter()
            .find_map(|p| p.apply(message, component, base))
    }
}

/// `%N` (N from 1): the N-th insertion string.
fn positional(field: &str) -> Option<usize> {
    field.strip_prefix('%')?.parse().ok().filter(|&n| n > 0)
}

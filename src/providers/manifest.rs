//! Instrumentation manifests (.man): the XML that describes a manifest-based
//! provider's events (id and version -> template of typed, named fields;
//! value and bit maps for enums and flags). With one, payloads of manifest
//! events decode into named fields in `dump`, provider definitions and the
//! analysis.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::providers::config::ConfigError;
use crate::read::etl::cursor::Cursor;
use crate::read::etl::header::filetime_to_utc;
use crate::read::etl::tracelogging::{self as tl, Field, Value};
use crate::read::etl::{EtlError, Event, EventRow, Guid};
use crate::read::text::{ansi_lossy, utf16_lossy};

/// The subsets of published manifests rhscope ships (manifests/).
const EMBEDDED: [(&str, &str); 2] = [
    (
        "manifests/Microsoft-Windows-PowerShell.man",
        include_str!("../../manifests/Microsoft-Windows-PowerShell.man"),
    ),
    (
        "manifests/Microsoft-Windows-DotNETRuntime.man",
        include_str!("../../manifests/Microsoft-Windows-DotNETRuntime.man"),
    ),
];

/// How many values a length or count may ask for before the payload is
/// taken to be corrupt (a count of 4 billion must not allocate).
const MAX_VALUES: u64 = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Amount {
    Fixed(u64),
    /// The value of an earlier field of the same template, by index.
    Field(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DataDef {
    name: String,
    in_type: u8,
    /// Shown as hex (win:HexInt*, Win32Error, HResult, NTStatus, Pointer).
    hex: bool,
    map: Option<String>,
    /// Bytes for win:Binary, characters for strings.
    length: Option<Amount>,
    /// An array of this many.
    count: Option<Amount>,
    /// For a <struct>: its members.
    members: Vec<DataDef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Map {
    Values(Vec<(u64, String)>),
    Bits(Vec<(u64, String)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EventDef {
    name: String,
    template: Vec<DataDef>,
}

/// One provider of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestProvider {
    pub name: String,
    pub guid: Guid,
    pub path: PathBuf,
    events: HashMap<(u16, u8), EventDef>,
    maps: HashMap<String, Map>,
}

impl ManifestProvider {
    /// (id, version) of every event it describes.
    pub fn events(&self) -> impl Iterator<Item = (u16, u8)> + '_ {
        self.events.keys().copied()
    }
}

/// A decoded manifest event.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestEvent<'a> {
    pub provider: String,
    /// The event's symbol, or its task and opcode names.
    pub name: String,
    pub fields: Vec<Field<'a>>,
    /// Payload bytes after the template's last field (0 when the template
    /// fits the event exactly).
    pub trailing: usize,
}

/// Every manifest in use, by provider GUID.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    providers: HashMap<Guid, ManifestProvider>,
}

impl ManifestSet {
    /// The manifests built into the binary.
    pub fn embedded() -> ManifestSet {
        let mut set = ManifestSet::default();
        for (path, text) in EMBEDDED {
            // Tested: a failure here is a build defect.
            set.add_text(text, Path::new(path))
                .expect("built-in manifests are valid");
        }
        set
    }

    /// Adds a manifest file, or every *.man in a folder.
    pub fn add_path(&mut self, path: &Path) -> Result<(), ConfigError> {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| {
                ConfigError::new(path, "", None, format!("cannot read folder: {e}"))
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "man" || x == "xml"))
                .collect();
            files.sort();
            for f in files {
                self.add_path(&f)?;
            }
            return Ok(());
        }
        let text = crate::providers::config::read(path)?;
        self.add_text(&text, path)
    }

    /// Parses manifest XML; a provider already known is replaced (a file
    /// given on the command line wins over the built-in subset).
    pub fn add_text(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        for p in parse(text, path)? {
            self.providers.insert(p.guid, p);
        }
        Ok(())
    }

    pub fn providers(&self) -> impl Iterator<Item = &ManifestProvider> {
        self.providers.values()
    }

    /// Decodes an event whose provider and (id, version) a manifest
    /// describes; None otherwise.
    pub fn decode<'a>(&self, ev: &Event<'a>) -> Option<Result<ManifestEvent<'a>, EtlError>> {
        if ev.kernel_group.is_some() {
            return None;
        }
        let p = self.providers.get(&ev.provider)?;
        let def = p.events.get(&(ev.descriptor.id, ev.descriptor.version))?;
        let base = ev.location.file_offset().unwrap_or(0);
        let mut d = Decoder {
            c: Cursor::new(ev.payload, base),
            pointer_size: ev.pointer_size,
            maps: &p.maps,
            budget: MAX_VALUES,
        };
        Some(d.fields(&def.template).map(|fields| ManifestEvent {
            provider: p.name.clone(),
            name: def.name.clone(),
            fields,
            trailing: d.c.remaining(),
        }))
    }

    /// Puts a manifest decoding into a dump row that no other decoder
    /// filled.
    pub fn fill_row(&self, ev: &Event<'_>, row: &mut EventRow) {
        if row.fields.is_some() {
            return;
        }
        match self.decode(ev) {
            Some(Ok(m)) => {
                row.event = Some(m.name);
                row.fields = serde_json::to_value(tl::Fields(&m.fields)).ok();
                row.payload = None;
                if row.provider_name.is_none() {
                    row.provider_name = Some(m.provider);
                }
            }
            Some(Err(e)) => row.decode_error = Some(e.to_string()),
            None => {}
        }
    }
}

struct Decoder<'a, 'm> {
    c: Cursor<'a>,
    pointer_size: u8,
    maps: &'m HashMap<String, Map>,
    budget: u64,
}

impl<'a> Decoder<'a, '_> {
    fn fields(&mut self, defs: &[DataDef]) -> Result<Vec<Field<'a>>, EtlError> {
        let mut out: Vec<Field<'a>> = Vec::with_capacity(defs.len());
        for d in defs {
            let amount = |a: Option<Amount>, out: &[Field<'a>]| -> Result<Option<u64>, EtlError> {
                Ok(match a {
                    None => None,
                    Some(Amount::Fixed(n)) => Some(n),
                    Some(Amount::Field(i)) => Some(match out.get(i).map(|f| &f.value) {
                        Some(Value::U64(n)) | Some(Value::Hex(n)) => *n,
                        Some(Value::I64(n)) if *n >= 0 => *n as u64,
                        _ => 0,
                    }),
                })
            };
            let length = amount(d.length, &out)?;
            let value = match amount(d.count, &out)? {
                Some(n) => {
                    self.spend(n)?;
                    let mut items = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        items.push(self.one(d, length)?);
                    }
                    Value::Array(items)
                }
                None => self.one(d, length)?,
            };
            out.push(Field {
                name: d.name.clone().into(),
                value,
            });
        }
        Ok(out)
    }

    fn spend(&mut self, n: u64) -> Result<(), EtlError> {
        if n > self.budget {
            return Err(too_many(self.c.offset(), n));
        }
        self.budget -= n;
        Ok(())
    }

    fn one(&mut self, d: &DataDef, length: Option<u64>) -> Result<Value<'a>, EtlError> {
        if !d.members.is_empty() {
            return Ok(Value::Struct(self.fields(&d.members)?));
        }
        self.spend(1)?;
        let c = &mut self.c;
        let v = match d.in_type {
            tl::IN_UNICODESTRING => match length {
                Some(n) => {
                    // A length from the payload: bounded before it sizes a read.
                    if n > self.budget {
                        return Err(too_many(c.offset(), n));
                    }
                    self.budget -= n;
                    let b = c.bytes(n as usize * 2, "manifest UTF-16 string")?;
                    Value::Str(utf16_lossy(b).trim_end_matches('\0').to_string())
                }
                None => Value::Str(c.utf16z("manifest UTF-16 string")?),
            },
            tl::IN_ANSISTRING => match length {
                Some(n) if n > self.budget => return Err(too_many(c.offset(), n)),
                Some(n) => Value::Str(ansi_lossy(c.bytes(n as usize, "manifest ANSI string")?)),
                None => Value::Str(ansi_lossy(c.cstr("manifest ANSI string")?)),
            },
            tl::IN_INT8 => Value::I64(i64::from(c.u8("manifest int8")? as i8)),
            tl::IN_UINT8 => number(self.maps, u64::from(c.u8("manifest uint8")?), d),
            tl::IN_INT16 => Value::I64(i64::from(c.u16("manifest int16")? as i16)),
            tl::IN_UINT16 => number(self.maps, u64::from(c.u16("manifest uint16")?), d),
            tl::IN_INT32 => Value::I64(i64::from(c.u32("manifest int32")? as i32)),
            tl::IN_UINT32 | tl::IN_HEXINT32 => {
                number(self.maps, u64::from(c.u32("manifest uint32")?), d)
            }
            tl::IN_INT64 => Value::I64(c.u64("manifest int64")? as i64),
            tl::IN_UINT64 | tl::IN_HEXINT64 => number(self.maps, c.u64("manifest uint64")?, d),
            tl::IN_FLOAT => Value::F64(f64::from(f32::from_bits(c.u32("manifest float")?))),
            tl::IN_DOUBLE => Value::F64(f64::from_bits(c.u64("manifest double")?)),
            tl::IN_BOOL32 => Value::Bool(c.u32("manifest boolean")? != 0),
            tl::IN_BINARY => {
                let n = length.unwrap_or(0);
                if n > self.budget {
                    return Err(too_many(c.offset(), n));
                }
                self.budget -= n;
                Value::Binary(c.bytes(n as usize, "manifest binary")?)
            }
            tl::IN_GUID => Value::Guid(c.guid("manifest GUID")?),
            tl::IN_POINTER => Value::Hex(c.pointer(self.pointer_size, "manifest pointer")?),
            tl::IN_FILETIME => {
                let ft = c.i64("manifest FILETIME")?;
                filetime_to_utc(ft).map_or(Value::InvalidTime(ft), Value::Time)
            }
            tl::IN_SYSTEMTIME => tl::systemtime(c.array::<16>("manifest SYSTEMTIME")?),
            tl::IN_SID => Value::Sid(c.sid("manifest SID")?),
            other => {
                return Err(EtlError::corrupt(
                    "manifest event payload",
                    c.offset(),
                    format!(
                        "field {:?} has in-type {other}, which rhscope cannot read",
                        d.name
                    ),
                ))
            }
        };
        Ok(v)
    }
}

fn too_many(offset: u64, n: u64) -> EtlError {
    EtlError::corrupt(
        "manifest event payload",
        offset,
        format!("a count or length of {n} is more than any event holds"),
    )
}

/// An unsigned number, through its map when it has one.
fn number<'a>(maps: &HashMap<String, Map>, v: u64, d: &DataDef) -> Value<'a> {
    match d.map.as_ref().and_then(|m| maps.get(m)) {
        Some(Map::Values(list)) => match list.iter().find(|(k, _)| *k == v) {
            Some((_, name)) => Value::Str(name.clone()),
            None => Value::U64(v),
        },
        Some(Map::Bits(list)) => {
            let mut names: Vec<String> = Vec::new();
            let mut rest = v;
            for (bit, name) in list {
                if *bit != 0 && v & bit == *bit {
                    names.push(name.clone());
                    rest &= !bit;
                }
            }
            if rest != 0 || names.is_empty() {
                names.push(format!("{rest:#x}"));
            }
            Value::Str(names.join(" | "))
        }
        None if d.hex => Value::Hex(v),
        None => Value::U64(v),
    }
}

const IN_TYPES: [(&str, u8); 21] = [
    ("win:UnicodeString", tl::IN_UNICODESTRING),
    ("win:AnsiString", tl::IN_ANSISTRING),
    ("win:Int8", tl::IN_INT8),
    ("win:UInt8", tl::IN_UINT8),
    ("win:Int16", tl::IN_INT16),
    ("win:UInt16", tl::IN_UINT16),
    ("win:Int32", tl::IN_INT32),
    ("win:UInt32", tl::IN_UINT32),
    ("win:Int64", tl::IN_INT64),
    ("win:UInt64", tl::IN_UINT64),
    ("win:Float", tl::IN_FLOAT),
    ("win:Double", tl::IN_DOUBLE),
    ("win:Boolean", tl::IN_BOOL32),
    ("win:Binary", tl::IN_BINARY),
    ("win:GUID", tl::IN_GUID),
    ("win:Pointer", tl::IN_POINTER),
    ("win:FILETIME", tl::IN_FILETIME),
    ("win:SYSTEMTIME", tl::IN_SYSTEMTIME),
    ("win:SID", tl::IN_SID),
    ("win:HexInt32", tl::IN_HEXINT32),
    ("win:HexInt64", tl::IN_HEXINT64),
];

const HEX_OUT_TYPES: [&str; 5] = [
    "win:HexInt32",
    "win:HexInt64",
    "win:Win32Error",
    "win:HResult",
    "win:NTStatus",
];

fn parse(text: &str, path: &Path) -> Result<Vec<ManifestProvider>, ConfigError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| {
        let pos = e.pos();
        let text = e.to_string();
        let text = text
            .strip_suffix(&format!(" at {}:{}", pos.row, pos.col))
            .unwrap_or(&text);
        ConfigError {
            path: path.to_path_buf(),
            line: pos.row as usize,
            column: pos.col as usize,
            message: format!("bad XML: {text}"),
        }
    })?;
    let err = |node: roxmltree::Node, msg: String| {
        ConfigError::new(path, text, Some(node.range().start), msg)
    };
    let strings: HashMap<&str, &str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("string"))
        .filter_map(|n| Some((n.attribute("id")?, n.attribute("value")?)))
        .collect();
    let message = |m: &str| -> String {
        m.strip_prefix("$(string.")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|id| strings.get(id).copied())
            .unwrap_or(m)
            .to_string()
    };
    let number = |node: roxmltree::Node, s: &str| {
        crate::read::text::parse_u64(s).ok_or_else(|| err(node, format!("{s:?} is not a number")))
    };
    let mut out = Vec::new();
    for p in doc.descendants().filter(|n| n.has_tag_name("provider")) {
        let name = p
            .attribute("name")
            .ok_or_else(|| err(p, "a <provider> needs a `name`".into()))?;
        let guid: Guid = p
            .attribute("guid")
            .ok_or_else(|| err(p, format!("provider {name:?} has no `guid`")))?
            .trim_matches(|c| c == '{' || c == '}')
            .parse()
            .map_err(|e| err(p, format!("provider {name:?}: bad guid: {e}")))?;
        let maps = value_maps(p, &err, &number, &message)?;
        let mut templates: HashMap<&str, Vec<DataDef>> = HashMap::new();
        for t in p.descendants().filter(|n| n.has_tag_name("template")) {
            let tid = t
                .attribute("tid")
                .ok_or_else(|| err(t, "a <template> needs a `tid`".into()))?;
            templates.insert(tid, members(t, &maps, &err, &number)?);
        }
        let events = events(p, &templates, &err, &number)?;
        out.push(ManifestProvider {
            name: name.to_string(),
            guid,
            path: path.to_path_buf(),
            events,
            maps,
        });
    }
    if out.is_empty() {
        return Err(ConfigError::new(
            path,
            text,
            None,
            "no <provider> in this manifest",
        ));
    }
    Ok(out)
}

/// A provider's value and bit maps, by name.
fn value_maps(
    p: roxmltree::Node,
    err: &dyn Fn(roxmltree::Node, String) -> ConfigError,
    number: &dyn Fn(roxmltree::Node, &str) -> Result<u64, ConfigError>,
    message: &dyn Fn(&str) -> String,
) -> Result<HashMap<String, Map>, ConfigError> {
    let mut maps = HashMap::new();
    for m in p
        .descendants()
        .filter(|n| n.has_tag_name("valueMap") || n.has_tag_name("bitMap"))
    {
        let map_name = m
            .attribute("name")
            .ok_or_else(|| err(m, "a map needs a `name`".into()))?;
        let mut entries = Vec::new();
        for e in m.children().filter(|n| n.has_tag_name("map")) {
            let v = e
                .attribute("value")
                .ok_or_else(|| err(e, "a <map> needs a `value`".into()))?;
            entries.push((number(e, v)?, message(e.attribute("message").unwrap_or(v))));
        }
        let map = if m.has_tag_name("bitMap") {
            Map::Bits(entries)
        } else {
            Map::Values(entries)
        };
        maps.insert(map_name.to_string(), map);
    }
    Ok(maps)
}

/// A provider's events, by id and version.
fn events(
    p: roxmltree::Node,
    templates: &HashMap<&str, Vec<DataDef>>,
    err: &dyn Fn(roxmltree::Node, String) -> ConfigError,
    number: &dyn Fn(roxmltree::Node, &str) -> Result<u64, ConfigError>,
) -> Result<HashMap<(u16, u8), EventDef>, ConfigError> {
    let mut events = HashMap::new();
    for e in p.descendants().filter(|n| n.has_tag_name("event")) {
        let id = e
            .attribute("value")
            .ok_or_else(|| err(e, "an <event> needs a `value` (its id)".into()))?;
        let id = u16::try_from(number(e, id)?)
            .map_err(|_| err(e, format!("event id {id} is over 65535")))?;
        let version = match e.attribute("version") {
            Some(v) => u8::try_from(number(e, v)?)
                .map_err(|_| err(e, format!("event version {v} is over 255")))?,
            None => 0,
        };
        let template = match e.attribute("template") {
            Some(t) => templates.get(t).cloned().ok_or_else(|| {
                err(
                    e,
                    format!("event {id} names template {t:?}, which is not defined"),
                )
            })?,
            None => Vec::new(),
        };
        let strip = |s: &str| s.rsplit(':').next().unwrap_or(s).to_string();
        let name = match e.attribute("symbol") {
            Some(s) => s.to_string(),
            None => match (e.attribute("task"), e.attribute("opcode")) {
                (Some(t), Some(o)) => format!("{t}/{}", strip(o)),
                (Some(t), None) => t.to_string(),
                _ => format!("event {id}"),
            },
        };
        if events
            .insert((id, version), EventDef { name, template })
            .is_some()
        {
            return Err(err(
                e,
                format!("event {id} version {version} is defined twice"),
            ));
        }
    }
    Ok(events)
}

/// The <data> and <struct> children of a template or struct.
fn members(
    parent: roxmltree::Node,
    maps: &HashMap<String, Map>,
    err: &dyn Fn(roxmltree::Node, String) -> ConfigError,
    number: &dyn Fn(roxmltree::Node, &str) -> Result<u64, ConfigError>,
) -> Result<Vec<DataDef>, ConfigError> {
    let mut out: Vec<DataDef> = Vec::new();
    for n in parent.children().filter(|n| n.is_element()) {
        let is_struct = n.has_tag_name("struct");
        if !is_struct && !n.has_tag_name("data") {
            continue;
        }
        let name = n
            .attribute("name")
            .ok_or_else(|| err(n, "a <data> needs a `name`".into()))?
            .to_string();
        let amount = |attr: &str| -> Result<Option<Amount>, ConfigError> {
            let Some(v) = n.attribute(attr) else {
                return Ok(None);
            };
            if v.chars().all(|c| c.is_ascii_digit()) {
                return Ok(Some(Amount::Fixed(number(n, v)?)));
            }
            out.iter()
                .position(|d| d.name == v)
                .map(|i| Some(Amount::Field(i)))
                .ok_or_else(|| {
                    err(
                        n,
                        format!("{name:?}: {attr} {v:?} names no earlier field of the template"),
                    )
                })
        };
        let (length, count) = (amount("length")?, amount("count")?);
        if is_struct {
            out.push(DataDef {
                name: name.clone(),
                in_type: tl::IN_STRUCT,
                hex: false,
                map: None,
                length: None,
                count,
                members: members(n, maps, err, number)?,
            });
            continue;
        }
        let in_name = n
            .attribute("inType")
            .ok_or_else(|| err(n, format!("{name:?} has no `inType`")))?;
        let in_type = IN_TYPES
            .iter()
            .find(|(t, _)| *t == in_name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                err(
                    n,
                    format!("{name:?}: in-type {in_name:?} is not one rhscope reads"),
                )
            })?;
        if in_type == tl::IN_BINARY && length.is_none() {
            return Err(err(n, format!("{name:?}: win:Binary needs a `length`")));
        }
        let map = n.attribute("map").map(str::to_string);
        if let Some(m) = &map {
            if !maps.contains_key(m) {
                return Err(err(
                    n,
                    format!("{name:?} names map {m:?}, which is not defined"),
                ));
            }
        }
        let hex = matches!(in_type, tl::IN_HEXINT32 | tl::IN_HEXINT64)
            || n.attribute("outType")
                .is_some_and(|o| HEX_OUT_TYPES.contains(&o));
        out.push(DataDef {
            name,
            in_type,
            hex,
            map,
            length,
            count,
            members: Vec::new(),
        });
    }
    Ok(out)
}

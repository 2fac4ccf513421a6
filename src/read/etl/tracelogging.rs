//! TraceLogging: self-describing events. The schema (extended item 11)
//! names the event and its fields with their in-types; the payload packs the
//! values with no padding. Provider names come from provider traits.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::cursor::{ansi_lossy, utf16_lossy, Cursor};
use super::error::{EtlError, Result};
use super::extended::hex;
use super::guid::Guid;
use super::header::filetime_to_utc;
use super::record::Event;

// In-types (TlgIn*), low 5 bits of the in-type byte.
pub const IN_NULL: u8 = 0;
pub const IN_UNICODESTRING: u8 = 1;
pub const IN_ANSISTRING: u8 = 2;
pub const IN_INT8: u8 = 3;
pub const IN_UINT8: u8 = 4;
pub const IN_INT16: u8 = 5;
pub const IN_UINT16: u8 = 6;
pub const IN_INT32: u8 = 7;
pub const IN_UINT32: u8 = 8;
pub const IN_INT64: u8 = 9;
pub const IN_UINT64: u8 = 10;
pub const IN_FLOAT: u8 = 11;
pub const IN_DOUBLE: u8 = 12;
pub const IN_BOOL32: u8 = 13;
pub const IN_BINARY: u8 = 14;
pub const IN_GUID: u8 = 15;
pub const IN_POINTER: u8 = 16;
pub const IN_FILETIME: u8 = 17;
pub const IN_SYSTEMTIME: u8 = 18;
pub const IN_SID: u8 = 19;
pub const IN_HEXINT32: u8 = 20;
pub const IN_HEXINT64: u8 = 21;
pub const IN_COUNTEDSTRING: u8 = 22;
pub const IN_COUNTEDANSISTRING: u8 = 23;
pub const IN_STRUCT: u8 = 24;
pub const IN_COUNTEDBINARY: u8 = 25;

const IN_TYPE_MASK: u8 = 0x1f;
const IN_CCOUNT: u8 = 0x20;
const IN_VCOUNT: u8 = 0x40;
const IN_CUSTOM: u8 = 0x60;
const CHAIN: u8 = 0x80;

// Out-types (TlgOut*) that change how a value reads.
pub const OUT_STRING: u8 = 2;
pub const OUT_BOOLEAN: u8 = 3;
pub const OUT_HEX: u8 = 4;
pub const OUT_IPV4: u8 = 8;
pub const OUT_WIN32ERROR: u8 = 13;
pub const OUT_NTSTATUS: u8 = 14;
pub const OUT_HRESULT: u8 = 15;
pub const OUT_UTF8: u8 = 35;

/// Nesting and value caps: a schema is untrusted input, and a struct of no
/// fields repeated 65535 times inside itself must not take forever.
const MAX_DEPTH: usize = 32;
const MAX_VALUES: usize = 1 << 20;

/// A decoded value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    /// Integers the schema says to show in hex (pointers, HRESULTs, ...).
    #[serde(serialize_with = "ser_hex")]
    Hex(u64),
    Str(String),
    #[serde(serialize_with = "ser_bytes")]
    Binary(&'a [u8]),
    Guid(Guid),
    Time(DateTime<Utc>),
    /// A time field whose value is not a valid date, kept raw.
    InvalidTime(i64),
    Sid(String),
    Array(Vec<Value<'a>>),
    #[serde(serialize_with = "ser_struct")]
    Struct(Vec<Field<'a>>),
}

fn ser_hex<S: serde::Serializer>(v: &u64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:#x}"))
}
fn ser_bytes<S: serde::Serializer>(v: &&[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex(v))
}
fn ser_struct<S: serde::Serializer>(v: &[Field<'_>], s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for f in v {
        m.serialize_entry(&f.name, &f.value)?;
    }
    m.end()
}

/// A named value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Field<'a> {
    pub name: Cow<'a, str>,
    pub value: Value<'a>,
}

/// Fields serialise as a JSON object in schema order.
pub struct Fields<'s, 'a>(pub &'s [Field<'a>]);

impl serde::Serialize for Fields<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        ser_struct(self.0, s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    One,
    Const(u16),
    Var,
}

/// One field of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef<'a> {
    pub name: Cow<'a, str>,
    pub in_type: u8,
    pub out_type: u8,
    count: Count,
    pub children: Vec<FieldDef<'a>>,
}

/// A parsed TraceLogging event schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema<'a> {
    pub event_name: Cow<'a, str>,
    pub tags: u32,
    pub fields: Vec<FieldDef<'a>>,
}

/// A TraceLogging event: its name and decoded fields.
#[derive(Debug, Clone, PartialEq)]
pub struct TlEvent<'a> {
    pub name: Cow<'a, str>,
    pub fields: Vec<Field<'a>>,
}

fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

struct FlatField<'a> {
    name: Cow<'a, str>,
    in_type: u8,
    out_type: u8,
    count: Count,
}

impl<'a> Schema<'a> {
    /// Parses schema bytes; `base` is their file offset, for errors.
    pub fn parse(data: &'a [u8], base: u64) -> Result<Schema<'a>> {
        let mut c = Cursor::new(data, base);
        let size = usize::from(c.u16("TraceLogging schema size")?);
        if size < 2 || size > data.len() {
            return Err(EtlError::corrupt(
                "TraceLogging schema",
                base,
                format!("declares {size} bytes, item holds {}", data.len()),
            ));
        }
        let mut c = Cursor::new(&data[..size], base);
        c.skip(2, "TraceLogging schema size")?;
        let tags = read_tags(&mut c, "TraceLogging event tags")?;
        let event_name = utf8(c.cstr("TraceLogging event name")?);
        let mut flat = Vec::new();
        while !c.is_empty() {
            let name = utf8(c.cstr("TraceLogging field name")?);
            let in_byte = c.u8("TraceLogging field in-type")?;
            let mut out_type = 0;
            if in_byte & CHAIN != 0 {
                let out_byte = c.u8("TraceLogging field out-type")?;
                out_type = out_byte & 0x7f;
                if out_byte & CHAIN != 0 {
                    read_tags(&mut c, "TraceLogging field tags")?;
                }
            }
            let count = match in_byte & IN_CUSTOM {
                0 => Count::One,
                IN_CCOUNT => Count::Const(c.u16("TraceLogging array length")?),
                IN_VCOUNT => Count::Var,
                _ => {
                    // Custom-serialised field: a schema blob we cannot decode.
                    let n = usize::from(c.u16("TraceLogging custom schema size")?);
                    c.skip(n, "TraceLogging custom schema")?;
                    return Err(EtlError::corrupt(
                        "TraceLogging schema",
                        c.offset(),
                        format!("field {name:?} uses a custom serializer"),
                    ));
                }
            };
            flat.push(FlatField {
                name,
                in_type: in_byte & IN_TYPE_MASK,
                out_type,
                count,
            });
        }
        let mut iter = flat.into_iter();
        let fields = build_tree(&mut iter, usize::MAX, 0, base)?;
        Ok(Schema {
            event_name,
            tags,
            fields,
        })
    }

    /// Decodes a payload against this schema.
    pub fn decode(&self, payload: &'a [u8], pointer_size: u8, base: u64) -> Result<Vec<Field<'a>>> {
        Decoder::new(payload, pointer_size, base).fields(&self.fields)
    }

    /// Decodes a payload's top-level values, one per `self.fields` (whose
    /// names they go by): what a schema shared by many events, from a
    /// [`SchemaCache`], decodes to without naming every value again.
    pub fn decode_values<'p>(
        &self,
        payload: &'p [u8],
        pointer_size: u8,
        base: u64,
    ) -> Result<Vec<Value<'p>>>
    where
        'a: 'p,
    {
        let mut d = Decoder::new(payload, pointer_size, base);
        self.fields.iter().map(|def| d.field(def)).collect()
    }

    /// The same schema owning its names, to outlive the event it came in.
    pub fn into_owned(self) -> Schema<'static> {
        Schema {
            event_name: Cow::Owned(self.event_name.into_owned()),
            tags: self.tags,
            fields: self.fields.into_iter().map(FieldDef::into_owned).collect(),
        }
    }
}

impl FieldDef<'_> {
    fn into_owned(self) -> FieldDef<'static> {
        FieldDef {
            name: Cow::Owned(self.name.into_owned()),
            in_type: self.in_type,
            out_type: self.out_type,
            count: self.count,
            children: self
                .children
                .into_iter()
                .map(FieldDef::into_owned)
                .collect(),
        }
    }
}

/// Parsed schemas by their bytes. Every event of a TraceLogging event
/// carries its schema, and a trace has few: parsing each event's again
/// was a tenth of analysing a trace.
#[derive(Default)]
pub struct SchemaCache {
    schemas: HashMap<Box<[u8]>, Arc<Schema<'static>>, foldhash::fast::RandomState>,
}

impl SchemaCache {
    /// Schemas kept at most: a damaged or hostile trace can have a new one
    /// in every event; past this they are parsed each time.
    const MAX: usize = 4096;

    /// The schema in `bytes` (an event's schema item; `base` its offset,
    /// for errors), parsed once. A schema that does not parse is not kept.
    pub fn get(&mut self, bytes: &[u8], base: u64) -> Result<Arc<Schema<'static>>> {
        if let Some(schema) = self.schemas.get(bytes) {
            return Ok(Arc::clone(schema));
        }
        let schema = Arc::new(Schema::parse(bytes, base)?.into_owned());
        if self.schemas.len() < Self::MAX {
            self.schemas.insert(bytes.into(), Arc::clone(&schema));
        }
        Ok(schema)
    }
}

fn read_tags(c: &mut Cursor<'_>, what: &'static str) -> Result<u32> {
    // Up to 4 bytes, 7 bits each, while the high bit says more follow.
    let mut tags = 0u32;
    for i in 0..4 {
        let b = c.u8(what)?;
        tags |= u32::from(b & 0x7f) << (21 - 7 * i);
        if b & CHAIN == 0 {
            break;
        }
    }
    Ok(tags)
}

fn build_tree<'a>(
    iter: &mut std::vec::IntoIter<FlatField<'a>>,
    max: usize,
    depth: usize,
    base: u64,
) -> Result<Vec<FieldDef<'a>>> {
    if depth > MAX_DEPTH {
        return Err(EtlError::corrupt(
            "TraceLogging schema",
            base,
            "structs nested too deep",
        ));
    }
    let mut out = Vec::new();
    while out.len() < max {
        let Some(f) = iter.next() else { break };
        let children = if f.in_type == IN_STRUCT {
            // A struct's out-type byte is the number of fields it holds.
            build_tree(iter, usize::from(f.out_type), depth + 1, base)?
        } else {
            Vec::new()
        };
        out.push(FieldDef {
            name: f.name,
            in_type: f.in_type,
            out_type: if f.in_type == IN_STRUCT {
                0
            } else {
                f.out_type
            },
            count: f.count,
            children,
        });
    }
    Ok(out)
}

struct Decoder<'a> {
    c: Cursor<'a>,
    pointer_size: u8,
    budget: usize,
}

impl<'a> Decoder<'a> {
    fn new(payload: &'a [u8], pointer_size: u8, base: u64) -> Self {
        Decoder {
            c: Cursor::new(payload, base),
            pointer_size,
            budget: MAX_VALUES,
        }
    }

    /// Names come from the schema: borrowed from the event where the schema
    /// is, copied where it is cached (nested structs only).
    fn fields<'d: 'a>(&mut self, defs: &[FieldDef<'d>]) -> Result<Vec<Field<'a>>> {
        defs.iter()
            .map(|def| {
                Ok(Field {
                    name: def.name.clone(),
                    value: self.field(def)?,
                })
            })
            .collect()
    }

    fn field<'d: 'a>(&mut self, def: &FieldDef<'d>) -> Result<Value<'a>> {
        let n = match def.count {
            Count::One => return self.scalar(def),
            Count::Const(n) => n,
            Count::Var => self.c.u16("TraceLogging array count")?,
        };
        // Arrays of 8- or 16-bit chars shown as strings read as one string.
        if def.out_type == OUT_STRING
            && matches!(def.in_type, IN_INT8 | IN_UINT8 | IN_UINT16 | IN_INT16)
        {
            let width = if matches!(def.in_type, IN_UINT16 | IN_INT16) {
                2
            } else {
                1
            };
            let bytes = self
                .c
                .bytes(usize::from(n) * width, "TraceLogging char array")?;
            let s = if width == 2 {
                utf16_lossy(bytes)
            } else {
                ansi_lossy(bytes)
            };
            return Ok(Value::Str(s.trim_end_matches('\0').to_string()));
        }
        (0..n)
            .map(|_| self.scalar(def))
            .collect::<Result<_>>()
            .map(Value::Array)
    }

    fn scalar<'d: 'a>(&mut self, def: &FieldDef<'d>) -> Result<Value<'a>> {
        if self.budget == 0 {
            return Err(EtlError::corrupt(
                "TraceLogging payload",
                self.c.offset(),
                "more values than any event can hold",
            ));
        }
        self.budget -= 1;
        let c = &mut self.c;
        let out = def.out_type;
        Ok(match def.in_type {
            IN_NULL => Value::Null,
            IN_UNICODESTRING => Value::Str(c.utf16z("TraceLogging UTF-16 string")?),
            IN_ANSISTRING => Value::Str(ansi_lossy(c.cstr("TraceLogging ANSI string")?)),
            IN_INT8 => {
                let v = c.u8("TraceLogging int8")? as i8;
                match out {
                    OUT_BOOLEAN => Value::Bool(v != 0),
                    OUT_STRING => Value::Str(char::from(v as u8).to_string()),
                    _ => Value::I64(i64::from(v)),
                }
            }
            IN_UINT8 => {
                let v = c.u8("TraceLogging uint8")?;
                match out {
                    OUT_BOOLEAN => Value::Bool(v != 0),
                    OUT_STRING => Value::Str(char::from(v).to_string()),
                    OUT_HEX => Value::Hex(u64::from(v)),
                    _ => Value::U64(u64::from(v)),
                }
            }
            IN_INT16 => Value::I64(i64::from(c.u16("TraceLogging int16")? as i16)),
            IN_UINT16 => {
                let v = c.u16("TraceLogging uint16")?;
                match out {
                    OUT_STRING => Value::Str(utf16_lossy(&v.to_le_bytes())),
                    OUT_HEX => Value::Hex(u64::from(v)),
                    _ => Value::U64(u64::from(v)),
                }
            }
            IN_INT32 => {
                let v = c.u32("TraceLogging int32")?;
                match out {
                    OUT_HEX | OUT_HRESULT | OUT_NTSTATUS | OUT_WIN32ERROR => {
                        Value::Hex(u64::from(v))
                    }
                    _ => Value::I64(i64::from(v as i32)),
                }
            }
            IN_UINT32 => {
                let v = c.u32("TraceLogging uint32")?;
                match out {
                    OUT_HEX | OUT_HRESULT | OUT_NTSTATUS | OUT_WIN32ERROR => {
                        Value::Hex(u64::from(v))
                    }
                    OUT_BOOLEAN => Value::Bool(v != 0),
                    OUT_IPV4 => {
                        let b = v.to_le_bytes();
                        Value::Str(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
                    }
                    _ => Value::U64(u64::from(v)),
                }
            }
            IN_INT64 => {
                let v = c.u64("TraceLogging int64")?;
                if out == OUT_HEX {
                    Value::Hex(v)
                } else {
                    Value::I64(v as i64)
                }
            }
            IN_UINT64 => {
                let v = c.u64("TraceLogging uint64")?;
                if out == OUT_HEX {
                    Value::Hex(v)
                } else {
                    Value::U64(v)
                }
            }
            IN_FLOAT => Value::F64(f64::from(f32::from_bits(c.u32("TraceLogging float")?))),
            IN_DOUBLE => Value::F64(f64::from_bits(c.u64("TraceLogging double")?)),
            IN_BOOL32 => Value::Bool(c.u32("TraceLogging bool32")? != 0),
            IN_BINARY | IN_COUNTEDBINARY => {
                let n = usize::from(c.u16("TraceLogging binary length")?);
                Value::Binary(c.bytes(n, "TraceLogging binary")?)
            }
            IN_GUID => Value::Guid(c.guid("TraceLogging GUID")?),
            IN_POINTER => Value::Hex(c.pointer(self.pointer_size, "TraceLogging pointer")?),
            IN_FILETIME => {
                let ft = c.i64("TraceLogging FILETIME")?;
                filetime_to_utc(ft).map_or(Value::InvalidTime(ft), Value::Time)
            }
            IN_SYSTEMTIME => systemtime(c.array::<16>("TraceLogging SYSTEMTIME")?),
            IN_SID => Value::Sid(c.sid("TraceLogging SID")?),
            IN_HEXINT32 => Value::Hex(u64::from(c.u32("TraceLogging hexint32")?)),
            IN_HEXINT64 => Value::Hex(c.u64("TraceLogging hexint64")?),
            IN_COUNTEDSTRING => {
                let n = usize::from(c.u16("TraceLogging counted string length")?);
                Value::Str(utf16_lossy(c.bytes(n, "TraceLogging counted string")?))
            }
            IN_COUNTEDANSISTRING => {
                let n = usize::from(c.u16("TraceLogging counted string length")?);
                let b = c.bytes(n, "TraceLogging counted ANSI string")?;
                Value::Str(if out == OUT_UTF8 {
                    utf8(b).into_owned()
                } else {
                    ansi_lossy(b)
                })
            }
            IN_STRUCT => Value::Struct(self.fields(&def.children)?),
            other => {
                return Err(EtlError::corrupt(
                    "TraceLogging schema",
                    self.c.offset(),
                    format!("field {:?} has unknown in-type {other}", def.name),
                ))
            }
        })
    }
}

/// SYSTEMTIME {year, month, day-of-week, day, hour, minute, second, ms}.
pub(crate) fn systemtime(b: [u8; 16]) -> Value<'static> {
    let w = |i: usize| u32::from(u16::from_le_bytes([b[2 * i], b[2 * i + 1]]));
    NaiveDate::from_ymd_opt(w(0) as i32, w(1), w(3))
        .and_then(|d| d.and_hms_milli_opt(w(4), w(5), w(6), w(7)))
        .map_or(
            Value::InvalidTime(i64::from_le_bytes([
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
            ])),
            |t| Value::Time(t.and_utc()),
        )
}

/// A TraceLogging event's schema item and the offset its errors name;
/// None when the event carries no schema.
pub fn schema_of<'a>(event: &Event<'a>) -> Option<(&'a [u8], u64)> {
    let bytes = event.extended.tracelogging_schema()?;
    let base = event
        .location
        .file_offset()
        .unwrap_or(event.location.buffer_offset);
    Some((bytes, base))
}

/// Decodes a TraceLogging event: None when the event carries no schema.
pub fn decode<'a>(event: &Event<'a>) -> Option<Result<TlEvent<'a>>> {
    let (schema_bytes, base) = schema_of(event)?;
    Some(Schema::parse(schema_bytes, base).and_then(|schema| {
        let fields = schema.decode(event.payload, event.pointer_size, base)?;
        Ok(TlEvent {
            name: schema.event_name,
            fields,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = vec![0, 0, 0];
        b.extend_from_slice(b"Ev\0");
        for (name, ty) in fields {
            b.extend_from_slice(name.as_bytes());
            b.push(0);
            b.extend_from_slice(ty);
        }
        let n = b.len() as u16;
        b[..2].copy_from_slice(&n.to_le_bytes());
        b
    }

    #[test]
    fn structs_arrays_and_strings_decode() {
        let s = schema(&[
            ("pt", &[IN_STRUCT | CHAIN, 2]),
            ("x", &[IN_INT32]),
            ("y", &[IN_UINT16 | CHAIN, OUT_HEX]),
            ("list", &[IN_UINT8 | IN_VCOUNT]),
            ("fixed", &[IN_INT16 | IN_CCOUNT, 2, 0]),
            ("name", &[IN_COUNTEDSTRING]),
        ]);
        let schema = Schema::parse(&s, 0).unwrap();
        assert_eq!(schema.event_name, "Ev");
        assert_eq!(schema.fields.len(), 4);
        assert_eq!(schema.fields[0].children.len(), 2);
        let mut p = Vec::new();
        p.extend_from_slice(&(-5i32).to_le_bytes());
        p.extend_from_slice(&0xbeefu16.to_le_bytes());
        p.extend_from_slice(&[2, 0, 7, 9]);
        p.extend_from_slice(&[1, 0, 0xff, 0xff]);
        p.extend_from_slice(&[4, 0, b'h', 0, b'i', 0]);
        let fields = schema.decode(&p, 8, 0).unwrap();
        let json = serde_json::to_string(&Fields(&fields)).unwrap();
        assert_eq!(
            json,
            r#"{"pt":{"x":-5,"y":"0xbeef"},"list":[7,9],"fixed":[1,-1],"name":"hi"}"#
        );
        assert!(schema.decode(&p[..p.len() - 1], 8, 0).is_err());
    }

    #[test]
    fn a_cached_schema_decodes_the_same_values() {
        let s = schema(&[
            ("pt", &[IN_STRUCT | CHAIN, 2]),
            ("x", &[IN_INT32]),
            ("y", &[IN_UINT16 | CHAIN, OUT_HEX]),
            ("name", &[IN_UNICODESTRING]),
        ]);
        let mut p = Vec::new();
        p.extend_from_slice(&(-5i32).to_le_bytes());
        p.extend_from_slice(&0xbeefu16.to_le_bytes());
        p.extend_from_slice(&[b'h', 0, b'i', 0, 0, 0]);
        let direct = Schema::parse(&s, 0).unwrap().decode(&p, 8, 0).unwrap();
        let mut cache = SchemaCache::default();
        let first = cache.get(&s, 0).unwrap();
        // The same bytes at another place (another event): parsed once.
        let again = cache.get(&s.clone(), 512).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.event_name, "Ev");
        let values = again.decode_values(&p, 8, 0).unwrap();
        let named: Vec<_> = again.fields.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(named, ["pt", "name"]);
        let direct_values: Vec<_> = direct.into_iter().map(|f| f.value).collect();
        assert_eq!(values, direct_values);
        assert_eq!(values[1], Value::Str("hi".into()));
        // A schema that does not parse is the same error each time, never kept.
        let mut bad = s.clone();
        bad[..2].copy_from_slice(&500u16.to_le_bytes());
        let e = cache.get(&bad, 77).unwrap_err().to_string();
        assert_eq!(e, Schema::parse(&bad, 77).unwrap_err().to_string());
        assert_eq!(cache.schemas.len(), 1);
    }

    #[test]
    fn self_nested_empty_structs_are_bounded() {
        let mut fields: Vec<(&str, &[u8])> = Vec::new();
        for _ in 0..40 {
            fields.push(("s", &[IN_STRUCT | CHAIN | IN_CCOUNT, 1, 0xff, 0xff]));
        }
        let s = schema(&fields);
        // Either refused as too deep or decoded within the value budget.
        if let Ok(schema) = Schema::parse(&s, 0) {
            assert!(schema.decode(&[], 8, 0).is_err());
        }
    }
}

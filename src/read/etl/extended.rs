//! Extended data items that follow an EVENT_HEADER when its flags say so:
//! related activity id, user SID, stacks, TraceLogging schema and provider
//! traits, keys. Stored as {u16 item size, u16 type, u16 linkage, u16 data
//! size} then data, each item padded to 8 bytes.

use std::borrow::Cow;

use super::cursor::Cursor;
use super::error::{EtlError, Result};
use super::guid::Guid;
use super::record::InstanceIds;

// EVENT_HEADER_EXT_TYPE_* (evntcons.h; 9 and up from newer SDKs).
pub const EXT_RELATED_ACTIVITYID: u16 = 1;
pub const EXT_SID: u16 = 2;
pub const EXT_TS_ID: u16 = 3;
pub const EXT_INSTANCE_INFO: u16 = 4;
pub const EXT_STACK_TRACE32: u16 = 5;
pub const EXT_STACK_TRACE64: u16 = 6;
pub const EXT_PEBS_INDEX: u16 = 7;
pub const EXT_PMC_COUNTERS: u16 = 8;
pub const EXT_PSM_KEY: u16 = 9;
pub const EXT_EVENT_KEY: u16 = 10;
pub const EXT_EVENT_SCHEMA_TL: u16 = 11;
pub const EXT_PROV_TRAITS: u16 = 12;
pub const EXT_PROCESS_START_KEY: u16 = 13;
pub const EXT_CONTROL_GUID: u16 = 14;
pub const EXT_QPC_DELTA: u16 = 15;
pub const EXT_CONTAINER_ID: u16 = 16;
pub const EXT_STACK_KEY32: u16 = 17;
pub const EXT_STACK_KEY64: u16 = 18;

const ITEM_HEADER: usize = 8;

/// The extended data of one event, not yet decoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtendedData<'a> {
    bytes: &'a [u8],
    base: u64,
}

/// One extended data item, decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExtendedItem<'a> {
    RelatedActivityId(Guid),
    Sid(String),
    TsId(u32),
    InstanceInfo(InstanceIds),
    StackTrace {
        match_id: u64,
        frames: Vec<u64>,
    },
    PebsIndex(u64),
    PmcCounters(Vec<u64>),
    PsmKey(u64),
    EventKey(u64),
    #[serde(skip)]
    TraceLoggingSchema(&'a [u8]),
    #[serde(skip)]
    ProviderTraits(&'a [u8]),
    ProcessStartKey(u64),
    ControlGuid(Guid),
    QpcDelta(u64),
    ContainerId(Guid),
    StackKey {
        match_id: u64,
        key: u64,
    },
    Raw {
        ext_type: u16,
        data: String,
    },
}

/// Extended data items (type, data) in the layout they have in a file:
/// size, type, linkage, data size (u16 each), data, padding to 8 bytes.
pub fn encode_items(items: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (ext_type, data)) in items.iter().enumerate() {
        let size = (8 + data.len()).div_ceil(8) * 8;
        let more = u16::from(i + 1 < items.len());
        out.extend_from_slice(&(size.min(0xffff) as u16).to_le_bytes());
        out.extend_from_slice(&ext_type.to_le_bytes());
        out.extend_from_slice(&more.to_le_bytes());
        out.extend_from_slice(&(data.len().min(0xffff) as u16).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len() + size - 8 - data.len(), 0);
    }
    out
}

impl<'a> ExtendedData<'a> {
    pub fn empty() -> Self {
        ExtendedData {
            bytes: &[],
            base: 0,
        }
    }

    /// Splits the items off the front of `rest` (what follows the event
    /// header); returns them and the user payload after them.
    pub fn split(rest: &'a [u8], base: u64) -> Result<(ExtendedData<'a>, &'a [u8])> {
        let mut pos = 0usize;
        loop {
            // The item's header in one read: size, type, linkage, data
            // size (four reads of it were 8% of analysing a trace).
            let mut c = Cursor::new(&rest[pos..], base + pos as u64);
            let h: [u8; ITEM_HEADER] = c.array("extended data item header")?;
            let size = usize::from(u16::from_le_bytes([h[0], h[1]]));
            let linkage = u16::from_le_bytes([h[4], h[5]]);
            let data_size = usize::from(u16::from_le_bytes([h[6], h[7]]));
            if size < ITEM_HEADER + data_size || size > rest.len() - pos {
                return Err(EtlError::corrupt(
                    "extended data item",
                    base + pos as u64,
                    format!(
                        "item size {size} with {data_size} data bytes does not fit the {} bytes left",
                        rest.len() - pos
                    ),
                ));
            }
            pos += size;
            if linkage & 1 == 0 {
                break;
            }
        }
        Ok((
            ExtendedData {
                bytes: &rest[..pos],
                base,
            },
            &rest[pos..],
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// (type, data) of each item, in order. Sizes were checked by split().
    pub fn raw_items(&self) -> impl Iterator<Item = (u16, &'a [u8])> + 'a {
        let bytes = self.bytes;
        let mut pos = 0usize;
        std::iter::from_fn(move || {
            let h = bytes.get(pos..pos + ITEM_HEADER)?;
            let size = u16::from_le_bytes([h[0], h[1]]) as usize;
            let ext_type = u16::from_le_bytes([h[2], h[3]]);
            let data_size = u16::from_le_bytes([h[6], h[7]]) as usize;
            let data = bytes.get(pos + ITEM_HEADER..pos + ITEM_HEADER + data_size)?;
            pos += size.max(ITEM_HEADER);
            Some((ext_type, data))
        })
    }

    /// Data of the first item of a type.
    pub fn find(&self, ext_type: u16) -> Option<&'a [u8]> {
        self.raw_items()
            .find(|(t, _)| *t == ext_type)
            .map(|(_, d)| d)
    }

    pub fn items(&self) -> impl Iterator<Item = Result<ExtendedItem<'a>>> + 'a {
        let base = self.base;
        self.raw_items().map(move |(t, d)| decode_item(t, d, base))
    }

    /// The TraceLogging event schema (metadata), if the event has one.
    pub fn tracelogging_schema(&self) -> Option<&'a [u8]> {
        self.find(EXT_EVENT_SCHEMA_TL)
    }

    /// The provider name from TraceLogging provider traits.
    pub fn provider_name(&self) -> Option<Cow<'a, str>> {
        let traits = self.find(EXT_PROV_TRAITS)?;
        let name = traits.get(2..)?;
        let end = name.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&name[..end]))
    }
}

fn decode_item<'a>(ext_type: u16, data: &'a [u8], base: u64) -> Result<ExtendedItem<'a>> {
    let mut c = Cursor::new(data, base);
    let u64s = |c: &mut Cursor<'a>, what| -> Result<Vec<u64>> {
        (0..c.remaining() / 8).map(|_| c.u64(what)).collect()
    };
    Ok(match ext_type {
        EXT_RELATED_ACTIVITYID => ExtendedItem::RelatedActivityId(c.guid("related activity id")?),
        EXT_SID => ExtendedItem::Sid(c.sid("SID")?),
        EXT_TS_ID => ExtendedItem::TsId(c.u32("terminal session id")?),
        EXT_INSTANCE_INFO => ExtendedItem::InstanceInfo(InstanceIds {
            instance_id: c.u32("instance id")?,
            parent_instance_id: c.u32("parent instance id")?,
            parent_guid: c.guid("parent GUID")?,
        }),
        EXT_STACK_TRACE32 => {
            let match_id = c.u64("stack match id")?;
            let frames = (0..c.remaining() / 4)
                .map(|_| c.u32("stack frame").map(u64::from))
                .collect::<Result<_>>()?;
            ExtendedItem::StackTrace { match_id, frames }
        }
        EXT_STACK_TRACE64 => {
            let match_id = c.u64("stack match id")?;
            ExtendedItem::StackTrace {
                match_id,
                frames: u64s(&mut c, "stack frame")?,
            }
        }
        EXT_PEBS_INDEX => ExtendedItem::PebsIndex(c.u64("PEBS index")?),
        EXT_PMC_COUNTERS => ExtendedItem::PmcCounters(u64s(&mut c, "PMC counter")?),
        EXT_PSM_KEY => ExtendedItem::PsmKey(c.u64("PSM key")?),
        EXT_EVENT_KEY => ExtendedItem::EventKey(c.u64("event key")?),
        EXT_EVENT_SCHEMA_TL => ExtendedItem::TraceLoggingSchema(data),
        EXT_PROV_TRAITS => ExtendedItem::ProviderTraits(data),
        EXT_PROCESS_START_KEY => ExtendedItem::ProcessStartKey(c.u64("process start key")?),
        EXT_CONTROL_GUID => ExtendedItem::ControlGuid(c.guid("control GUID")?),
        EXT_QPC_DELTA => ExtendedItem::QpcDelta(c.u64("QPC delta")?),
        EXT_CONTAINER_ID => ExtendedItem::ContainerId(c.guid("container id")?),
        EXT_STACK_KEY32 => {
            let match_id = c.u64("stack match id")?;
            ExtendedItem::StackKey {
                match_id,
                key: u64::from(c.u32("stack key")?),
            }
        }
        EXT_STACK_KEY64 => {
            let match_id = c.u64("stack match id")?;
            ExtendedItem::StackKey {
                match_id,
                key: c.u64("stack key")?,
            }
        }
        _ => ExtendedItem::Raw {
            ext_type,
            data: hex(data),
        },
    })
}

/// Lower-case hex of bytes, as dumps show undecoded data.
pub fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(data.len() * 2);
    for &b in data {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A binary SID as "S-1-5-21-…", and the bytes it used.
pub fn format_sid(data: &[u8]) -> Option<(String, usize)> {
    let revision = *data.first()?;
    let count = *data.get(1)? as usize;
    let len = 8 + 4 * count;
    let bytes = data.get(..len)?;
    let authority = bytes[2..8]
        .iter()
        .fold(0u64, |a, &b| (a << 8) | u64::from(b));
    let mut s = format!("S-{revision}-{authority}");
    for sub in bytes[8..].chunks_exact(4) {
        s.push_str(&format!(
            "-{}",
            u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]])
        ));
    }
    Some((s, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_formats_like_windows() {
        let sid = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
        assert_eq!(format_sid(&sid), Some(("S-1-5-32-544".to_string(), 16)));
        assert_eq!(format_sid(&sid[..10]), None);
    }

    #[test]
    fn split_walks_linked_items_and_rejects_overruns() {
        let mut b = vec![16, 0, 3, 0, 1, 0, 4, 0, 7, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[24, 0, 1, 0, 0, 0, 16, 0]);
        b.extend_from_slice(&(1..=16).collect::<Vec<u8>>());
        b.extend_from_slice(b"payload");
        let (ext, payload) = ExtendedData::split(&b, 0).unwrap();
        assert_eq!(payload, b"payload");
        let items: Vec<_> = ext.items().collect::<Result<_>>().unwrap();
        assert_eq!(items[0], ExtendedItem::TsId(7));
        let want: Guid = "04030201-0605-0807-090a-0b0c0d0e0f10".parse().unwrap();
        assert_eq!(items[1], ExtendedItem::RelatedActivityId(want));
        b[16] = 200;
        assert!(ExtendedData::split(&b, 0).is_err());
    }
}

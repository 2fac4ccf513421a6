//! GUIDs as Windows stores them: Data1..Data3 little-endian, Data4 as bytes.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid {
    pub data1: u32,
    pub data2: u16,
    pub data3: u16,
    pub data4: [u8; 8],
}

impl Guid {
    pub const NIL: Guid = Guid::from_fields(0, 0, 0, [0; 8]);

    pub const fn from_fields(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Guid {
        Guid {
            data1,
            data2,
            data3,
            data4,
        }
    }

    /// Reads the 16-byte in-memory (and on-disk) layout of a Windows GUID.
    pub fn from_le_bytes(b: [u8; 16]) -> Guid {
        let mut data4 = [0u8; 8];
        data4.copy_from_slice(&b[8..16]);
        Guid {
            data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_le_bytes([b[4], b[5]]),
            data3: u16::from_le_bytes([b[6], b[7]]),
            data4,
        }
    }

    pub fn to_le_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.data1.to_le_bytes());
        b[4..6].copy_from_slice(&self.data2.to_le_bytes());
        b[6..8].copy_from_slice(&self.data3.to_le_bytes());
        b[8..16].copy_from_slice(&self.data4);
        b
    }

    pub fn is_nil(&self) -> bool {
        *self == Guid::NIL
    }

    /// The GUID TraceLogging and EventSource derive from a provider name:
    /// SHA-1 over a fixed namespace and the upper-cased name in UTF-16BE,
    /// first 16 bytes, version nibble 5.
    pub fn from_provider_name(name: &str) -> Guid {
        use sha1::{Digest, Sha1};
        const NAMESPACE: [u8; 16] = [
            0x48, 0x2c, 0x2d, 0xb2, 0xc3, 0x90, 0x47, 0xc8, 0x87, 0xf8, 0x1a, 0x15, 0xbf, 0xc1,
            0x30, 0xfb,
        ];
        let mut h = Sha1::new();
        h.update(NAMESPACE);
        for unit in name.to_uppercase().encode_utf16() {
            h.update(unit.to_be_bytes());
        }
        let digest = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[7] = (b[7] & 0x0f) | 0x50;
        Guid::from_le_bytes(b)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a GUID: {0:?} (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
pub struct ParseGuidError(pub String);

impl FromStr for Guid {
    type Err = ParseGuidError;

    /// Accepts the registry form with or without braces, any letter case.
    fn from_str(s: &str) -> Result<Guid, ParseGuidError> {
        let err = || ParseGuidError(s.to_string());
        let t = s.trim();
        let t = t
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(t);
        let parts: Vec<&str> = t.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if parts.len() != 5
            || parts
                .iter()
                .zip(lens)
                .any(|(p, n)| p.len() != n || !p.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(err());
        }
        let hex = |p: &str| u64::from_str_radix(p, 16).map_err(|_| err());
        let mut data4 = [0u8; 8];
        let tail = format!("{}{}", parts[3], parts[4]);
        for (i, slot) in data4.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&tail[i * 2..i * 2 + 2], 16).map_err(|_| err())?;
        }
        Ok(Guid {
            data1: hex(parts[0])? as u32,
            data2: hex(parts[1])? as u16,
            data3: hex(parts[2])? as u16,
            data4,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Guid, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_displays_and_round_trips_bytes() {
        let g: Guid = "{A0C1853B-5C40-4B15-8766-3CF1C58F985A}".parse().unwrap();
        assert_eq!(g.to_string(), "a0c1853b-5c40-4b15-8766-3cf1c58f985a");
        assert_eq!(g.data1, 0xa0c1853b);
        assert_eq!(g.data4, [0x87, 0x66, 0x3c, 0xf1, 0xc5, 0x8f, 0x98, 0x5a]);
        assert_eq!(Guid::from_le_bytes(g.to_le_bytes()), g);
        assert_eq!(&g.to_le_bytes()[..4], &[0x3b, 0x85, 0xc1, 0xa0]);
    }

    #[test]
    fn derives_provider_guids_from_names() {
        // GUIDs PerfView logged when it enabled these name-derived providers
        // for the net.4.5.2.x86.etl fixture (LogFile.txt in its zip); its
        // "PerfViewLogger" is the EventSource named "PerfView".
        assert_eq!(
            Guid::from_provider_name("PerfView").to_string(),
            "a8a71ac1-040f-54a2-07ca-00a89b5ab761"
        );
        assert_eq!(
            Guid::from_provider_name("DotNet").to_string(),
            "319dc449-ada5-50f7-428e-957db6791668"
        );
        assert_eq!(
            Guid::from_provider_name("Microsoft-Windows-ASPNET").to_string(),
            "ee799f41-cfa5-550b-bf2c-344747c1c668"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "a0c1853b5c404b1587663cf1c58f985a",
            "a0c1853b-5c40-4b15-8766-3cf1c58f985",
            "g0c1853b-5c40-4b15-8766-3cf1c58f985a",
            "+0c1853b-5c40-4b15-8766-3cf1c58f985a",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
    }
}

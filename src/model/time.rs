//! Time in the model: nanoseconds since 1970-01-01 UTC, as a number until a
//! printer writes it (RFC 3339, UTC, to the nanosecond).

use std::fmt;

/// A millisecond and a second, in nanoseconds.
pub const MS_NS: i64 = 1_000_000;
pub const SECOND_NS: i64 = 1_000_000_000;

/// A moment on a node's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn ns(self) -> i64 {
        self.0
    }

    /// RFC 3339 text: `2024-01-02T03:04:05.123456789Z`.
    pub fn rfc3339(self) -> String {
        rfc3339(self.0)
    }

    /// Parses RFC 3339 text (any offset) back into a time.
    pub fn parse(text: &str) -> Option<Timestamp> {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()?
            .timestamp_nanos_opt()
            .map(Timestamp)
    }
}

pub use crate::read::text::rfc3339;

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let t = Timestamp(1_700_000_000_123_456_789);
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(Timestamp::parse(&t.rfc3339()), Some(t));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}

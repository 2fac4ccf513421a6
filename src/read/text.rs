//! Text as Windows writes it, decoded without failing: UTF-16LE and 8-bit
//! strings, and numbers written in decimal or 0x-hex; and times as rhscope
//! writes them.

/// UTF-16LE bytes to a String; an odd trailing byte is ignored and unpaired
/// surrogates become U+FFFD.
pub fn utf16_lossy(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// 8-bit text as Windows writes it (mostly ASCII); invalid UTF-8 is replaced.
pub fn ansi_lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Decimal or 0x-hex.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Nanoseconds since 1970-01-01 UTC as RFC 3339 UTC text, to the
/// nanosecond.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

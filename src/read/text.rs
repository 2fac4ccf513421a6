//! Text as Windows writes it, decoded without failing: UTF-16LE and 8-bit
//! strings, and numbers written in decimal or 0x-hex; and times as rhscope
//! writes them.

/// UTF-16LE bytes to a String; an odd trailing byte is ignored and unpaired
/// surrogates become U+FFFD.
pub fn utf16_lossy(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len() & !1];
    // Nearly every string a node writes is ASCII: those units are copied
    // as bytes, eight at a time where they can be (in one store, into a
    // vector sized for every unit: pushing them cost a call and a capacity
    // check each, a third of decoding a node's log line), and only the
    // rest goes through the decoder.
    let mut ascii = vec![0u8; bytes.len() / 2];
    let mut n = 0;
    let mut rest = bytes;
    while let Some((chunk, after)) = rest.split_first_chunk::<16>() {
        let word = |i: usize| {
            u64::from_le_bytes([
                chunk[i],
                chunk[i + 1],
                chunk[i + 2],
                chunk[i + 3],
                chunk[i + 4],
                chunk[i + 5],
                chunk[i + 6],
                chunk[i + 7],
            ])
        };
        // Eight units are ASCII when no bit above the low seven of any is set.
        let (low, high) = (word(0), word(8));
        if (low | high) & 0xFF80_FF80_FF80_FF80 != 0 {
            break;
        }
        // Their low bytes packed into one word (an iterator over every
        // other byte took a fifth of decoding a string). Sixteen bytes in
        // make eight out, so the place is always there.
        let packed = u64::from(narrow(low)) | u64::from(narrow(high)) << 32;
        if let Some(out) = ascii.get_mut(n..).and_then(<[u8]>::first_chunk_mut::<8>) {
            *out = packed.to_le_bytes();
        }
        n += 8;
        rest = after;
    }
    while let [lo, 0, after @ ..] = rest {
        if *lo >= 0x80 {
            break;
        }
        if let Some(out) = ascii.get_mut(n) {
            *out = *lo;
        }
        n += 1;
        rest = after;
    }
    ascii.truncate(n);
    if rest.is_empty() {
        // All ASCII (nearly every string): the bytes are the string.
        return String::from_utf8(ascii).unwrap_or_default();
    }
    let mut out = String::with_capacity(bytes.len() / 2);
    // Only ASCII bytes were pushed: always valid UTF-8.
    out.push_str(std::str::from_utf8(&ascii).unwrap_or_default());
    let units = rest
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    out.extend(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)));
    out
}

/// The low bytes of four UTF-16LE units whose high bytes are zero, read as
/// one little-endian word: the four bytes in order.
fn narrow(units: u64) -> u32 {
    let pairs = (units | units >> 8) & 0x0000_FFFF_0000_FFFF;
    (pairs | pairs >> 16) as u32
}

/// 8-bit text as Windows writes it (mostly ASCII); invalid UTF-8 is replaced.
pub fn ansi_lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `s` after its first byte, if that is the ASCII byte `first`. A char
/// pattern's `strip_prefix` compares through a call to memcmp, a tenth of
/// splitting a node's log line.
pub fn strip_ascii(s: &str, first: u8) -> Option<&str> {
    debug_assert!(first.is_ascii());
    match s.as_bytes().first() {
        // An ASCII byte is a whole character: the rest starts at 1.
        Some(&b) if b == first => s.get(1..),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_ascii_takes_one_byte_of_a_whole_character() {
        assert_eq!(strip_ascii("[RES] x", b'['), Some("RES] x"));
        assert_eq!(strip_ascii("[", b'['), Some(""));
        assert_eq!(strip_ascii("RES", b'['), None);
        assert_eq!(strip_ascii("", b'['), None);
        // What follows may be any character, whole.
        assert_eq!(strip_ascii("x\u{e9}", b'x'), Some("\u{e9}"));
    }

    fn utf16(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn utf16_ascii_runs_and_the_rest() {
        for text in [
            "",
            "x",
            "exactly 8 units!",
            "a run of ASCII longer than sixteen units, then caf\u{e9} \u{1F600} and more ASCII after",
            "\u{e9}t\u{e9} first",
            "\u{100}", // a unit whose low byte is ASCII but high byte is not
        ] {
            assert_eq!(utf16_lossy(&utf16(text)), text);
        }
        // One unit that is not ASCII at each place of and around the
        // eight-unit steps.
        for at in 0..20 {
            let mut text: String = "abcdefghijklmnopqrst".into();
            text.replace_range(at..at + 1, "\u{100}");
            assert_eq!(utf16_lossy(&utf16(&text)), text, "at {at}");
        }
        // A lone surrogate after ASCII, an odd trailing byte.
        let mut b = utf16("abcdefghijklmnopq");
        b.extend([0x00, 0xD8, b'z', 0, 7]);
        assert_eq!(utf16_lossy(&b), "abcdefghijklmnopq\u{fffd}z");
    }
}

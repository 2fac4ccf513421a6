//! Decompression of XPRESS "plain LZ77" ([MS-XCA] section 2.4), the format
//! Windows uses for compressed ETW buffers (log file mode 0x04000000).
//!
//! Written here rather than taken from a crate: the one crate that implements
//! this format panics on some inputs and does not bound its output, and a
//! trace from the field is untrusted input. This version never writes more
//! than the caller's limit and never indexes out of bounds.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lz77Error {
    /// The input ended inside a flag word or a match.
    Truncated { input_offset: usize },
    /// A match refers back before the start of the output.
    BadDistance {
        input_offset: usize,
        distance: usize,
        produced: usize,
    },
    /// The extended length field is smaller than the lengths it extends.
    BadLength { input_offset: usize },
}

impl fmt::Display for Lz77Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lz77Error::Truncated { input_offset } => {
                write!(f, "compressed data ends early (at input byte {input_offset})")
            }
            Lz77Error::BadDistance { input_offset, distance, produced } => write!(
                f,
                "match at input byte {input_offset} reaches back {distance} bytes with only {produced} produced"
            ),
            Lz77Error::BadLength { input_offset } => {
                write!(f, "impossible match length at input byte {input_offset}")
            }
        }
    }
}

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn u8(&mut self) -> Result<usize, Lz77Error> {
        let b = *self.data.get(self.pos).ok_or(Lz77Error::Truncated {
            input_offset: self.pos,
        })?;
        self.pos += 1;
        Ok(b as usize)
    }
    fn u16(&mut self) -> Result<usize, Lz77Error> {
        Ok(self.u8()? | (self.u8()? << 8))
    }
    fn u32(&mut self) -> Result<usize, Lz77Error> {
        Ok(self.u16()? | (self.u16()? << 16))
    }
}

/// Appends the decompression of `input` to `out`, stopping once `out` holds
/// `limit` bytes in all (a match that would pass the limit is cut at it).
/// Returns when the input is used up or the limit is reached.
pub fn decompress_into(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), Lz77Error> {
    let start = out.len();
    let mut inp = Input {
        data: input,
        pos: 0,
    };
    let mut flags = 0usize;
    let mut flag_count = 0u32;
    // Lengths of 7..=21 share a byte between two matches, a nibble each.
    let mut half_byte_at: Option<usize> = None;

    while out.len() < limit {
        if flag_count == 0 {
            if inp.pos >= input.len() {
                return Ok(());
            }
            flags = inp.u32()?;
            flag_count = 32;
        }
        flag_count -= 1;
        if flags & (1 << flag_count) == 0 {
            match input.get(inp.pos) {
                Some(&b) => out.push(b),
                None => return Ok(()),
            }
            inp.pos += 1;
            continue;
        }
        if inp.pos == input.len() {
            return Ok(());
        }
        let match_at = inp.pos;
        let word = inp.u16()?;
        let distance = (word >> 3) + 1;
        let mut length = word & 7;
        if length == 7 {
            length = match half_byte_at.take() {
                None => {
                    half_byte_at = Some(inp.pos);
                    inp.u8()? & 0x0f
                }
                Some(at) => input[at] as usize >> 4,
            };
            if length == 15 {
                length = inp.u8()?;
                if length == 255 {
                    length = inp.u16()?;
                    if length == 0 {
                        length = inp.u32()?;
                    }
                    length = length.checked_sub(15 + 7).ok_or(Lz77Error::BadLength {
                        input_offset: match_at,
                    })?;
                }
                length += 15;
            }
            length += 7;
        }
        length += 3;
        let produced = out.len() - start;
        if distance > produced {
            return Err(Lz77Error::BadDistance {
                input_offset: match_at,
                distance,
                produced,
            });
        }
        let length = length.min(limit - out.len());
        let from = out.len() - distance;
        if distance >= length {
            out.extend_from_within(from..from + length);
        } else {
            // Overlapping copy: each byte may be one this match just wrote.
            for i in 0..length {
                let b = out[from + i];
                out.push(b);
            }
        }
    }
    Ok(())
}

/// A plain LZ77 compressor (greedy, hash of 3 bytes). Used by the trace
/// writer and by tests; Windows' own output decodes with the same routine.
pub fn compress(input: &[u8]) -> Vec<u8> {
    const MAX_DISTANCE: usize = 8192;
    let mut out = Vec::with_capacity(input.len() / 2 + 8);
    let mut table = vec![usize::MAX; 1 << 14];
    let hash = |i: usize| {
        let v = u32::from(input[i]) | u32::from(input[i + 1]) << 8 | u32::from(input[i + 2]) << 16;
        (v.wrapping_mul(2_654_435_761) >> 18) as usize
    };
    let mut flag_pos = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut flags: u32 = 0;
    let mut flag_count = 0;
    let mut half_byte_at: Option<usize> = None;
    let mut i = 0;
    let push_flag = |out: &mut Vec<u8>,
                     bit: u32,
                     flags: &mut u32,
                     flag_count: &mut u32,
                     flag_pos: &mut usize| {
        *flags = (*flags << 1) | bit;
        *flag_count += 1;
        if *flag_count == 32 {
            out[*flag_pos..*flag_pos + 4].copy_from_slice(&flags.to_le_bytes());
            *flag_pos = out.len();
            out.extend_from_slice(&[0; 4]);
            *flags = 0;
            *flag_count = 0;
        }
    };
    while i < input.len() {
        let mut best = 0;
        let mut best_dist = 0;
        if i + 3 <= input.len() {
            let h = hash(i);
            let cand = table[h];
            table[h] = i;
            if cand != usize::MAX && i - cand <= MAX_DISTANCE {
                let n = input[cand..]
                    .iter()
                    .zip(&input[i..])
                    .take_while(|(a, b)| a == b)
                    .count();
                if n >= 3 {
                    best = n;
                    best_dist = i - cand;
                }
            }
        }
        if best == 0 {
            out.push(input[i]);
            push_flag(&mut out, 0, &mut flags, &mut flag_count, &mut flag_pos);
            i += 1;
            continue;
        }
        let length = best - 3;
        let word = ((best_dist - 1) << 3) | length.min(7);
        out.extend_from_slice(&(word as u16).to_le_bytes());
        if length >= 7 {
            let rest = length - 7;
            let nibble = rest.min(15);
            match half_byte_at.take() {
                None => {
                    half_byte_at = Some(out.len());
                    out.push(nibble as u8);
                }
                Some(at) => out[at] |= (nibble as u8) << 4,
            }
            if rest >= 15 {
                let rest = rest - 15;
                if rest < 255 {
                    out.push(rest as u8);
                } else {
                    out.push(255);
                    // The wide field holds the whole length less 3.
                    let full = best - 3;
                    if full <= 0xffff {
                        out.extend_from_slice(&(full as u16).to_le_bytes());
                    } else {
                        out.extend_from_slice(&[0, 0]);
                        out.extend_from_slice(&(full as u32).to_le_bytes());
                    }
                }
            }
        }
        push_flag(&mut out, 1, &mut flags, &mut flag_count, &mut flag_pos);
        i += best;
    }
    // Fill the last flag word: remaining bits set mean "match", and the
    // decoder stops at the end of input when it meets one.
    let pad = 32 - flag_count;
    let last = if flag_count == 0 {
        u32::MAX
    } else {
        (flags << pad) | ((1u32 << pad) - 1)
    };
    out[flag_pos..flag_pos + 4].copy_from_slice(&last.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8]) {
        let c = compress(data);
        let mut out = Vec::new();
        decompress_into(&c, &mut out, data.len()).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn round_trips_literals_short_and_long_matches() {
        round_trip(b"");
        round_trip(b"a");
        round_trip(b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc");
        round_trip(&vec![7u8; 100_000]);
        let mixed: Vec<u8> = (0..20_000u32)
            .map(|i| ((i * 7919) % 251) as u8 ^ (i / 300) as u8)
            .collect();
        round_trip(&mixed);
        let runs: Vec<u8> = (0..300u32)
            .flat_map(|i| vec![i as u8; (i as usize % 40) + 1])
            .collect();
        round_trip(&runs);
    }

    #[test]
    fn output_is_bounded_by_the_limit() {
        let c = compress(&vec![1u8; 70_000]);
        let mut out = Vec::new();
        decompress_into(&c, &mut out, 1000).unwrap();
        assert_eq!(out.len(), 1000);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        // Flag word says "match" first, but nothing has been produced.
        let mut out = Vec::new();
        let e = decompress_into(&[0, 0, 0, 0x80, 0x08, 0x00], &mut out, 100).unwrap_err();
        assert!(matches!(e, Lz77Error::BadDistance { distance: 2, .. }));
        // Extended length field of zero then a cut-off u32.
        let e = decompress_into(
            &[0, 0, 0, 0x40, b'x', 0x07, 0, 0x0f, 0xff, 0, 0, 1],
            &mut out,
            100,
        )
        .unwrap_err();
        assert!(matches!(e, Lz77Error::Truncated { .. }));
    }
}

//! The trace's own header (TRACE_LOGFILE_HEADER, evntrace.h), carried as the
//! payload of the first record of the first buffer, and the clock it defines.

use chrono::{DateTime, Utc};

use super::cursor::{utf16_lossy, Cursor};
use super::error::{EtlError, Result};

/// 100 ns intervals between 1601-01-01 (FILETIME) and 1970-01-01.
pub const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

/// How raw record timestamps count time (ReservedFlags of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockType {
    /// QueryPerformanceCounter ticks at `perf_freq` per second.
    Qpc,
    /// FILETIME: 100 ns since 1601.
    SystemTime,
    /// CPU cycles at `cpu_speed_mhz`.
    CpuCycle,
}

/// Converts raw timestamps to absolute UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub kind: ClockType,
    /// Raw timestamp of the header record, the instant `start_filetime` names.
    pub reference_raw: i64,
    pub start_filetime: i64,
    /// Raw ticks per second (QPC frequency or CPU Hz).
    pub ticks_per_second: i64,
}

impl Clock {
    /// Nanoseconds since 1970-01-01 UTC.
    pub fn to_unix_nanos(&self, raw: i64) -> i64 {
        let ns = match self.kind {
            ClockType::SystemTime => (i128::from(raw) - i128::from(FILETIME_UNIX_EPOCH)) * 100,
            ClockType::Qpc | ClockType::CpuCycle => {
                let start =
                    (i128::from(self.start_filetime) - i128::from(FILETIME_UNIX_EPOCH)) * 100;
                let delta = i128::from(raw) - i128::from(self.reference_raw);
                start + delta * 1_000_000_000 / i128::from(self.ticks_per_second.max(1))
            }
        };
        ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    pub fn to_utc(&self, raw: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.to_unix_nanos(raw))
    }
}

/// FILETIME to UTC; None for zero (unset) values.
pub fn filetime_to_utc(ft: i64) -> Option<DateTime<Utc>> {
    (ft > 0).then(|| {
        let ns = (i128::from(ft) - i128::from(FILETIME_UNIX_EPOCH)) * 100;
        DateTime::from_timestamp_nanos(ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    })
}

/// TRACE_LOGFILE_HEADER, decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceHeader {
    pub buffer_size: u32,
    /// OS version of the logging machine, "major.minor.sub.subminor".
    pub os_version: String,
    /// OS build number.
    pub provider_version: u32,
    pub number_of_processors: u32,
    pub end_time: Option<DateTime<Utc>>,
    pub timer_resolution: u32,
    pub maximum_file_size: u32,
    pub log_file_mode: u32,
    pub buffers_written: u32,
    pub pointer_size: u32,
    pub events_lost: u32,
    pub cpu_speed_mhz: u32,
    pub time_zone_bias_minutes: i32,
    pub boot_time: Option<DateTime<Utc>>,
    pub perf_freq: i64,
    pub start_time: Option<DateTime<Utc>>,
    pub clock_type: ClockType,
    pub buffers_lost: u32,
    pub logger_name: String,
    pub log_file_name: String,
    #[serde(skip)]
    pub clock: Clock,
}

/// Log file mode bit of traces whose buffers are compressed.
pub const EVENT_TRACE_COMPRESSED_MODE: u32 = 0x0400_0000;

impl TraceHeader {
    /// Decodes the header payload. `pointer_size` is that of the record
    /// carrying it (it decides where the fields after the two name pointers
    /// lie); `raw_timestamp` is that record's timestamp; `base` is the
    /// payload's file offset, for errors.
    pub fn parse(
        payload: &[u8],
        pointer_size: u8,
        raw_timestamp: i64,
        base: u64,
    ) -> Result<TraceHeader> {
        let mut c = Cursor::new(payload, base);
        let buffer_size = c.u32("trace header buffer size")?;
        let v = c.array::<4>("trace header version")?;
        let provider_version = c.u32("trace header provider version")?;
        let number_of_processors = c.u32("trace header processor count")?;
        let end_time = c.i64("trace header end time")?;
        let timer_resolution = c.u32("trace header timer resolution")?;
        let maximum_file_size = c.u32("trace header maximum file size")?;
        let log_file_mode = c.u32("trace header log file mode")?;
        let buffers_written = c.u32("trace header buffers written")?;
        let _start_buffers = c.u32("trace header start buffers")?;
        let header_pointer_size = c.u32("trace header pointer size")?;
        let events_lost = c.u32("trace header events lost")?;
        let cpu_speed_mhz = c.u32("trace header CPU speed")?;
        c.skip(2 * usize::from(pointer_size), "trace header name pointers")?;
        let time_zone_bias_minutes = c.u32("trace header time zone bias")? as i32;
        c.skip(0xAC - 4, "trace header time zone")?;
        // BootTime is 8-byte aligned within the structure.
        let misalign = c.position() % 8;
        if misalign != 0 {
            c.skip(8 - misalign, "trace header padding")?;
        }
        let boot_time = c.i64("trace header boot time")?;
        let perf_freq = c.i64("trace header performance frequency")?;
        let start_time = c.i64("trace header start time")?;
        let clock_flags = c.u32("trace header clock type")?;
        let buffers_lost = c.u32("trace header buffers lost")?;
        let logger_name = c.utf16z("trace header logger name").unwrap_or_default();
        let log_file_name = c
            .utf16z("trace header log file name")
            .unwrap_or_else(|_| utf16_lossy(c.rest()));

        let clock_type = match clock_flags {
            2 => ClockType::SystemTime,
            3 => ClockType::CpuCycle,
            // 0 is what older writers leave; Windows treats it as QPC.
            0 | 1 => ClockType::Qpc,
            other => {
                return Err(EtlError::corrupt(
                    "trace header",
                    base + 0x110,
                    format!("unknown clock type {other}"),
                ))
            }
        };
        let ticks_per_second = match clock_type {
            ClockType::Qpc => perf_freq,
            ClockType::CpuCycle => i64::from(cpu_speed_mhz) * 1_000_000,
            ClockType::SystemTime => 10_000_000,
        };
        if ticks_per_second <= 0 {
            return Err(EtlError::corrupt(
                "trace header",
                base,
                format!("clock has no frequency (perf freq {perf_freq}, CPU {cpu_speed_mhz} MHz)"),
            ));
        }
        Ok(TraceHeader {
            buffer_size,
            os_version: format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3]),
            provider_version,
            number_of_processors,
            end_time: filetime_to_utc(end_time),
            timer_resolution,
            maximum_file_size,
            log_file_mode,
            buffers_written,
            pointer_size: header_pointer_size,
            events_lost,
            cpu_speed_mhz,
            time_zone_bias_minutes,
            boot_time: filetime_to_utc(boot_time),
            perf_freq,
            start_time: filetime_to_utc(start_time),
            clock_type,
            buffers_lost,
            logger_name,
            log_file_name,
            clock: Clock {
                kind: clock_type,
                reference_raw: raw_timestamp,
                start_filetime: start_time,
                ticks_per_second,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_convert_to_unix_time() {
        let qpc = Clock {
            kind: ClockType::Qpc,
            reference_raw: 1_000,
            start_filetime: FILETIME_UNIX_EPOCH + 10_000_000,
            ticks_per_second: 10_000_000,
        };
        assert_eq!(qpc.to_unix_nanos(1_000), 1_000_000_000);
        assert_eq!(qpc.to_unix_nanos(1_001), 1_000_000_100);
        assert_eq!(qpc.to_unix_nanos(999), 999_999_900);
        let sys = Clock {
            kind: ClockType::SystemTime,
            ..qpc
        };
        assert_eq!(sys.to_unix_nanos(FILETIME_UNIX_EPOCH + 5), 500);
        let cyc = Clock {
            kind: ClockType::CpuCycle,
            ticks_per_second: 3_000_000_000,
            ..qpc
        };
        assert_eq!(cyc.to_unix_nanos(1_000 + 3_000), 1_000_001_000);
    }
}

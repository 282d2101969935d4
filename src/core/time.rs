//! Time as a value. The core never reads a clock: hosts pass `UnixTime`.

/// A point in time, milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime {
    millis: u64,
}

impl UnixTime {
    pub const fn from_millis(millis: u64) -> Self {
        UnixTime { millis }
    }

    pub const fn from_secs(secs: u64) -> Self {
        UnixTime {
            millis: secs.saturating_mul(1000),
        }
    }

    /// From (possibly fractional) Unix seconds, as a host reads them (`--now`, the
    /// playground, a claim). Saturating, like `as`: NaN and negative give 0, too large
    /// gives the end of time — a time is never an error here; hosts refuse bad input first.
    pub fn from_secs_f64(secs: f64) -> Self {
        UnixTime {
            millis: (secs * 1000.0) as u64,
        }
    }

    /// From Envoy's `proxy_get_current_time_nanoseconds`.
    pub const fn from_nanos(nanos: u128) -> Self {
        let millis = nanos / 1_000_000;
        UnixTime {
            millis: if millis > u64::MAX as u128 {
                u64::MAX
            } else {
                millis as u64
            },
        }
    }

    pub const fn secs(self) -> u64 {
        self.millis / 1000
    }

    pub const fn millis(self) -> u64 {
        self.millis
    }

    /// Seconds as a float, for comparison with NumericDate claims (which may be fractional).
    pub fn secs_f64(self) -> f64 {
        self.millis as f64 / 1000.0
    }

    /// RFC 3339 in UTC with milliseconds: `2026-11-23T07:22:25.000Z`.
    pub fn rfc3339(self) -> String {
        let secs = self.secs();
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        // Digits written directly: this runs once per decision (the audit `ts`), and
        // `format!` costs several times more in wasm.
        let mut out = String::with_capacity(24);
        let mut digits = |value: u64, width: u32, after: Option<char>| {
            for place in (0..width).rev() {
                let digit = (value / 10u64.pow(place)) % 10;
                out.push(char::from(b'0' + digit as u8));
            }
            if let Some(c) = after {
                out.push(c);
            }
        };
        let year_width = (4..20).find(|w| y < 10u64.pow(*w)).unwrap_or(20);
        digits(y, year_width, Some('-'));
        digits(m, 2, Some('-'));
        digits(d, 2, Some('T'));
        digits(rem / 3600, 2, Some(':'));
        digits(rem % 3600 / 60, 2, Some(':'));
        digits(rem % 60, 2, Some('.'));
        digits(self.millis % 1000, 3, Some('Z'));
        out
    }
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(UnixTime::from_secs(0).rfc3339(), "1970-01-01T00:00:00.000Z");
        // Past year 9999 the year grows, as `{:04}` did.
        assert_eq!(
            UnixTime::from_secs(253_402_300_800).rfc3339(),
            "10000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            UnixTime::from_millis(1_700_000_000_123).rfc3339(),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            UnixTime::from_secs(951_782_400).rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            UnixTime::from_secs(4_102_444_800).rfc3339(),
            "2100-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn from_fractional_seconds_saturates() {
        assert_eq!(UnixTime::from_secs_f64(1.5).millis(), 1500);
        assert_eq!(UnixTime::from_secs_f64(f64::NAN).millis(), 0);
        assert_eq!(UnixTime::from_secs_f64(-3.0).millis(), 0);
        assert_eq!(UnixTime::from_secs_f64(f64::INFINITY).millis(), u64::MAX);
        assert_eq!(UnixTime::from_secs_f64(1e300).millis(), u64::MAX);
    }

    #[test]
    fn from_envoy_nanoseconds() {
        let t = UnixTime::from_nanos(1_700_000_000_123_456_789);
        assert_eq!((t.secs(), t.millis()), (1_700_000_000, 1_700_000_000_123));
        assert_eq!(UnixTime::from_nanos(u128::MAX).millis(), u64::MAX);
    }
}

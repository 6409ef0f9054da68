// SPDX-License-Identifier: Apache-2.0
//! X.509 Time (RFC 5280 4.1.2.5) to microseconds since the Unix epoch, UTC.

use crate::der::{DerError, Tlv, GENERALIZED_TIME, UTC_TIME};
use crate::error::ErrorKind;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Parses a UTCTime or GeneralizedTime in the forms DER allows: `YYMMDDHHMMSSZ` and
/// `YYYYMMDDHHMMSS[.fff]Z`. Other BER forms (no seconds, offsets) are errors, not guesses.
pub fn parse_time(tlv: &Tlv<'_>) -> Result<i64, DerError> {
    let s = tlv.content;
    let (year, rest) = match tlv.tag {
        UTC_TIME => {
            let yy = digits(s, 0, 2)?;
            // RFC 5280: YY >= 50 is 19YY, else 20YY.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        GENERALIZED_TIME => (digits(s, 0, 4)?, s.get(4..).unwrap_or_default()),
        _ => {
            return Err(DerError::Invalid(
                ErrorKind::InvalidTime,
                "time is neither UTCTime nor GeneralizedTime",
            ))
        }
    };
    let month = digits(rest, 0, 2)?;
    let day = digits(rest, 2, 2)?;
    let hour = digits(rest, 4, 2)?;
    let minute = digits(rest, 6, 2)?;
    let second = digits(rest, 8, 2)?;
    let mut tail = rest.get(10..).unwrap_or_default();
    let mut micros = 0i64;
    if tlv.tag == GENERALIZED_TIME && tail.first() == Some(&b'.') {
        let frac_len = tail[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if frac_len == 0 {
            return Err(DerError::Invalid(
                ErrorKind::InvalidTime,
                "time has an empty fraction",
            ));
        }
        micros = tail[1..=frac_len.min(6)]
            .iter()
            .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
        micros *= 10i64.pow(6u32.saturating_sub(frac_len as u32));
        tail = &tail[1 + frac_len..];
    }
    if tail != b"Z" {
        return Err(DerError::Invalid(
            ErrorKind::InvalidTime,
            "time is not in UTC with seconds (…SSZ)",
        ));
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(DerError::Invalid(
            ErrorKind::InvalidTime,
            "time has an out-of-range field",
        ));
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Ok(seconds * MICROS_PER_SECOND + micros)
}

fn digits(s: &[u8], at: usize, n: usize) -> Result<i64, DerError> {
    let field = s.get(at..at + n).ok_or(DerError::Invalid(
        ErrorKind::InvalidTime,
        "time is too short",
    ))?;
    field.iter().try_fold(0i64, |acc, &b| {
        if b.is_ascii_digit() {
            Ok(acc * 10 + i64::from(b - b'0'))
        } else {
            Err(DerError::Invalid(
                ErrorKind::InvalidTime,
                "time has a non-digit",
            ))
        }
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(tag: u8, s: &'static str) -> Result<i64, DerError> {
        parse_time(&Tlv {
            tag,
            full: s.as_bytes(),
            content: s.as_bytes(),
        })
    }

    #[test]
    fn utc_time_windows() {
        assert_eq!(t(UTC_TIME, "700101000000Z"), Ok(0));
        assert_eq!(
            t(UTC_TIME, "491231235959Z"),
            Ok(2_524_607_999 * MICROS_PER_SECOND)
        );
        assert_eq!(
            t(UTC_TIME, "500101000000Z"),
            Ok(-631_152_000 * MICROS_PER_SECOND)
        );
    }

    #[test]
    fn generalized_time_and_fractions() {
        assert_eq!(
            t(GENERALIZED_TIME, "20000229120000Z"),
            Ok(951_825_600 * MICROS_PER_SECOND)
        );
        assert_eq!(t(GENERALIZED_TIME, "19700101000000.5Z"), Ok(500_000));
        assert_eq!(t(GENERALIZED_TIME, "19700101000000.1234567Z"), Ok(123_456));
        assert_eq!(
            t(GENERALIZED_TIME, "99991231235959Z"),
            Ok(253_402_300_799 * MICROS_PER_SECOND)
        );
    }

    #[test]
    fn malformed_times_are_errors() {
        for bad in [
            "7001010000Z",
            "700101000000+0100",
            "701301000000Z",
            "700230000000Z",
            "7001010000AAZ",
            "",
        ] {
            assert!(t(UTC_TIME, bad).is_err(), "{bad}");
        }
        assert!(t(GENERALIZED_TIME, "19000229000000Z").is_err());
        assert!(t(GENERALIZED_TIME, "19700101000000.Z").is_err());
        assert!(t(0x04, "700101000000Z").is_err());
    }
}

//! The one clock every part of supportctl reads: the journal's times, SR and
//! comment times, the watcher's status and timers, and the day grants are
//! weighed on. Tests and dry runs set it with `SUPPORTCTL_NOW` (a moment the
//! clock starts at, running at the real pace) and `SUPPORTCTL_TODAY` (a day
//! held still).

use super::{Error, ErrorKind};
use crate::model::Date;

/// Today's date in UTC, or the day `SUPPORTCTL_TODAY` (YYYY-MM-DD) names, so
/// that tests and dry runs can see how a config reads on another day.
pub fn today() -> Result<Date, Error> {
    match std::env::var("SUPPORTCTL_TODAY") {
        Ok(text) if !text.is_empty() => Date::parse(&text).ok_or_else(|| {
            Error::input(format!(
                "SUPPORTCTL_TODAY=`{text}` is not a date in the form YYYY-MM-DD"
            ))
        }),
        _ => Ok(Date::of(now()?)),
    }
}

/// Whether `SUPPORTCTL_TODAY` fixes the day, so that no expiry ever comes.
pub fn day_is_frozen() -> bool {
    std::env::var_os("SUPPORTCTL_TODAY").is_some_and(|v| !v.is_empty())
}

/// The current moment: the system clock, or, when `SUPPORTCTL_NOW` names a
/// moment (RFC 3339, e.g. `2027-01-30T23:59:58Z`), a clock that starts there
/// and runs at the real pace, so that an expiry can be watched happen.
pub fn now() -> Result<jiff::Timestamp, Error> {
    static START: std::sync::OnceLock<
        Result<Option<(jiff::Timestamp, std::time::Instant)>, String>,
    > = std::sync::OnceLock::new();
    let start = START.get_or_init(|| match std::env::var("SUPPORTCTL_NOW") {
        Ok(text) if !text.is_empty() => text
            .parse::<jiff::Timestamp>()
            .map(|moment| Some((moment, std::time::Instant::now())))
            .map_err(|_| {
                format!("SUPPORTCTL_NOW=`{text}` is not a moment in the form 2027-01-30T23:59:58Z")
            }),
        _ => Ok(None),
    });
    match start {
        Err(message) => Err(Error::input(message.clone())),
        Ok(None) => Ok(jiff::Timestamp::now()),
        Ok(Some((moment, since))) => {
            let elapsed = jiff::SignedDuration::try_from(since.elapsed()).unwrap_or_default();
            moment
                .checked_add(elapsed)
                .map_err(|_| Error::new(ErrorKind::Input, "the clock is out of range"))
        }
    }
}

/// [`now`] as RFC 3339 text; the system clock if `SUPPORTCTL_NOW` is wrong
/// (for times that are only reported, such as a heartbeat).
pub fn timestamp() -> String {
    now().unwrap_or_else(|_| jiff::Timestamp::now()).to_string()
}

/// The monotonic instant at which `day` begins, read off the clock now;
/// never, when `SUPPORTCTL_TODAY` holds the day still.
pub fn instant_of_day(day: Date) -> Option<std::time::Instant> {
    if day_is_frozen() {
        return None;
    }
    let current = now().ok()?;
    let ahead = current.duration_until(day.start());
    let ahead = std::time::Duration::try_from(ahead).unwrap_or(std::time::Duration::ZERO);
    std::time::Instant::now().checked_add(ahead)
}

//! When a watcher reconciles next: the interval, the next grant expiry, a
//! retry with backoff after a failure that may pass, and the heartbeat that
//! keeps the status file fresh in between; and how long a burst of saves is
//! let settle. Pure: every instant is given, so the timers are tested
//! without a clock or a channel.

use std::time::{Duration, Instant};

use crate::model::Date;
use crate::status::{HEARTBEAT, Trigger};

/// The longest wait before retrying a reconcile that failed for a reason
/// that may pass (a locked database, a stale plan, an I/O error).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long after a grant's expiry moment the watcher looks, so that the
/// clock has surely passed it.
pub const EXPIRY_MARGIN: Duration = Duration::from_millis(50);

/// The delay before retry number `failures`: 0.5 s, 1 s, 2 s, … up to a
/// minute.
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(10);
    (Duration::from_millis(500) * factor).min(MAX_BACKOFF)
}

/// The quiet period that makes a burst of saves one reconcile: half the
/// debounce time, and at least 20 ms.
pub fn quiet(debounce: Duration) -> Duration {
    (debounce / 2).max(Duration::from_millis(20))
}

/// The longest a burst of saves is waited out before reconciling anyway.
pub fn settle_limit(debounce: Duration) -> Duration {
    debounce * 10
}

/// How a reconcile ended, as far as the timers care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It ran: whether it failed in a way that may pass (and is retried),
    /// and the earliest expiry among the grants of the config that checked
    /// (none when the config set was invalid).
    Ran {
        retries: bool,
        next_expiry: Option<Date>,
    },
    /// It was skipped as the same input that failed last; `retry` when that
    /// failure is looked at again after a delay.
    Skipped { retry: bool },
}

/// What to wait for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    /// Until when to wait for a file event or a stop.
    pub until: Instant,
    /// The timer due then; `None` when it is only the heartbeat.
    pub trigger: Option<Trigger>,
    /// The earliest timer, however far ahead (for the status file's
    /// `next_wake_at`).
    pub next: Option<(Instant, Trigger)>,
}

/// A watcher's timers.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    /// `--interval`, if any.
    interval: Option<Duration>,
    next_interval: Option<Instant>,
    next_retry: Option<Instant>,
    next_expiry: Option<Date>,
    /// Consecutive failures that may pass, for the retry delay.
    failures: u32,
}

impl Schedule {
    pub fn new(interval: Option<Duration>) -> Self {
        Schedule {
            interval,
            ..Schedule::default()
        }
    }

    /// After a reconcile that `ended` at `now`: the interval starts again,
    /// a failure that may pass is retried after a growing delay, a success
    /// resets the delay, and expiries follow the config that last checked.
    pub fn reconciled(&mut self, ended: Ended, now: Instant) {
        match ended {
            Ended::Skipped { retry } => {
                if retry {
                    self.failures += 1;
                    self.next_retry = Some(now + backoff(self.failures));
                }
            }
            Ended::Ran {
                retries,
                next_expiry,
            } => {
                self.next_expiry = next_expiry;
                self.next_retry = if retries {
                    self.failures += 1;
                    Some(now + backoff(self.failures))
                } else {
                    self.failures = 0;
                    None
                };
            }
        }
        self.next_interval = self.interval.map(|every| now + every);
    }

    /// The day whose start is the next expiry to reconcile at.
    pub fn next_expiry(&self) -> Option<Date> {
        self.next_expiry
    }

    /// What to wait for from `now`, the next expiry falling due at
    /// `expiry_at` (read off the clock by the caller each round: the wall
    /// clock may jump while waiting): the first of the timers, or the
    /// heartbeat when none is due before it.
    pub fn wait(&self, now: Instant, expiry_at: Option<Instant>) -> Wait {
        let next = [
            (self.next_interval, Trigger::Interval),
            (self.next_retry, Trigger::Retry),
            (expiry_at, Trigger::Expiry),
        ]
        .into_iter()
        .filter_map(|(at, trigger)| at.map(|at| (at, trigger)))
        .min_by_key(|(at, _)| *at);
        let heartbeat = now + HEARTBEAT;
        match next {
            Some((at, trigger)) if at <= heartbeat => Wait {
                until: at,
                trigger: Some(trigger),
                next,
            },
            _ => Wait {
                until: heartbeat,
                trigger: None,
                next,
            },
        }
    }

    /// A timer went off and its reconcile is about to run: an expiry or a
    /// retry is spent (the reconcile sets the next one).
    pub fn fired(&mut self, trigger: Trigger) {
        match trigger {
            Trigger::Expiry => self.next_expiry = None,
            Trigger::Retry => self.next_retry = None,
            Trigger::Start | Trigger::Change | Trigger::Interval | Trigger::Lease => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ran(retries: bool) -> Ended {
        Ended::Ran {
            retries,
            next_expiry: None,
        }
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn with_nothing_due_the_wait_is_the_heartbeat() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(None);
        schedule.reconciled(ran(false), t0);
        let wait = schedule.wait(t0, None);
        assert_eq!(wait.until, t0 + HEARTBEAT);
        assert_eq!(wait.trigger, None);
        assert_eq!(wait.next, None);
    }

    #[test]
    fn the_interval_starts_again_after_every_reconcile() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(Some(5 * SECOND));
        schedule.reconciled(ran(false), t0);
        assert_eq!(
            schedule.wait(t0, None),
            Wait {
                until: t0 + 5 * SECOND,
                trigger: Some(Trigger::Interval),
                next: Some((t0 + 5 * SECOND, Trigger::Interval)),
            }
        );
        // A change reconciles at t0 + 3 s: the interval counts from there.
        schedule.reconciled(ran(false), t0 + 3 * SECOND);
        assert_eq!(schedule.wait(t0 + 3 * SECOND, None).until, t0 + 8 * SECOND);
    }

    #[test]
    fn an_interval_beyond_the_heartbeat_waits_for_the_heartbeat_first() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(Some(HEARTBEAT * 3));
        schedule.reconciled(ran(false), t0);
        let wait = schedule.wait(t0, None);
        assert_eq!(wait.until, t0 + HEARTBEAT);
        assert_eq!(wait.trigger, None);
        assert_eq!(wait.next, Some((t0 + HEARTBEAT * 3, Trigger::Interval)));
    }

    #[test]
    fn failures_retry_with_a_growing_delay_until_a_success() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(None);
        let mut now = t0;
        for expected in [500, 1000, 2000, 4000] {
            schedule.reconciled(ran(true), now);
            let wait = schedule.wait(now, None);
            assert_eq!(wait.trigger, Some(Trigger::Retry));
            assert_eq!(wait.until, now + Duration::from_millis(expected));
            schedule.fired(Trigger::Retry);
            assert_eq!(schedule.wait(now, None).trigger, None, "a retry is spent");
            now = wait.until;
        }
        schedule.reconciled(ran(false), now);
        assert_eq!(schedule.wait(now, None).next, None);
        // The delay starts over after a success.
        schedule.reconciled(ran(true), now);
        assert_eq!(
            schedule.wait(now, None).until,
            now + Duration::from_millis(500)
        );
    }

    #[test]
    fn a_skipped_failure_retries_only_when_asked_and_keeps_its_expiry() {
        let t0 = Instant::now();
        let day = Date::parse("2030-01-01").unwrap();
        let mut schedule = Schedule::new(None);
        schedule.reconciled(
            Ended::Ran {
                retries: false,
                next_expiry: Some(day),
            },
            t0,
        );
        schedule.reconciled(Ended::Skipped { retry: false }, t0);
        assert_eq!(schedule.wait(t0, None).next, None);
        assert_eq!(schedule.next_expiry(), Some(day));
        schedule.reconciled(Ended::Skipped { retry: true }, t0);
        schedule.reconciled(Ended::Skipped { retry: true }, t0);
        assert_eq!(schedule.wait(t0, None).until, t0 + SECOND, "second failure");
    }

    #[test]
    fn the_earliest_timer_wins_and_an_expiry_is_spent_when_it_fires() {
        let t0 = Instant::now();
        let day = Date::parse("2030-01-01").unwrap();
        let mut schedule = Schedule::new(Some(4 * SECOND));
        schedule.reconciled(
            Ended::Ran {
                retries: true,
                next_expiry: Some(day),
            },
            t0,
        );
        let expiry_at = t0 + 2 * SECOND;
        let wait = schedule.wait(t0, Some(expiry_at));
        assert_eq!(wait.trigger, Some(Trigger::Retry), "0.5 s comes first");
        schedule.fired(Trigger::Retry);
        let wait = schedule.wait(t0, Some(expiry_at));
        assert_eq!(
            (wait.until, wait.trigger),
            (expiry_at, Some(Trigger::Expiry))
        );
        schedule.fired(Trigger::Expiry);
        assert_eq!(schedule.next_expiry(), None);
        // An invalid config set has no expiries to offer.
        schedule.reconciled(
            Ended::Ran {
                retries: false,
                next_expiry: None,
            },
            t0,
        );
        assert_eq!(schedule.next_expiry(), None);
    }

    #[test]
    fn a_burst_settles_within_half_the_debounce_and_ten_debounces_at_most() {
        assert_eq!(
            quiet(Duration::from_millis(400)),
            Duration::from_millis(200)
        );
        assert_eq!(quiet(Duration::from_millis(10)), Duration::from_millis(20));
        assert_eq!(settle_limit(Duration::from_millis(400)), 4 * SECOND);
    }
}

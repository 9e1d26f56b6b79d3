//! The time an invocation has left. Lambda kills a function at its deadline wherever it is;
//! checked before each long step of the full process, the deadline instead stops the run between
//! steps with a retryable error ([`StepError::OutOfTime`]), and the next run (the retry, or the
//! next schedule tick) finishes the rest from what is stored ([`super::repair`]).

use std::time::{Duration, SystemTime};

use super::StepError;

/// The most time kept back for the step in flight.
pub const MAX_SAFETY_MARGIN: Duration = Duration::from_secs(60);
/// The least: no step is started with less than this left.
pub const MIN_SAFETY_MARGIN: Duration = Duration::from_secs(5);

/// When the invocation ends, and how much time a step must still have to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: SystemTime,
    margin: Duration,
}

impl Deadline {
    /// `at` with an explicit safety margin.
    pub fn with_margin(at: SystemTime, margin: Duration) -> Self {
        Deadline { at, margin }
    }

    /// The deadline of an invocation that starts at `now` and must end by `at` (Lambda's
    /// `Context::deadline()`), keeping a quarter of its time for the step in flight, at least
    /// [`MIN_SAFETY_MARGIN`] and at most [`MAX_SAFETY_MARGIN`]. `None` when `at` is not after
    /// `now`: Lambda's deadline is always ahead when an invocation starts, so that is a context
    /// without a real one (a test's default, an emulator such as `cargo lambda watch`).
    pub fn for_invocation(at: SystemTime, now: SystemTime) -> Option<Self> {
        let budget = at.duration_since(now).ok().filter(|b| !b.is_zero())?;
        Some(Deadline {
            at,
            margin: (budget / 4).clamp(MIN_SAFETY_MARGIN, MAX_SAFETY_MARGIN),
        })
    }

    /// The time left at `now` (zero once past).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.at.duration_since(now).unwrap_or_default()
    }

    /// Whether `step` may start at `now`: an error when less than the safety margin remains, or
    /// nothing at all.
    pub fn check(&self, step: &str, now: SystemTime) -> Result<(), StepError> {
        let remaining = self.remaining(now);
        if remaining.is_zero() || remaining < self.margin {
            return Err(StepError::OutOfTime {
                step: step.to_string(),
                remaining_seconds: remaining.as_secs_f64(),
                margin_seconds: self.margin.as_secs_f64(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    #[test]
    fn a_step_starts_only_with_the_margin_left() {
        let deadline = Deadline::with_margin(at(100), Duration::from_secs(30));
        assert!(deadline.check("training", at(0)).is_ok());
        assert!(
            deadline.check("training", at(70)).is_ok(),
            "exactly the margin"
        );
        let error = deadline.check("training", at(71)).unwrap_err();
        assert!(error.is_retryable());
        let message = error.to_string();
        assert!(
            message.contains("before training") && message.contains("29.0 s"),
            "{message}"
        );
        // Past the deadline: nothing left, still a clean, retryable stop.
        let late = deadline.check("reporting", at(200)).unwrap_err();
        assert!(
            late.is_retryable() && late.to_string().contains("0.0 s"),
            "{late}"
        );
    }

    #[test]
    fn an_invocation_keeps_a_quarter_of_its_time_between_five_seconds_and_a_minute() {
        let short = Deadline::for_invocation(at(40), at(0)).unwrap();
        assert_eq!(short.margin, Duration::from_secs(10));
        let long = Deadline::for_invocation(at(900), at(0)).unwrap();
        assert_eq!(long.margin, MAX_SAFETY_MARGIN);
        assert!(long.check("ingestion", at(840)).is_ok());
        assert!(long.check("ingestion", at(841)).is_err());
        // Too short for any step: stopped before the first.
        let tiny = Deadline::for_invocation(at(4), at(0)).unwrap();
        assert_eq!(tiny.margin, MIN_SAFETY_MARGIN);
        assert!(tiny.check("ingestion", at(0)).is_err());
        // A context without a real deadline (Lambda's default, an emulator's): none to keep.
        assert_eq!(
            Deadline::for_invocation(SystemTime::UNIX_EPOCH, at(0)),
            None
        );
        assert_eq!(Deadline::for_invocation(at(0), at(0)), None);
        assert_eq!(Deadline::for_invocation(at(10), at(20)), None);
    }
}

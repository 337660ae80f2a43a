//! What an attempt's answer means, and when the next attempt is due.

use std::time::Duration;

/// Bounded exponential backoff: attempt 1 at once, attempt `n + 1`
/// `first_delay * 2^(n-1)` after attempt `n` (at most `max_delay`), and no
/// more than `max_attempts` in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

/// Default attempts per notification.
pub const DEFAULT_ATTEMPTS: u32 = 8;
/// Default delay before the second attempt.
pub const DEFAULT_FIRST_DELAY: Duration = Duration::from_secs(5);
/// Longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(600);

impl Default for RetryPolicy {
    /// 8 attempts over about ten minutes: 5 s, 10 s, 20 s, ... 320 s apart.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_ATTEMPTS,
            first_delay: DEFAULT_FIRST_DELAY,
            max_delay: MAX_DELAY,
        }
    }
}

impl RetryPolicy {
    /// How long after attempt `made` (1-based) the next one is due; `None`
    /// when `made` was the last allowed.
    pub fn delay_after(&self, made: u32) -> Option<Duration> {
        if made >= self.max_attempts {
            return None;
        }
        let factor = 1u32.checked_shl(made.saturating_sub(1)).unwrap_or(u32::MAX);
        Some(
            self.first_delay
                .checked_mul(factor)
                .unwrap_or(self.max_delay)
                .min(self.max_delay),
        )
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered with this HTTP status.
    Status(u16),
    /// No answer: connection refused, timeout, TLS or DNS failure.
    Failed(String),
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered, nothing more to do.
    Delivered,
    /// Try again later (no answer, 5xx, 408, 429), while attempts remain.
    Retry,
    /// The receiver refused for good (3xx, other 4xx): trying again would
    /// get the same answer.
    GiveUp,
}

/// The verdict on one attempt's result.
pub fn verdict(result: &AttemptResult) -> Verdict {
    match result {
        AttemptResult::Status(s) if (200..300).contains(s) => Verdict::Delivered,
        AttemptResult::Status(408 | 429) => Verdict::Retry,
        AttemptResult::Status(s) if (300..500).contains(s) => Verdict::GiveUp,
        AttemptResult::Status(_) | AttemptResult::Failed(_) => Verdict::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops() {
        let p = RetryPolicy::default();
        let delays: Vec<Option<u64>> = (1..=8)
            .map(|n| p.delay_after(n).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            vec![
                Some(5),
                Some(10),
                Some(20),
                Some(40),
                Some(80),
                Some(160),
                Some(320),
                None
            ]
        );
        let capped = RetryPolicy {
            max_attempts: 100,
            ..p
        };
        assert_eq!(capped.delay_after(8), Some(MAX_DELAY));
        assert_eq!(capped.delay_after(60), Some(MAX_DELAY));
        let once = RetryPolicy {
            max_attempts: 1,
            ..p
        };
        assert_eq!(once.delay_after(1), None);
    }

    #[test]
    fn verdicts() {
        use AttemptResult::*;
        let cases = [
            (Status(200), Verdict::Delivered),
            (Status(204), Verdict::Delivered),
            (Status(500), Verdict::Retry),
            (Status(503), Verdict::Retry),
            (Status(408), Verdict::Retry),
            (Status(429), Verdict::Retry),
            (Status(301), Verdict::GiveUp),
            (Status(401), Verdict::GiveUp),
            (Status(404), Verdict::GiveUp),
            (Failed("connection refused".into()), Verdict::Retry),
        ];
        for (r, want) in cases {
            assert_eq!(verdict(&r), want, "{r:?}");
        }
    }
}

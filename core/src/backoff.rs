//! Exponential backoff with jitter (pure): how long to wait before the next attempt, from the attempt's number and a seed the caller varies.

use std::time::Duration;

/// `base` × 2^`attempt`, at most `cap`, plus up to a quarter of that as jitter drawn from `seed`
/// (so that several clients retrying together spread out).
pub fn backoff(base: Duration, attempt: u32, cap: Duration, seed: u64) -> Duration {
    let wait = base.saturating_mul(1 << attempt.min(20)).min(cap);
    let quarter = u64::try_from(wait.as_millis() / 4).unwrap_or(u64::MAX);
    let jitter_ms = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % (quarter + 1);
    wait + Duration::from_millis(jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_adds_at_most_a_quarter() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(60), 0, s(3600), 0), s(60));
        assert!(backoff(s(60), 1, s(3600), 7) >= s(120));
        assert!(backoff(s(60), 1, s(3600), 7) <= s(150));
        assert!(backoff(s(60), 30, s(3600), 7) <= s(4500));
        assert!(backoff(s(60), 30, s(3600), 7) >= s(3600));
        let spread: std::collections::BTreeSet<Duration> = (0..20)
            .map(|seed| backoff(s(60), 2, s(3600), seed))
            .collect();
        assert!(spread.len() > 10, "the seed spreads the waits");
    }
}

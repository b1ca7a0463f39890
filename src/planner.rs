//! The planner: given the state and `now`, which days are due for sending, which close, which inputs are late.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// When an ORD's daily send happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub tz: Tz,
    /// Local time of the daily send.
    pub send_at: NaiveTime,
    /// The last day after D on which files may be sent (30: D+30).
    pub window_days: u32,
}

/// What the store knows about one ORD's days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaysState {
    /// The local date of the last completed daily send.
    pub last_send: Option<NaiveDate>,
    /// Days that have data (ORD profiles or mobility) and are not closed.
    pub open: BTreeSet<NaiveDate>,
    pub closed: BTreeSet<NaiveDate>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Today in the ORD's time zone.
    pub today: NaiveDate,
    /// Whether the daily send is due (its time has come and it has not run today).
    pub send_due: bool,
    /// Days whose files are (re)generated and sent in this send: D+1 ≤ today ≤ D+30.
    pub send_days: Vec<NaiveDate>,
    /// Days closed after this send (their D+30 send is this one).
    pub close_days: Vec<NaiveDate>,
    /// Open days whose window passed while nothing ran: closed without a send, and reported.
    pub missed_days: Vec<NaiveDate>,
}

impl Schedule {
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.tz).date_naive()
    }

    /// The first day that may still be sent today (today − window).
    pub fn oldest_open(&self, today: NaiveDate) -> NaiveDate {
        today
            .checked_sub_days(Days::new(u64::from(self.window_days)))
            .unwrap_or(today)
    }

    /// Whether an input for `day` can still change what is sent (not closed, not past D+window).
    pub fn accepts(
        &self,
        day: NaiveDate,
        now: DateTime<Utc>,
        closed: &BTreeSet<NaiveDate>,
    ) -> bool {
        !closed.contains(&day) && day >= self.oldest_open(self.today(now))
    }
}

/// Plans one cycle. Pure: the same state and `now` give the same plan.
pub fn plan(schedule: &Schedule, state: &DaysState, now: DateTime<Utc>) -> Plan {
    let local = now.with_timezone(&schedule.tz);
    let today = local.date_naive();
    let send_due = local.time() >= schedule.send_at && state.last_send.is_none_or(|d| d < today);
    let oldest = schedule.oldest_open(today);
    let missed_days: Vec<NaiveDate> = state.open.iter().copied().filter(|d| *d < oldest).collect();
    let (send_days, close_days) = if send_due {
        let send: Vec<NaiveDate> = state
            .open
            .iter()
            .copied()
            .filter(|d| *d >= oldest && *d < today)
            .collect();
        let close = send.iter().copied().filter(|d| *d == oldest).collect();
        (send, close)
    } else {
        (Vec::new(), Vec::new())
    };
    Plan {
        today,
        send_due,
        send_days,
        close_days,
        missed_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> Schedule {
        Schedule {
            tz: chrono_tz::Europe::Lisbon,
            send_at: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            window_days: 30,
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, m, d).unwrap()
    }

    #[test]
    fn d_plus_1_send_happens_at_send_at_local_time() {
        let state = DaysState {
            open: BTreeSet::from([day(7, 5)]),
            ..DaysState::default()
        };
        // 18:59 UTC is 19:59 in Lisbon (summer): not yet.
        assert!(!plan(&sched(), &state, t("2024-07-06T18:59:00Z")).send_due);
        let p = plan(&sched(), &state, t("2024-07-06T19:00:00Z"));
        assert!(p.send_due);
        assert_eq!(p.send_days, vec![day(7, 5)]);
        assert!(p.close_days.is_empty());
    }

    #[test]
    fn the_send_runs_once_a_day() {
        let state = DaysState {
            open: BTreeSet::from([day(7, 5)]),
            last_send: Some(day(7, 6)),
            ..DaysState::default()
        };
        assert!(!plan(&sched(), &state, t("2024-07-06T22:00:00Z")).send_due);
        assert!(plan(&sched(), &state, t("2024-07-07T19:30:00Z")).send_due);
    }

    #[test]
    fn a_day_closes_after_its_d_plus_30_send_and_never_sends_again() {
        let state = DaysState {
            open: BTreeSet::from([day(7, 5)]),
            last_send: Some(day(8, 3)),
            ..DaysState::default()
        };
        let p = plan(&sched(), &state, t("2024-08-04T20:00:00Z"));
        assert_eq!(p.send_days, vec![day(7, 5)]);
        assert_eq!(p.close_days, vec![day(7, 5)]);
        let closed = DaysState {
            closed: BTreeSet::from([day(7, 5)]),
            last_send: Some(day(8, 4)),
            ..DaysState::default()
        };
        let p = plan(&sched(), &closed, t("2024-08-05T20:00:00Z"));
        assert!(p.send_days.is_empty());
        assert!(!sched().accepts(day(7, 5), t("2024-08-05T20:00:00Z"), &closed.closed));
    }

    #[test]
    fn after_downtime_the_open_days_are_caught_up_and_missed_ones_reported() {
        let state = DaysState {
            open: BTreeSet::from([day(6, 1), day(7, 1), day(7, 5)]),
            last_send: Some(day(7, 2)),
            ..DaysState::default()
        };
        let p = plan(&sched(), &state, t("2024-07-10T08:00:00Z"));
        assert!(!p.send_due);
        assert_eq!(p.missed_days, vec![day(6, 1)]);
        let p = plan(&sched(), &state, t("2024-07-10T21:00:00Z"));
        assert_eq!(p.send_days, vec![day(7, 1), day(7, 5)]);
    }

    #[test]
    fn today_is_the_date_in_the_ords_time_zone() {
        let azores = Schedule {
            tz: chrono_tz::Atlantic::Azores,
            ..sched()
        };
        // 00:30 UTC on 6 January is still 5 January in the Azores (UTC−1 in winter).
        assert_eq!(azores.today(t("2024-01-06T00:30:00Z")), day(1, 5));
    }
}

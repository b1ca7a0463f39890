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
    /// Local time after which the daily send goes out even though its intake failed (`None`: the
    /// last cycle of the ORD's local day).
    pub send_deadline: Option<NaiveTime>,
}

/// What the send depends on in this cycle, besides the schedule and the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendConditions {
    /// This cycle's intake of the ORD's files and of the mobility inbox succeeded (or found
    /// nothing new).
    pub intake_ok: bool,
    /// When the next cycle for this ORD will run (for the end-of-day deadline).
    pub next_cycle: DateTime<Utc>,
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

/// Whether a day still takes corrections (`Open`) or was closed after its last send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DayState {
    Open,
    Closed,
}

impl DayState {
    pub fn as_str(self) -> &'static str {
        match self {
            DayState::Open => "open",
            DayState::Closed => "closed",
        }
    }

    /// The state written as `as_str` gives it, or `None`.
    pub fn from_code(code: &str) -> Option<DayState> {
        [DayState::Open, DayState::Closed]
            .into_iter()
            .find(|s| s.as_str() == code)
    }
}

impl std::fmt::Display for DayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of an ORD's daily send in one cycle: one state where a summary once had four
/// booleans. It serialises as those booleans (`send_due`, `send_held`, `sent_without_intake`,
/// `skipped_for_backoff`), the fields `once --json` has always given operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendState {
    /// Its time has not come, or it ran already today.
    #[default]
    NotDue,
    /// Its time has come but it waits for a cycle whose intake succeeds (until its deadline).
    Held,
    /// It ran in this cycle.
    Due,
    /// It ran at its deadline without a successful intake (the ORD's totals may be missing).
    DueWithoutIntake,
    /// The ORD was left out of this cycle: backing off after failures.
    BackingOff,
}

impl SendState {
    pub fn due(self) -> bool {
        matches!(self, SendState::Due | SendState::DueWithoutIntake)
    }
}

impl Serialize for SendState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("send_due", &self.due())?;
        map.serialize_entry("send_held", &(*self == SendState::Held))?;
        map.serialize_entry(
            "sent_without_intake",
            &(*self == SendState::DueWithoutIntake),
        )?;
        map.serialize_entry("skipped_for_backoff", &(*self == SendState::BackingOff))?;
        map.end()
    }
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Today in the ORD's time zone.
    pub today: NaiveDate,
    /// Whether the daily send runs now (its time has come, it has not run today, and its intake
    /// succeeded or its deadline has come).
    pub send_due: bool,
    /// The send's time has come but it waits: this cycle's intake failed and the deadline is
    /// still ahead.
    pub held_for_intake: bool,
    /// The send runs at its deadline although this cycle's intake failed (the ORD's totals of
    /// the day may be missing).
    pub without_intake: bool,
    /// Days whose files are (re)generated and sent in this send: D+1 ≤ today ≤ D+30.
    pub send_days: Vec<NaiveDate>,
    /// Days closed after this send (their D+30 send is this one).
    pub close_days: Vec<NaiveDate>,
    /// Open days whose window passed while nothing ran: closed without a send, and reported.
    pub missed_days: Vec<NaiveDate>,
}

impl Plan {
    /// What becomes of the send by this plan.
    pub fn send_state(&self) -> SendState {
        match (self.held_for_intake, self.send_due, self.without_intake) {
            (true, _, _) => SendState::Held,
            (false, true, true) => SendState::DueWithoutIntake,
            (false, true, false) => SendState::Due,
            (false, false, _) => SendState::NotDue,
        }
    }
}

impl Schedule {
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.tz).date_naive()
    }

    /// When the next daily send is due (for `status`): today's `send_at` (local) unless today's
    /// send went out, then tomorrow's. A time that does not exist locally (in the spring DST
    /// gap) is `now`: the next cycle sends. An ambiguous one (the autumn hour) is its earlier
    /// instant.
    pub fn next_send(&self, last_send: Option<NaiveDate>, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = self.today(now);
        let day = if last_send == Some(today) {
            today.succ_opt().unwrap_or(today)
        } else {
            today
        };
        day.and_time(self.send_at)
            .and_local_timezone(self.tz)
            .earliest()
            .map_or(now, |t| t.with_timezone(&Utc))
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

/// Plans one cycle. Pure: the same state, `now` and conditions give the same plan.
///
/// The send is due once a (local) day from `send_at` on, when no send is recorded for today; a
/// send recorded for a later day than today (the clock went back) does not count. It waits while
/// the intake fails, until `send_deadline` or, without one, the last cycle of the local day.
pub fn plan(
    schedule: &Schedule,
    state: &DaysState,
    now: DateTime<Utc>,
    conditions: SendConditions,
) -> Plan {
    let local = now.with_timezone(&schedule.tz);
    let today = local.date_naive();
    let time_has_come =
        local.time() >= schedule.send_at && state.last_send.is_none_or(|d| d != today);
    let deadline_reached = match schedule.send_deadline {
        Some(deadline) => local.time() >= deadline,
        None => {
            conditions
                .next_cycle
                .with_timezone(&schedule.tz)
                .date_naive()
                > today
        }
    };
    let held_for_intake = time_has_come && !conditions.intake_ok && !deadline_reached;
    let without_intake = time_has_come && !conditions.intake_ok && deadline_reached;
    let send_due = time_has_come && !held_for_intake;
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
        held_for_intake,
        without_intake,
        send_days,
        close_days,
        missed_days,
    }
}

/// Why a cycle's time cannot be trusted (the clock guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockJump {
    /// `now` is more than the allowed step after the last good cycle's.
    AheadOfLastCycle {
        last: DateTime<Utc>,
        now: DateTime<Utc>,
        max_step: chrono::Duration,
    },
    /// `now` is more than the allowed step before the last good cycle's (a dead RTC at boot, a
    /// clock set back by hand).
    BehindLastCycle {
        last: DateTime<Utc>,
        now: DateTime<Utc>,
        max_step: chrono::Duration,
    },
    /// The business time (`--now`) is ahead of the real clock.
    AheadOfRealClock {
        now: DateTime<Utc>,
        wall: DateTime<Utc>,
        max_step: chrono::Duration,
    },
}

impl ClockJump {
    /// Whether `--allow-clock-jump` may let the cycle run: never when it would run ahead of the
    /// real clock by more than `max_clock_step`.
    pub fn waivable(&self) -> bool {
        match self {
            ClockJump::AheadOfRealClock {
                now,
                wall,
                max_step,
            } => *now <= *wall + *max_step,
            _ => true,
        }
    }
}

impl std::fmt::Display for ClockJump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockJump::AheadOfLastCycle { last, now, max_step } => write!(
                f,
                "this cycle's time {now} is {} h after the last cycle's ({last}), more than max_clock_step ({} h): the clock may have jumped",
                (*now - *last).num_hours(),
                max_step.num_hours()
            ),
            ClockJump::BehindLastCycle { last, now, max_step } => write!(
                f,
                "this cycle's time {now} is {} h before the last cycle's ({last}), more than max_clock_step ({} h): the clock may have gone back (a dead RTC at boot, a clock set by hand)",
                (*last - *now).num_hours(),
                max_step.num_hours()
            ),
            ClockJump::AheadOfRealClock { now, wall, .. } => write!(
                f,
                "this cycle's time {now} is ahead of the real clock ({wall})"
            ),
        }
    }
}

/// How far the business time may be ahead of the real clock (clock skew between hosts).
const REAL_CLOCK_SLACK_MINUTES: i64 = 5;

/// The clock guard (pure): a cycle whose `now` is more than `max_step` after or before the last
/// good cycle's (`last`), or ahead of the real clock (`wall`), must not close days or send. Within
/// the step of `last` it passes, so a clock that was wrong and came back goes on by itself.
pub fn check_clock(
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    wall: DateTime<Utc>,
    max_step: chrono::Duration,
) -> Result<(), ClockJump> {
    if now > wall + chrono::Duration::minutes(REAL_CLOCK_SLACK_MINUTES) {
        return Err(ClockJump::AheadOfRealClock {
            now,
            wall,
            max_step,
        });
    }
    match last {
        Some(last) if now > last + max_step => Err(ClockJump::AheadOfLastCycle {
            last,
            now,
            max_step,
        }),
        Some(last) if now < last - max_step => Err(ClockJump::BehindLastCycle {
            last,
            now,
            max_step,
        }),
        _ => Ok(()),
    }
}

/// The reference the next cycle is judged against once this one ran: the later of the two times
/// (a clock that went back within the step does not pull it back), or `now` when the operator
/// said this time is right (`allowed`).
pub fn next_clock_reference(
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    allowed: bool,
) -> DateTime<Utc> {
    match last {
        Some(last) if !allowed => last.max(now),
        _ => now,
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
            send_deadline: None,
        }
    }

    /// The intake succeeded; the next cycle in five minutes.
    fn ok(now: DateTime<Utc>) -> SendConditions {
        SendConditions {
            intake_ok: true,
            next_cycle: now + chrono::Duration::minutes(5),
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
        assert!(
            !plan(
                &sched(),
                &state,
                t("2024-07-06T18:59:00Z"),
                ok(t("2024-07-06T18:59:00Z"))
            )
            .send_due
        );
        let p = plan(
            &sched(),
            &state,
            t("2024-07-06T19:00:00Z"),
            ok(t("2024-07-06T19:00:00Z")),
        );
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
        assert!(
            !plan(
                &sched(),
                &state,
                t("2024-07-06T22:00:00Z"),
                ok(t("2024-07-06T22:00:00Z"))
            )
            .send_due
        );
        assert!(
            plan(
                &sched(),
                &state,
                t("2024-07-07T19:30:00Z"),
                ok(t("2024-07-07T19:30:00Z"))
            )
            .send_due
        );
    }

    #[test]
    fn a_day_closes_after_its_d_plus_30_send_and_never_sends_again() {
        let state = DaysState {
            open: BTreeSet::from([day(7, 5)]),
            last_send: Some(day(8, 3)),
            ..DaysState::default()
        };
        let p = plan(
            &sched(),
            &state,
            t("2024-08-04T20:00:00Z"),
            ok(t("2024-08-04T20:00:00Z")),
        );
        assert_eq!(p.send_days, vec![day(7, 5)]);
        assert_eq!(p.close_days, vec![day(7, 5)]);
        let closed = DaysState {
            closed: BTreeSet::from([day(7, 5)]),
            last_send: Some(day(8, 4)),
            ..DaysState::default()
        };
        let p = plan(
            &sched(),
            &closed,
            t("2024-08-05T20:00:00Z"),
            ok(t("2024-08-05T20:00:00Z")),
        );
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
        let p = plan(
            &sched(),
            &state,
            t("2024-07-10T08:00:00Z"),
            ok(t("2024-07-10T08:00:00Z")),
        );
        assert!(!p.send_due);
        assert_eq!(p.missed_days, vec![day(6, 1)]);
        let p = plan(
            &sched(),
            &state,
            t("2024-07-10T21:00:00Z"),
            ok(t("2024-07-10T21:00:00Z")),
        );
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

    #[test]
    fn a_send_whose_intake_failed_waits_until_the_last_cycle_of_the_day_or_its_deadline() {
        let state = DaysState {
            open: BTreeSet::from([day(7, 5)]),
            ..DaysState::default()
        };
        let failed = |now: DateTime<Utc>, next_in: i64| SendConditions {
            intake_ok: false,
            next_cycle: now + chrono::Duration::minutes(next_in),
        };
        // 20:30 Lisbon, intake failed, next cycle 20:35: held.
        let now = t("2024-07-06T19:30:00Z");
        let p = plan(&sched(), &state, now, failed(now, 5));
        assert!(!p.send_due && p.held_for_intake && !p.without_intake);
        assert!(p.send_days.is_empty() && p.close_days.is_empty());
        // The intake succeeds five minutes later: sent, as usual.
        let now = t("2024-07-06T19:35:00Z");
        let p = plan(&sched(), &state, now, ok(now));
        assert!(p.send_due && !p.held_for_intake && !p.without_intake);
        assert_eq!(p.send_days, vec![day(7, 5)]);
        // Still failing at 23:57 with the next cycle after midnight: sent without it.
        let now = t("2024-07-06T22:57:00Z");
        let p = plan(&sched(), &state, now, failed(now, 5));
        assert!(p.send_due && p.without_intake && !p.held_for_intake);
        // With a deadline of 22:00, from 22:00 on.
        let mut with_deadline = sched();
        with_deadline.send_deadline = NaiveTime::from_hms_opt(22, 0, 0);
        let now = t("2024-07-06T20:59:00Z");
        assert!(plan(&with_deadline, &state, now, failed(now, 5)).held_for_intake);
        let now = t("2024-07-06T21:00:00Z");
        assert!(plan(&with_deadline, &state, now, failed(now, 5)).without_intake);
    }

    #[test]
    fn a_send_recorded_for_a_later_day_than_today_does_not_count() {
        // The clock jumped ahead and came back: the send recorded "in the future" is not today's.
        let state = DaysState {
            open: BTreeSet::from([day(7, 5)]),
            last_send: Some(day(8, 20)),
            ..DaysState::default()
        };
        let now = t("2024-07-06T19:30:00Z");
        assert!(plan(&sched(), &state, now, ok(now)).send_due);
    }

    #[test]
    fn the_clock_guard_refuses_a_jump_either_way_past_the_step_and_never_waives_one_far_ahead_of_the_real_clock(
    ) {
        let step = chrono::Duration::days(2);
        let wall = t("2026-12-01T10:00:00Z");
        let last = Some(t("2024-10-28T21:30:00Z"));
        assert_eq!(
            check_clock(None, t("2024-10-28T21:30:00Z"), wall, step),
            Ok(())
        );
        assert_eq!(
            check_clock(last, t("2024-10-30T21:30:00Z"), wall, step),
            Ok(())
        );
        let jump = check_clock(last, t("2024-12-07T21:30:00Z"), wall, step).unwrap_err();
        assert!(matches!(jump, ClockJump::AheadOfLastCycle { .. }));
        assert!(
            jump.to_string().contains("2024-10-28 21:30:00 UTC"),
            "{jump}"
        );
        // Back within the step passes; further back (a dead RTC: 1970) is refused.
        assert_eq!(
            check_clock(last, t("2024-10-27T00:00:00Z"), wall, step),
            Ok(())
        );
        let back = check_clock(last, t("1970-01-01T00:00:10Z"), wall, step).unwrap_err();
        assert!(matches!(back, ClockJump::BehindLastCycle { .. }));
        assert!(back.waivable());
        let ahead = check_clock(None, t("2026-12-02T10:00:00Z"), wall, step).unwrap_err();
        assert!(matches!(ahead, ClockJump::AheadOfRealClock { .. }));
        assert!(ahead.waivable(), "a day ahead is within the step");
        let far = check_clock(None, t("2100-01-01T00:00:00Z"), wall, step).unwrap_err();
        assert!(!far.waivable(), "--now 2100 is never waived");
        assert_eq!(
            check_clock(None, t("2026-12-01T10:04:00Z"), wall, step),
            Ok(())
        );
        // The reference never goes back by itself.
        let now = t("2024-10-27T00:00:00Z");
        assert_eq!(
            next_clock_reference(last, now, false),
            t("2024-10-28T21:30:00Z")
        );
        assert_eq!(next_clock_reference(last, now, true), now);
        assert_eq!(next_clock_reference(None, now, false), now);
    }

    #[test]
    fn the_next_send_is_todays_until_it_went_out_then_tomorrows_in_local_time() {
        let s = sched();
        let now = t("2024-07-06T10:00:00Z");
        // Summer: 20:00 in Lisbon is 19:00 UTC.
        assert_eq!(s.next_send(None, now), t("2024-07-06T19:00:00Z"));
        assert_eq!(s.next_send(Some(day(7, 5)), now), t("2024-07-06T19:00:00Z"));
        assert_eq!(s.next_send(Some(day(7, 6)), now), t("2024-07-07T19:00:00Z"));
        // Past today's time and not sent: due now-ish (today's time, already past).
        let late = t("2024-07-06T21:00:00Z");
        assert_eq!(
            s.next_send(Some(day(7, 5)), late),
            t("2024-07-06T19:00:00Z")
        );
        // Winter: 20:00 in Lisbon is 20:00 UTC; the ORD's local day decides "today".
        assert_eq!(
            s.next_send(Some(day(12, 1)), t("2024-12-01T23:30:00Z")),
            t("2024-12-02T20:00:00Z")
        );
    }

    #[test]
    fn a_next_send_in_the_dst_gap_is_now_and_in_the_repeated_hour_the_earlier_instant() {
        let at = |h, m| Schedule {
            send_at: NaiveTime::from_hms_opt(h, m, 0).unwrap(),
            ..sched()
        };
        // 2024-03-31: Lisbon skips 01:00–02:00; 2024-10-27: it repeats 01:00–02:00.
        let now = t("2024-03-31T00:10:00Z");
        assert_eq!(at(1, 30).next_send(None, now), now);
        assert_eq!(
            at(1, 30).next_send(None, t("2024-10-27T00:10:00Z")),
            t("2024-10-27T00:30:00Z")
        );
    }

    #[test]
    fn a_plans_send_state_is_one_of_its_booleans_and_serialises_as_all_of_them() {
        let plan = |send_due, held_for_intake, without_intake| Plan {
            today: day(7, 6),
            send_due,
            held_for_intake,
            without_intake,
            send_days: Vec::new(),
            close_days: Vec::new(),
            missed_days: Vec::new(),
        };
        assert_eq!(plan(false, false, false).send_state(), SendState::NotDue);
        assert_eq!(plan(false, true, false).send_state(), SendState::Held);
        assert_eq!(plan(true, false, false).send_state(), SendState::Due);
        assert_eq!(
            plan(true, false, true).send_state(),
            SendState::DueWithoutIntake
        );
        let json = serde_json::to_value(SendState::DueWithoutIntake).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "send_due": true, "send_held": false, "sent_without_intake": true, "skipped_for_backoff": false })
        );
        let json = serde_json::to_value(SendState::BackingOff).unwrap();
        assert_eq!(json["skipped_for_backoff"], true);
        assert_eq!(json["send_due"], false);
    }
}

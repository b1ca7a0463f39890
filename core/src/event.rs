//! The events the ledger records (business risks an operator must see): their kinds, how serious each is, and the names logs, metrics and `egme-ord events` give them.

use serde::Serialize;

/// How an event reaches the operator: as a WARN or an ERROR log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventLevel {
    Warn,
    Error,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// An ORD file's previous transmission id is not the last one received: one may be missing.
    MissingTransmission,
    /// An ORD file for a CPE the registry does not give to that ORD.
    UnregisteredCpe,
    /// An ORD file refused and quarantined.
    Rejected,
    /// A valid ORD file for days already closed: archived, not applied.
    Late,
    /// A valid ORD file older than the version held: archived, not applied.
    Stale,
    /// An ORD file that could not be read this cycle (retried).
    FileUnreadable,
    /// An ORD file that could not be read in several cycles in a row.
    FileStuck,
    /// A mobility record whose days are closed: archived, not applied.
    LateMobility,
    /// A mobility record the registry cannot map to a supplier on the send.
    UnmappedMobility,
    /// Mobility records (or a whole file) refused and quarantined.
    MobilityRejected,
    /// Days closed without a send (their window passed while egme-ord did not run).
    MissedDays,
    /// The daily send went out at its deadline without a successful intake.
    SendWithoutIntake,
    /// An ORD's send refused by the fence (the ledger is behind its witnesses).
    FenceRefused,
    /// The clock moved more than `max_clock_step`: nothing was done.
    ClockJump,
    /// A clock jump let through by the operator (`--allow-clock-jump`).
    ClockJumpAllowed,
    /// A day reopened by the operator.
    DayReopened,
    /// A day's files sent again by the operator.
    Resend,
    /// CPEs the registry gives to an ORD without an ORD file for a day after `expect_by`.
    OrdFileMissing,
    /// Fewer than `ids_left_warning` transmission ids are left in the 10-digit NTransm.
    IdsRunningOut,
    /// The ORD's transmission ids reached 9999999999: its send is refused.
    IdsExhausted,
    /// The server of an ORD's send folder lacks what a promise needs (e.g. `fsync@openssh.com`):
    /// recorded once, when first seen or when what it lacks changes.
    ServerWeakened,
    /// A changed registry moved a mobility record to another CPE or ORD (a back-dated EVSE or
    /// CPE move): the days it left and the days it joined are sent again.
    MobilityMoved,
}

impl EventKind {
    pub const ALL: [EventKind; 22] = [
        EventKind::MissingTransmission,
        EventKind::UnregisteredCpe,
        EventKind::Rejected,
        EventKind::Late,
        EventKind::Stale,
        EventKind::FileUnreadable,
        EventKind::FileStuck,
        EventKind::LateMobility,
        EventKind::UnmappedMobility,
        EventKind::MobilityRejected,
        EventKind::MissedDays,
        EventKind::SendWithoutIntake,
        EventKind::FenceRefused,
        EventKind::ClockJump,
        EventKind::ClockJumpAllowed,
        EventKind::DayReopened,
        EventKind::Resend,
        EventKind::OrdFileMissing,
        EventKind::IdsRunningOut,
        EventKind::IdsExhausted,
        EventKind::ServerWeakened,
        EventKind::MobilityMoved,
    ];

    /// The name in the ledger, logs, metrics and `egme-ord events --kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MissingTransmission => "missing-transmission",
            EventKind::UnregisteredCpe => "unregistered-cpe",
            EventKind::Rejected => "rejected",
            EventKind::Late => "late",
            EventKind::Stale => "stale",
            EventKind::FileUnreadable => "file-unreadable",
            EventKind::FileStuck => "file-stuck",
            EventKind::LateMobility => "late-mobility",
            EventKind::UnmappedMobility => "unmapped-mobility",
            EventKind::MobilityRejected => "mobility-rejected",
            EventKind::MissedDays => "missed-days",
            EventKind::SendWithoutIntake => "send-without-intake",
            EventKind::FenceRefused => "fence-refused",
            EventKind::ClockJump => "clock-jump",
            EventKind::ClockJumpAllowed => "clock-jump-allowed",
            EventKind::DayReopened => "day-reopened",
            EventKind::Resend => "resend",
            EventKind::OrdFileMissing => "ord-file-missing",
            EventKind::IdsRunningOut => "ids-running-out",
            EventKind::IdsExhausted => "ids-exhausted",
            EventKind::ServerWeakened => "server-weakened",
            EventKind::MobilityMoved => "mobility-moved",
        }
    }

    /// The kind named `code`, if any.
    pub fn from_code(code: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == code)
    }

    /// ERROR for what stops work or loses data until someone acts; WARN for the rest.
    pub fn level(self) -> EventLevel {
        match self {
            EventKind::FileStuck
            | EventKind::MissedDays
            | EventKind::FenceRefused
            | EventKind::ClockJump
            | EventKind::IdsExhausted => EventLevel::Error,
            _ => EventLevel::Warn,
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_code(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.as_str().into())
            );
        }
        assert_eq!(EventKind::from_code("nope"), None);
    }
}

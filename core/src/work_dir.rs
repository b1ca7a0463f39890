//! The work folder's layout, in one place: where the outbox, the archive, the quarantine, the reports and set-aside packs live under `work_dir` (pure paths, no IO).

use crate::ord_name::OrdName;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// The name under which the mobility inbox's inputs are archived and quarantined, where an ORD's
/// are under the ORD's name (so no ORD may be named so: the configuration refuses it).
pub const MOBILITY: &str = "mobility";

/// Where received inputs came from: an ORD, or the mobility inbox — each has its own folder under
/// `archive/` and `quarantine/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    Ord(&'a OrdName),
    Mobility,
}

impl Source<'_> {
    /// The source's folder under `parent` (`archive/` or `quarantine/`).
    fn under(self, parent: &Path) -> PathBuf {
        match self {
            Source::Ord(ord) => parent.join(ord),
            Source::Mobility => parent.join(MOBILITY),
        }
    }
}

const OUTBOX: &str = "outbox";
const ARCHIVE: &str = "archive";
const QUARANTINE: &str = "quarantine";
const REPORTS: &str = "reports";
const ORPHANS: &str = "orphans";

/// The folders whose files the ledger names (a backup copies them, a restore puts them back).
pub const KEPT: [&str; 3] = [OUTBOX, ARCHIVE, QUARANTINE];

/// The work folder (`work_dir`), by what each of its folders holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkDir<'a> {
    root: &'a Path,
}

impl<'a> WorkDir<'a> {
    pub fn new(root: &'a Path) -> WorkDir<'a> {
        WorkDir { root }
    }

    pub fn root(self) -> &'a Path {
        self.root
    }

    /// `outbox/`: every ORD's outbox.
    pub fn outboxes(self) -> PathBuf {
        self.root.join(OUTBOX)
    }

    /// `outbox/<ord>/`: a pack per batch of the files written for the ORD, and its high-water mark.
    pub fn outbox(self, ord: &OrdName) -> PathBuf {
        self.outboxes().join(ord)
    }

    /// `archive/<source>/`: what was received from an ORD (under its name) or from the mobility
    /// inbox ([`MOBILITY`]), a folder per day of receipt.
    pub fn archive(self, from: Source<'_>) -> PathBuf {
        from.under(&self.root.join(ARCHIVE))
    }

    /// `archive/<source>/<YYYY-MM-DD>/`: what was received on `day`.
    pub fn archive_day(self, from: Source<'_>, day: NaiveDate) -> PathBuf {
        self.archive(from).join(day.to_string())
    }

    /// `quarantine/<source>/`: refused inputs, each with its reasons.
    pub fn quarantine(self, from: Source<'_>) -> PathBuf {
        from.under(&self.root.join(QUARANTINE))
    }

    /// `reports/`: the netting reports and the day folders of every ORD.
    pub fn reports(self) -> PathBuf {
        self.root.join(REPORTS)
    }

    /// `reports/<ord>/`.
    pub fn ord_reports(self, ord: &OrdName) -> PathBuf {
        self.reports().join(ord)
    }

    /// `reports/<ord>/<YYYY-MM-DD>/`: one day's reports and page.
    pub fn report_day(self, ord: &OrdName, day: NaiveDate) -> PathBuf {
        self.ord_reports(ord).join(day.to_string())
    }
}

/// `<dir>/orphans/`: packs set aside from `dir` (a pack is never overwritten, not even one no
/// ledger row names).
pub fn orphans(dir: &Path) -> PathBuf {
    dir.join(ORPHANS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_folder_has_its_place_under_the_work_dir() {
        let w = WorkDir::new(Path::new("/w"));
        let day = NaiveDate::from_ymd_opt(2024, 10, 27).unwrap();
        assert_eq!(
            w.outbox(&OrdName::parse("eda").unwrap()),
            Path::new("/w/outbox/eda")
        );
        let eem = OrdName::parse("eem").unwrap();
        assert_eq!(
            w.archive(Source::Mobility),
            Path::new("/w/archive/mobility")
        );
        assert_eq!(
            w.archive_day(Source::Ord(&eem), day),
            Path::new("/w/archive/eem/2024-10-27")
        );
        assert_eq!(
            w.quarantine(Source::Mobility),
            Path::new("/w/quarantine/mobility")
        );
        assert_eq!(
            w.quarantine(Source::Ord(&eem)),
            Path::new("/w/quarantine/eem")
        );
        assert_eq!(w.reports(), Path::new("/w/reports"));
        assert_eq!(
            w.report_day(&OrdName::parse("e-redes").unwrap(), day),
            Path::new("/w/reports/e-redes/2024-10-27")
        );
        assert_eq!(
            orphans(&w.outbox(&OrdName::parse("eda").unwrap())),
            Path::new("/w/outbox/eda/orphans")
        );
        assert_eq!(KEPT, ["outbox", "archive", "quarantine"]);
    }
}

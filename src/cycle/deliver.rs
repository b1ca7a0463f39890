//! Delivery: written files put to the ORD in transmission order and marked delivered; during a send, a worker thread uploads each committed batch while the next one is netted.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::{crashpoint, Cycle, CycleError, OrdSummary};
use crate::fsutil::sha256_of;
use crate::pack::PackReader;
use crate::transport::{PutOutcome, RemoteDir, TransportError};
use egme_ord_core::config::OrdConfig;
use egme_ord_core::ledger::SentFile;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::remote::SafeName;

type PutResults = Vec<Result<PutOutcome, TransportError>>;
/// Batches handed over and not answered yet, at most: the netting waits for the uploads beyond
/// it, so memory stays bounded however far the netting runs ahead.
const MAX_WAITING: usize = 8;
/// A file that could not be used, and why.
type FileFailure = (PathBuf, io::Error);
/// What the worker answers for one batch: the put results, or the outbox file it could not use.
type Answer = Result<PutResults, FileFailure>;
/// Files to put: name and bytes.
type Outgoing = Vec<(SafeName, Vec<u8>)>;
/// A batch for the worker: the files, and for each the size the fence's listing gave a file of
/// that name at the ORD (`None`: not listed there).
type Job = (Vec<SentFile>, Vec<Option<u64>>);

/// Puts `files`, except those the listing showed at the ORD with their size: those are read back
/// first, and each that holds the same bytes is `AlreadyThere` without a put (a cycle killed after
/// its puts, before the ledger recorded them: the rerun's cost follows the files left, and a
/// server that never overwrites is not asked to). Results in order; as `put_many`, they end at
/// the first file not attempted.
fn put_unless_there(
    dir: &mut (dyn RemoteDir + Send),
    files: Outgoing,
    listed: &[Option<u64>],
) -> PutResults {
    let check: Vec<usize> = (0..files.len())
        .filter(|&i| listed.get(i).copied().flatten() == Some(files[i].1.len() as u64))
        .collect();
    if check.is_empty() {
        return dir.put_many(&files);
    }
    let names: Vec<SafeName> = check.iter().map(|&i| files[i].0.clone()).collect();
    let limit = check
        .iter()
        .map(|&i| files[i].1.len() as u64)
        .max()
        .unwrap_or(0);
    let mut there = vec![false; files.len()];
    for (&i, read) in check.iter().zip(dir.read_many(&names, limit)) {
        // Other bytes, or a file gone since the listing: the put decides (a conflict is
        // reported there, never overwritten).
        there[i] = read.is_ok_and(|bytes| bytes == files[i].1);
    }
    let found = there.iter().filter(|t| **t).count();
    if found > 0 {
        tracing::info!(dir = %dir.describe(), files = found, "files already at the ORD with the bytes the ledger recorded (a cycle cut short after its puts): recorded delivered, not put again");
    }
    let to_put: Outgoing = files
        .into_iter()
        .zip(&there)
        .filter(|(_, t)| !**t)
        .map(|(f, _)| f)
        .collect();
    let mut put = if to_put.is_empty() {
        Vec::new()
    } else {
        dir.put_many(&to_put)
    }
    .into_iter();
    let mut out = Vec::with_capacity(there.len());
    for t in there {
        if t {
            out.push(Ok(PutOutcome::AlreadyThere));
        } else {
            match put.next() {
                Some(r) => out.push(r),
                None => break,
            }
        }
    }
    out
}

/// The bytes of `batch` from the outbox, each checked against the sha256 the ledger recorded.
fn outbox_bytes(outbox: &mut PackReader, batch: &[SentFile]) -> Result<Outgoing, FileFailure> {
    batch
        .iter()
        .map(|f| {
            let bytes = outbox.read(&f.name, f.pack.as_ref())?;
            if sha256_of(&bytes) != f.sha256 {
                let path = match &f.pack {
                    Some(slice) => PathBuf::from(&slice.pack).join(&f.name),
                    None => PathBuf::from(&f.name),
                };
                return Err((
                    path,
                    io::Error::other("outbox copy differs from the one recorded: not delivered"),
                ));
            }
            let name = SafeName::new(&f.name).ok_or_else(|| {
                (
                    PathBuf::from(&f.name),
                    io::Error::other("the ledger records a name that is not a safe file name: not delivered (the ledger may be damaged: run `egme-ord verify`)"),
                )
            })?;
            Ok((name, bytes))
        })
        .collect()
}

/// Uploads batches on its own thread while the cycle goes on netting: batches go out in the order
/// they are handed over (transmission order), and after a batch with a failure the worker puts
/// nothing more (those files stay pending for the next delivery). Only the cycle's thread touches
/// the ledger: it records the answers between two netting batches and at [`Cycle::finish_upload`].
pub(super) struct Uploader {
    jobs: Option<mpsc::Sender<Job>>,
    answers: mpsc::Receiver<Answer>,
    worker: Option<JoinHandle<()>>,
    /// Batches handed over and not answered yet, oldest first.
    waiting: VecDeque<Vec<SentFile>>,
    /// The last transmission id handed over.
    cursor: u64,
    error: Option<CycleError>,
}

impl Uploader {
    fn start(
        mut dir: Box<dyn RemoteDir + Send>,
        (outbox, fallback): (PathBuf, PathBuf),
        stop: Option<Arc<AtomicBool>>,
        ord: &OrdName,
    ) -> Result<Uploader, CycleError> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (reply, answers) = mpsc::channel::<Answer>();
        // The worker's log lines carry the cycle's span (its id) as the cycle's own do.
        let span = tracing::Span::current();
        let worker = std::thread::Builder::new()
            .name(format!("deliver-{ord}"))
            .spawn(move || {
                let _cycle = span.enter();
                let fallback = (fallback != outbox).then_some(fallback);
                let mut outbox = PackReader::with_fallback(&outbox, fallback);
                let mut failed = false;
                for (batch, listed) in inbox {
                    let stopping = stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
                    let answer = if failed || stopping {
                        Ok(Vec::new())
                    } else {
                        outbox_bytes(&mut outbox, &batch)
                            .map(|files| put_unless_there(dir.as_mut(), files, &listed))
                    };
                    failed |= match &answer {
                        Ok(results) => {
                            results.len() < batch.len() || results.iter().any(Result::is_err)
                        }
                        Err(_) => true,
                    };
                    if reply.send(answer).is_err() {
                        break;
                    }
                }
            })
            .map_err(|source| CycleError::Io {
                path: PathBuf::from(format!("(delivery thread for {ord})")),
                source,
            })?;
        Ok(Uploader {
            jobs: Some(jobs),
            answers,
            worker: Some(worker),
            waiting: VecDeque::new(),
            cursor: 0,
            error: None,
        })
    }

    /// The worker ended before answering: what it was given stays pending for the next delivery.
    fn worker_gone(&mut self) {
        self.jobs = None;
        self.waiting.clear();
        self.error.get_or_insert(CycleError::Io {
            path: PathBuf::from("(delivery thread)"),
            source: io::Error::other("the delivery thread ended early"),
        });
    }
}

impl Cycle<'_> {
    /// Delivers every file still pending, in transmission order, through an upload worker like the
    /// send's; the first failure stops it (the rest stays pending, in order, for the next cycle).
    pub(super) fn deliver(
        &mut self,
        ord: &OrdConfig,
        sum: &mut OrdSummary,
    ) -> Result<(), CycleError> {
        let mut uploader = None;
        let handed = self.hand_over(ord, &mut uploader, sum);
        let finished = match uploader {
            Some(up) => self.finish_upload(ord, up, sum),
            None => Ok(()),
        };
        handed.and(finished)
    }

    /// Records the files of `batch` that were put (one commit for the batch); returns the first failure.
    /// A crash before the commit re-puts them next time, which finds the same bytes there and counts
    /// them as delivered.
    fn record_deliveries(
        &mut self,
        ord: &OrdConfig,
        batch: &[SentFile],
        results: PutResults,
        sum: &mut OrdSummary,
    ) -> Result<Option<TransportError>, CycleError> {
        let (delivered, first_error) = self.in_batch(|me| {
            let mut delivered = Vec::new();
            let mut first_error = None;
            for (f, result) in batch.iter().zip(results) {
                match result {
                    Ok(outcome) => {
                        if outcome == PutOutcome::Created {
                            me.note_put(Some(&f.name));
                        }
                        crashpoint(me.options.crash_at.as_deref(), "after-delivery-put");
                        me.store.mark_delivered(f.id, me.now)?;
                        delivered.push(f);
                    }
                    Err(e) => {
                        me.note_put(None);
                        first_error.get_or_insert(e);
                    }
                }
            }
            Ok((delivered, first_error))
        })?;
        for f in delivered {
            tracing::info!(ord = %ord.name, file = %f.name, transmission_id = f.transmission_id, cpe = %f.cpe, day = %f.day, "file sent");
            sum.files_delivered += 1;
        }
        Ok(first_error)
    }

    /// Hands every pending file not handed over yet (in transmission order: during a send, the
    /// files of earlier cycles first, then each batch as it commits) to the upload worker, started
    /// on first use, and records the answers that have come back. Does nothing more after a failure.
    pub(super) fn hand_over(
        &mut self,
        ord: &OrdConfig,
        uploader: &mut Option<Uploader>,
        sum: &mut OrdSummary,
    ) -> Result<(), CycleError> {
        if self.hold_delivery {
            return Ok(());
        }
        loop {
            if let Some(up) = uploader.as_mut() {
                // What has come back is recorded; with the worker's queue full, the next answer
                // is waited for.
                let wait = (up.waiting.len() >= MAX_WAITING).then_some(1);
                self.record_answers(ord, up, wait, sum)?;
                if up.error.is_some() || up.jobs.is_none() {
                    return Ok(());
                }
            }
            if self.options.stopping() {
                return Ok(());
            }
            let after = uploader.as_ref().map_or(0, |u| u.cursor);
            let batch = self
                .store
                .pending_after(&ord.name, after, super::intake::BATCH)?;
            let Some(last) = batch.last().map(|f| f.transmission_id) else {
                return Ok(());
            };
            let up = match uploader {
                Some(up) => up,
                None => {
                    crashpoint(self.options.crash_at.as_deref(), "before-delivery");
                    let dir = self.endpoint(&ord.send)?;
                    let outbox = self.outbox_dir(&ord.name);
                    let fallback = self.outbox_read_dir(&ord.name);
                    uploader.insert(Uploader::start(
                        dir,
                        (outbox, fallback),
                        self.options.stop.clone(),
                        &ord.name,
                    )?)
                }
            };
            up.cursor = last;
            up.waiting.push_back(batch.clone());
            let listed = batch
                .iter()
                .map(|f| self.at_ord.get(&f.name).copied())
                .collect();
            if up
                .jobs
                .as_ref()
                .is_none_or(|jobs| jobs.send((batch, listed)).is_err())
            {
                up.worker_gone();
            }
        }
    }

    /// Records the worker's answers: those already there, or, waiting for them, the next `wait`
    /// (`usize::MAX`: all that are owed).
    fn record_answers(
        &mut self,
        ord: &OrdConfig,
        up: &mut Uploader,
        wait: Option<usize>,
        sum: &mut OrdSummary,
    ) -> Result<(), CycleError> {
        let mut waited = 0;
        while !up.waiting.is_empty() {
            let answer = if wait.is_some_and(|n| waited < n) {
                waited += 1;
                up.answers.recv().ok()
            } else {
                match up.answers.try_recv() {
                    Ok(answer) => Some(answer),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => None,
                }
            };
            let Some(answer) = answer else {
                up.worker_gone();
                break;
            };
            let batch = up.waiting.pop_front().unwrap_or_default();
            match answer {
                Ok(results) => {
                    if let Some(e) = self.record_deliveries(ord, &batch, results, sum)? {
                        up.error.get_or_insert(e.into());
                    }
                }
                Err((path, source)) => {
                    up.error.get_or_insert(CycleError::Io { path, source });
                }
            }
        }
        Ok(())
    }

    /// Ends the upload worker: waits for every batch handed over and records it. The first delivery
    /// failure is returned.
    pub(super) fn finish_upload(
        &mut self,
        ord: &OrdConfig,
        mut up: Uploader,
        sum: &mut OrdSummary,
    ) -> Result<(), CycleError> {
        up.jobs = None;
        let recorded = self.record_answers(ord, &mut up, Some(usize::MAX), sum);
        if let Some(worker) = up.worker.take() {
            // A worker that panicked answered nothing more: its files stay pending (recorded above)
            // and the next cycle delivers them.
            let _ = worker.join();
        }
        recorded?;
        match up.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::ord_name;
    use crate::pack::PackBuilder;
    use egme_ord_core::sha256::Sha256;

    fn sent(name: &str, sha256: Sha256) -> SentFile {
        SentFile {
            id: 1,
            ord: ord_name("o"),
            name: name.into(),
            sha256,
            transmission_id: 1,
            previous_id: 0,
            cpe: egme_ord_core::cpe::Cpe::parse("PT0002000123681633GX").unwrap(),
            supplier: "s".into(),
            tariff: egme_ord_core::filename::TariffCycle::BiHourlyDaily,
            day: chrono::NaiveDate::from_ymd_opt(2024, 11, 4).unwrap_or_default(),
            content_hash: sha256_of(b""),
            delivered: false,
            pack: None,
            pruned: false,
        }
    }

    #[test]
    fn an_outbox_copy_changed_since_it_was_recorded_is_not_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut pack = PackBuilder::new(chrono::Utc::now());
        let good = SentFile {
            pack: Some(pack.add(1, "a.sgl", b"abc").unwrap()),
            ..sent("a.sgl", sha256_of(b"abc"))
        };
        let (pack_name, mut bytes) = pack.finish().unwrap().unwrap();
        fs::write(dir.path().join(&pack_name), &bytes).unwrap();
        fs::write(dir.path().join("old.sgl"), b"xyz").unwrap();
        let old = sent("old.sgl", sha256_of(b"xyz"));
        let mut outbox = PackReader::new(dir.path());
        assert_eq!(
            outbox_bytes(&mut outbox, &[good.clone(), old]).unwrap(),
            [
                (SafeName::new("a.sgl").unwrap(), b"abc".to_vec()),
                (SafeName::new("old.sgl").unwrap(), b"xyz".to_vec())
            ]
        );
        // One byte of the file changed in the pack (decompressed, changed, compressed again).
        let at = good.pack.as_ref().map_or(0, |s| s.offset as usize);
        let mut tar = zstd::stream::decode_all(&bytes[..]).unwrap();
        tar[at] = b'X';
        let changed = zstd::stream::encode_all(&tar[..], 1).unwrap();
        fs::write(dir.path().join(&pack_name), &changed).unwrap();
        let (path, e) = outbox_bytes(
            &mut PackReader::new(dir.path()),
            std::slice::from_ref(&good),
        )
        .unwrap_err();
        assert!(path.ends_with("a.sgl"));
        assert!(e.to_string().contains("differs"));
        // One byte of the compressed pack changed: its frame does not decompress, nothing is sent.
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        fs::write(dir.path().join(&pack_name), &bytes).unwrap();
        assert!(outbox_bytes(&mut PackReader::new(dir.path()), &[good]).is_err());
        let (path, _) = outbox_bytes(&mut outbox, &[sent("gone.sgl", sha256_of(b""))]).unwrap_err();
        assert!(path.ends_with("gone.sgl"));
    }
}

//! Pipelined SFTP: many small files in flight on one channel, each request sent without waiting for the replies before it.
//!
//! ssh2's own SFTP waits for every reply (open, write, fsync, close, rename: five round trips per
//! file). Here up to [`WINDOW`] files are in flight on a channel; the server (which answers in
//! order) works through a queue instead of waking up once per request. The state machines below
//! only see a [`Wire`], so they are tested against an in-memory server; [`Pipe`] is the real one.

use std::collections::HashMap;
use std::io::{Read, Write};

use ssh2::{Channel, Session};

use super::wire::{self, Reply, Request};

/// Files in flight per channel.
pub const WINDOW: usize = 32;
/// Bytes per read or write request (a read reply of this size × the window stays well inside
/// the channel's 2 MiB window, so the server never blocks on us).
const CHUNK: usize = 32 * 1024;

/// Why a channel can no longer be used; whatever was in flight on it is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken(pub String);

/// Where requests go and replies come from.
pub trait Wire {
    /// Queues a request; returns its id.
    fn send(&mut self, request: &Request) -> u32;
    /// Sends what is queued, then waits for replies: at least one, all that have arrived.
    fn exchange(&mut self) -> Result<Vec<Reply>, Broken>;
    /// The server flushes files to disk on request (`fsync@openssh.com`).
    fn offers_fsync(&self) -> bool;
}

/// An SFTP subsystem channel of an SSH session, spoken to directly.
pub struct Pipe {
    channel: Channel,
    next_id: u32,
    out: Vec<u8>,
    received: Vec<u8>,
    /// Bytes of `received` already decoded.
    consumed: usize,
    fsync: bool,
}

impl Pipe {
    /// Opens a channel on `session`, starts the SFTP subsystem and exchanges versions.
    pub fn open(session: &Session) -> Result<Pipe, Broken> {
        let mut channel = session
            .channel_session()
            .map_err(|e| Broken(format!("open a channel: {e}")))?;
        channel
            .subsystem("sftp")
            .map_err(|e| Broken(format!("start the sftp subsystem: {e}")))?;
        let mut pipe = Pipe {
            channel,
            next_id: 1,
            out: Vec::new(),
            received: Vec::new(),
            consumed: 0,
            fsync: false,
        };
        wire::encode_init(&mut pipe.out);
        pipe.flush()?;
        let version = loop {
            let split = wire::split_packet(&pipe.received[pipe.consumed..])
                .map_err(|e| Broken(format!("protocol: {e}")))?;
            if let Some((body, used)) = split {
                let version =
                    wire::decode_version(body).map_err(|e| Broken(format!("protocol: {e}")))?;
                pipe.consumed += used;
                break version;
            }
            pipe.fill()?;
        };
        if version.version < wire::VERSION {
            return Err(Broken(format!(
                "the server speaks SFTP version {}, 3 is needed",
                version.version
            )));
        }
        pipe.fsync = version.offers(wire::FSYNC_EXTENSION);
        Ok(pipe)
    }

    fn flush(&mut self) -> Result<(), Broken> {
        if !self.out.is_empty() {
            // Not `Channel::flush`: in libssh2 that discards unread incoming data.
            self.channel
                .write_all(&self.out)
                .map_err(|e| Broken(format!("send: {e}")))?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads what the channel has, blocking until something arrives (or the session's timeout).
    fn fill(&mut self) -> Result<(), Broken> {
        if self.consumed > 0 {
            self.received.drain(..self.consumed);
            self.consumed = 0;
        }
        let len = self.received.len();
        self.received.resize(len + 64 * 1024, 0);
        let read = self.channel.read(&mut self.received[len..]);
        self.received.truncate(len + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => Err(Broken("the server closed the channel".into())),
            Ok(_) => Ok(()),
            Err(e) => Err(Broken(format!("receive: {e}"))),
        }
    }
}

impl Wire for Pipe {
    fn send(&mut self, request: &Request) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        wire::encode(&mut self.out, id, request);
        id
    }

    fn exchange(&mut self) -> Result<Vec<Reply>, Broken> {
        self.flush()?;
        let mut replies = Vec::new();
        loop {
            while let Some((body, used)) = wire::split_packet(&self.received[self.consumed..])
                .map_err(|e| Broken(format!("protocol: {e}")))?
            {
                replies
                    .push(wire::decode_reply(body).map_err(|e| Broken(format!("protocol: {e}")))?);
                self.consumed += used;
            }
            if !replies.is_empty() {
                return Ok(replies);
            }
            self.fill()?;
        }
    }

    fn offers_fsync(&self) -> bool {
        self.fsync
    }
}

/// One file to put: written under `temp`, flushed, closed, then renamed to `target`.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub temp: String,
    pub target: String,
    pub bytes: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PutStage {
    Waiting,
    Opening,
    Writing { outstanding: usize, ok: bool },
    Closed,
    Renaming,
    Created,
    Failed,
}

#[derive(Debug, Clone, Copy)]
enum PutOp {
    Open,
    Write,
    Fsync,
    Close,
    Rename,
}

/// Puts `uploads`; `true` for each one created under its target name. A `false` was not done or
/// failed somewhere (the name may be taken, the server may have refused): the caller retries it
/// one by one. Renames are sent in the order of `uploads`; with `strict`, each waits for the one
/// before it to succeed and the first failure stops them, so the created files are a prefix.
/// With `fsync`, each file is flushed to disk before it is closed, where the server offers it.
pub fn put_all(
    wire: &mut impl Wire,
    uploads: &[Upload],
    strict: bool,
    fsync: bool,
) -> (Vec<bool>, Option<Broken>) {
    let n = uploads.len();
    let mut stage = vec![PutStage::Waiting; n];
    let mut pending: HashMap<u32, (usize, PutOp)> = HashMap::new();
    let (mut next_open, mut next_rename, mut active) = (0, 0, 0);
    let mut rename_in_flight = false;
    let mut stopped = false;
    let created = |stage: &[PutStage]| stage.iter().map(|s| *s == PutStage::Created).collect();
    loop {
        while !stopped && active < WINDOW && next_open < n {
            let u = &uploads[next_open];
            let id = wire.send(&Request::Open {
                path: &u.temp,
                flags: wire::OPEN_WRITE | wire::OPEN_CREATE | wire::OPEN_TRUNCATE,
                mode: Some(0o640),
            });
            pending.insert(id, (next_open, PutOp::Open));
            stage[next_open] = PutStage::Opening;
            next_open += 1;
            active += 1;
        }
        while !stopped && next_rename < next_open {
            match stage[next_rename] {
                PutStage::Closed if !(strict && rename_in_flight) => {
                    let u = &uploads[next_rename];
                    let id = wire.send(&Request::Rename {
                        from: &u.temp,
                        to: &u.target,
                    });
                    pending.insert(id, (next_rename, PutOp::Rename));
                    stage[next_rename] = PutStage::Renaming;
                    rename_in_flight = true;
                    next_rename += 1;
                }
                PutStage::Failed if strict => stopped = true,
                PutStage::Failed => next_rename += 1,
                _ => break,
            }
        }
        if pending.is_empty() {
            return (created(&stage), None);
        }
        let replies = match wire.exchange() {
            Ok(replies) => replies,
            Err(broken) => return (created(&stage), Some(broken)),
        };
        for reply in replies {
            let Some((i, op)) = pending.remove(&reply.id()) else {
                return (
                    created(&stage),
                    Some(Broken(format!("a reply to unknown request {}", reply.id()))),
                );
            };
            let ok = matches!(reply, Reply::Status { code: 0, .. });
            match op {
                PutOp::Open => {
                    let Reply::Handle { handle, .. } = reply else {
                        stage[i] = PutStage::Failed;
                        active -= 1;
                        continue;
                    };
                    let bytes = uploads[i].bytes;
                    let mut outstanding = 0;
                    for (k, chunk) in bytes.chunks(CHUNK).enumerate() {
                        let id = wire.send(&Request::Write {
                            handle: &handle,
                            offset: (k * CHUNK) as u64,
                            data: chunk,
                        });
                        pending.insert(id, (i, PutOp::Write));
                        outstanding += 1;
                    }
                    if fsync && wire.offers_fsync() {
                        let id = wire.send(&Request::Fsync { handle: &handle });
                        pending.insert(id, (i, PutOp::Fsync));
                        outstanding += 1;
                    }
                    let id = wire.send(&Request::Close { handle: &handle });
                    pending.insert(id, (i, PutOp::Close));
                    stage[i] = PutStage::Writing {
                        outstanding: outstanding + 1,
                        ok: true,
                    };
                }
                PutOp::Write | PutOp::Fsync | PutOp::Close => {
                    if let PutStage::Writing {
                        outstanding,
                        ok: all_ok,
                    } = &mut stage[i]
                    {
                        *outstanding -= 1;
                        // A refused fsync is not a failure, as in the one-by-one path.
                        *all_ok &= ok || matches!(op, PutOp::Fsync);
                        if *outstanding == 0 {
                            if *all_ok {
                                stage[i] = PutStage::Closed;
                            } else {
                                stage[i] = PutStage::Failed;
                                active -= 1;
                            }
                        }
                    }
                }
                PutOp::Rename => {
                    rename_in_flight = false;
                    active -= 1;
                    if ok {
                        stage[i] = PutStage::Created;
                    } else {
                        stage[i] = PutStage::Failed;
                        stopped |= strict;
                    }
                }
            }
        }
    }
}

/// What reading one file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Bytes(Vec<u8>),
    /// A link, folder, device or pipe: never opened.
    NotRegular,
    /// More than the limit: stopped after this many bytes.
    TooLarge(u64),
    /// The server refused something: to be retried one by one.
    Retry,
}

#[derive(Debug)]
enum ReadStage {
    Waiting,
    Statting,
    Opening,
    Reading { handle: Vec<u8>, data: Vec<u8> },
    Closing(Fetched),
    Done(Fetched),
}

/// Reads the files at `paths` (each checked with lstat first: only regular files are opened), at
/// most `limit` bytes each. `None` for a file the channel broke before finishing.
pub fn read_all(
    wire: &mut impl Wire,
    paths: &[String],
    limit: u64,
) -> (Vec<Option<Fetched>>, Option<Broken>) {
    let n = paths.len();
    let mut stage: Vec<ReadStage> = (0..n).map(|_| ReadStage::Waiting).collect();
    let mut pending: HashMap<u32, usize> = HashMap::new();
    let (mut next, mut active) = (0, 0);
    let finish = |stage: Vec<ReadStage>| {
        stage
            .into_iter()
            .map(|s| match s {
                ReadStage::Done(f) => Some(f),
                _ => None,
            })
            .collect()
    };
    loop {
        while active < WINDOW && next < n {
            let id = wire.send(&Request::Lstat { path: &paths[next] });
            pending.insert(id, next);
            stage[next] = ReadStage::Statting;
            next += 1;
            active += 1;
        }
        if pending.is_empty() {
            return (finish(stage), None);
        }
        let replies = match wire.exchange() {
            Ok(replies) => replies,
            Err(broken) => return (finish(stage), Some(broken)),
        };
        for reply in replies {
            let Some(i) = pending.remove(&reply.id()) else {
                return (
                    finish(stage),
                    Some(Broken(format!("a reply to unknown request {}", reply.id()))),
                );
            };
            let current = std::mem::replace(&mut stage[i], ReadStage::Waiting);
            let mut request = |r: Request| {
                pending.insert(wire.send(&r), i);
            };
            stage[i] = match (current, reply) {
                (ReadStage::Statting, Reply::Attrs { attrs, .. }) if attrs.is_regular_file() => {
                    request(Request::Open {
                        path: &paths[i],
                        flags: wire::OPEN_READ,
                        mode: None,
                    });
                    ReadStage::Opening
                }
                (ReadStage::Statting, Reply::Attrs { .. }) => ReadStage::Done(Fetched::NotRegular),
                (ReadStage::Opening, Reply::Handle { handle, .. }) => {
                    request(Request::Read {
                        handle: &handle,
                        offset: 0,
                        len: CHUNK as u32,
                    });
                    ReadStage::Reading {
                        handle,
                        data: Vec::new(),
                    }
                }
                (ReadStage::Reading { handle, mut data }, reply) => {
                    let next_stage = match reply {
                        Reply::Data { data: more, .. } if !more.is_empty() => {
                            data.extend_from_slice(&more);
                            if data.len() as u64 > limit {
                                Some(Fetched::TooLarge(data.len() as u64))
                            } else {
                                None
                            }
                        }
                        Reply::Status {
                            code: wire::STATUS_EOF,
                            ..
                        } => Some(Fetched::Bytes(std::mem::take(&mut data))),
                        _ => Some(Fetched::Retry),
                    };
                    match next_stage {
                        None => {
                            request(Request::Read {
                                handle: &handle,
                                offset: data.len() as u64,
                                len: CHUNK as u32,
                            });
                            ReadStage::Reading { handle, data }
                        }
                        Some(fetched) => {
                            request(Request::Close { handle: &handle });
                            ReadStage::Closing(fetched)
                        }
                    }
                }
                // A failed close after the whole file was read changes nothing.
                (ReadStage::Closing(fetched), _) => ReadStage::Done(fetched),
                _ => ReadStage::Done(Fetched::Retry),
            };
            if matches!(stage[i], ReadStage::Done(_)) {
                active -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, VecDeque};

    /// An SFTP server in memory, answering in order, with faults to order.
    #[derive(Default)]
    struct MemoryServer {
        files: BTreeMap<String, Vec<u8>>,
        links: Vec<String>,
        handles: HashMap<Vec<u8>, (String, bool)>,
        next_handle: u32,
        next_id: u32,
        replies: VecDeque<Reply>,
        /// Requests answered before the connection breaks.
        break_after: Option<usize>,
        answered: usize,
        /// Names whose open is refused.
        refuse_open: Vec<String>,
        fsync: bool,
        fsyncs: usize,
        /// Rename order seen, for the order checks.
        renamed: Vec<String>,
        max_in_flight: usize,
    }

    impl MemoryServer {
        fn status(&mut self, id: u32, code: u32) {
            self.replies.push_back(Reply::Status {
                id,
                code,
                message: String::new(),
            });
        }
    }

    impl Wire for MemoryServer {
        fn send(&mut self, request: &Request) -> u32 {
            self.next_id += 1;
            let id = self.next_id;
            match request {
                Request::Open { path, flags, .. } => {
                    if self.refuse_open.iter().any(|p| p == path) {
                        self.status(id, 3);
                    } else if flags & wire::OPEN_WRITE != 0 {
                        self.files.insert(path.to_string(), Vec::new());
                        self.next_handle += 1;
                        let h = self.next_handle.to_be_bytes().to_vec();
                        self.handles.insert(h.clone(), (path.to_string(), true));
                        self.replies.push_back(Reply::Handle { id, handle: h });
                    } else if self.files.contains_key(*path) {
                        self.next_handle += 1;
                        let h = self.next_handle.to_be_bytes().to_vec();
                        self.handles.insert(h.clone(), (path.to_string(), false));
                        self.replies.push_back(Reply::Handle { id, handle: h });
                    } else {
                        self.status(id, 2);
                    }
                }
                Request::Write {
                    handle,
                    offset,
                    data,
                } => {
                    let (path, _) = self.handles[*handle].clone();
                    let f = self.files.get_mut(&path).unwrap();
                    assert_eq!(*offset as usize, f.len(), "writes in order");
                    f.extend_from_slice(data);
                    self.status(id, 0);
                }
                Request::Read {
                    handle,
                    offset,
                    len,
                } => {
                    let (path, _) = self.handles[*handle].clone();
                    let f = &self.files[&path];
                    let start = (*offset as usize).min(f.len());
                    let end = (start + *len as usize).min(f.len());
                    if start == end {
                        self.status(id, wire::STATUS_EOF);
                    } else {
                        let data = f[start..end].to_vec();
                        self.replies.push_back(Reply::Data { id, data });
                    }
                }
                Request::Fsync { .. } => {
                    self.fsyncs += 1;
                    self.status(id, 0);
                }
                Request::Close { handle } => {
                    self.handles.remove(*handle);
                    self.status(id, 0);
                }
                Request::Lstat { path } => {
                    if self.links.iter().any(|l| l == path) {
                        let attrs = wire::Attrs {
                            size: Some(4),
                            permissions: Some(0o120_777),
                        };
                        self.replies.push_back(Reply::Attrs { id, attrs });
                    } else if let Some(f) = self.files.get(*path) {
                        let attrs = wire::Attrs {
                            size: Some(f.len() as u64),
                            permissions: Some(0o100_640),
                        };
                        self.replies.push_back(Reply::Attrs { id, attrs });
                    } else {
                        self.status(id, 2);
                    }
                }
                Request::Rename { from, to } => {
                    if self.files.contains_key(*to) || !self.files.contains_key(*from) {
                        self.status(id, 4);
                    } else {
                        let bytes = self.files.remove(*from).unwrap();
                        self.files.insert(to.to_string(), bytes);
                        self.renamed.push(to.to_string());
                        self.status(id, 0);
                    }
                }
            }
            self.max_in_flight = self.max_in_flight.max(self.replies.len());
            id
        }

        fn exchange(&mut self) -> Result<Vec<Reply>, Broken> {
            let mut out = Vec::new();
            while let Some(r) = self.replies.pop_front() {
                if self.break_after.is_some_and(|n| self.answered >= n) {
                    return Err(Broken("cut".into()));
                }
                self.answered += 1;
                out.push(r);
            }
            assert!(!out.is_empty(), "exchange with nothing in flight");
            Ok(out)
        }

        fn offers_fsync(&self) -> bool {
            self.fsync
        }
    }

    fn uploads(files: &[(String, Vec<u8>)]) -> Vec<Upload<'_>> {
        files
            .iter()
            .map(|(name, bytes)| Upload {
                temp: format!("/d/.{name}.egme-tmp"),
                target: format!("/d/{name}"),
                bytes,
            })
            .collect()
    }

    fn files(n: usize, size: usize) -> Vec<(String, Vec<u8>)> {
        (0..n)
            .map(|i| (format!("f{i:04}"), vec![(i % 251) as u8; size + i]))
            .collect()
    }

    #[test]
    fn every_file_is_written_flushed_and_renamed_in_order_with_many_in_flight() {
        let mut server = MemoryServer {
            fsync: true,
            ..Default::default()
        };
        let files = files(100, 40_000);
        let (created, broken) = put_all(&mut server, &uploads(&files), false, true);
        assert_eq!(broken, None);
        assert!(created.iter().all(|c| *c));
        for (name, bytes) in &files {
            assert_eq!(&server.files[&format!("/d/{name}")], bytes);
        }
        assert_eq!(server.files.len(), 100, "no temporary file left");
        assert_eq!(server.fsyncs, 100);
        let order: Vec<String> = files.iter().map(|(n, _)| format!("/d/{n}")).collect();
        assert_eq!(server.renamed, order);
        assert!(server.max_in_flight > 10, "requests are pipelined");
        assert!(server.handles.is_empty(), "every handle closed");
    }

    #[test]
    fn no_fsync_is_sent_to_a_server_that_does_not_offer_it_or_when_turned_off() {
        let mut server = MemoryServer::default();
        let files = files(3, 10);
        let (created, _) = put_all(&mut server, &uploads(&files), true, true);
        assert_eq!(created, [true, true, true]);
        assert_eq!(server.fsyncs, 0);
        let mut server = MemoryServer {
            fsync: true,
            ..Default::default()
        };
        let (created, _) = put_all(&mut server, &uploads(&files), true, false);
        assert_eq!(created, [true, true, true]);
        assert_eq!(server.fsyncs, 0);
    }

    #[test]
    fn a_taken_name_is_left_to_the_caller_and_strict_mode_stops_there() {
        let files = files(6, 10);
        let mut server = MemoryServer::default();
        server.files.insert("/d/f0002".into(), b"other".to_vec());
        let (created, broken) = put_all(&mut server, &uploads(&files), true, true);
        assert_eq!(broken, None);
        assert_eq!(created, [true, true, false, false, false, false]);
        assert_eq!(server.renamed, ["/d/f0000", "/d/f0001"]);

        let mut server = MemoryServer::default();
        server.files.insert("/d/f0002".into(), b"other".to_vec());
        let (created, _) = put_all(&mut server, &uploads(&files), false, true);
        assert_eq!(created, [true, true, false, true, true, true]);
    }

    #[test]
    fn a_refused_open_fails_that_file_only() {
        let files = files(4, 10);
        let mut server = MemoryServer {
            refuse_open: vec!["/d/.f0001.egme-tmp".into()],
            ..Default::default()
        };
        let (created, _) = put_all(&mut server, &uploads(&files), false, true);
        assert_eq!(created, [true, false, true, true]);
    }

    #[test]
    fn a_broken_channel_reports_what_was_created_before_it() {
        let files = files(200, 10);
        let mut server = MemoryServer {
            break_after: Some(300),
            ..Default::default()
        };
        let (created, broken) = put_all(&mut server, &uploads(&files), false, true);
        assert!(broken.is_some());
        let done = created.iter().filter(|c| **c).count();
        assert!(done > 0 && done < 200, "{done}");
        assert!(created[..done].iter().all(|c| *c), "created in order");
    }

    #[test]
    fn reads_return_whole_files_and_refuse_links_and_oversized_ones() {
        let mut server = MemoryServer::default();
        let mut paths = Vec::new();
        for i in 0..80 {
            let p = format!("/in/{i}");
            server.files.insert(p.clone(), vec![i as u8; i * 1500]);
            paths.push(p);
        }
        server.links.push("/in/link".into());
        paths.push("/in/link".into());
        paths.push("/in/missing".into());
        let (got, broken) = read_all(&mut server, &paths, 100_000);
        assert_eq!(broken, None);
        for (i, g) in got.iter().take(67).enumerate() {
            assert_eq!(g, &Some(Fetched::Bytes(vec![i as u8; i * 1500])), "{i}");
        }
        assert!(matches!(got[70], Some(Fetched::TooLarge(n)) if n > 100_000));
        assert_eq!(got[80], Some(Fetched::NotRegular));
        assert_eq!(got[81], Some(Fetched::Retry));
        assert!(server.handles.is_empty(), "every handle closed");
        assert!(server.max_in_flight > 10, "requests are pipelined");
    }

    #[test]
    fn an_empty_file_reads_as_empty() {
        let mut server = MemoryServer::default();
        server.files.insert("/e".into(), Vec::new());
        let (got, _) = read_all(&mut server, &["/e".to_string()], 10);
        assert_eq!(got, [Some(Fetched::Bytes(Vec::new()))]);
    }
}

//! Pipelined SFTP: many small files in flight on one channel, each request sent without waiting for the replies before it.
//!
//! ssh2's own SFTP waits for every reply (open, write, fsync, close, rename: five round trips per
//! file). Here up to [`WINDOW`] files are in flight on a channel; the server (which answers in
//! order) works through a queue instead of waking up once per request. The state machines below
//! only see a [`Wire`], so they are tested against an in-memory server; [`Pipe`] is the real one,
//! and [`Lanes`] makes several channels of one session one wire (each channel has its own
//! sftp-server process on the other side: more files flushed at once, no more handshakes).

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};

use ssh2::{Channel, Session};

use super::wire::{self, NameEntry, Reply, Request};
use egme_ord_core::remote::{entry_kind, EntryKind};

/// Files in flight per channel.
pub const WINDOW: usize = 32;
/// Bytes per read or write request (a read reply of this size × the window stays well inside
/// the channel's 2 MiB window, so the server never blocks on us; with [`Lanes`], a file being
/// read has one request in flight at a time and opens go to the less busy lane, so each lane
/// keeps about [`WINDOW`] files).
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
    /// Files to keep in flight.
    fn window(&self) -> usize {
        WINDOW
    }
}

/// One channel as a lane of [`Lanes`]: requests under ids chosen by the caller, replies taken as
/// they come or waited for.
pub trait Lane {
    /// Queues `request` under `id`.
    fn send_as(&mut self, id: u32, request: &Request);
    /// Sends what is queued and returns the replies that have already arrived, maybe none.
    fn poll(&mut self) -> Result<Vec<Reply>, Broken>;
    /// Sends what is queued, then waits for replies: at least one, all that have arrived.
    fn wait(&mut self) -> Result<Vec<Reply>, Broken>;
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
    /// What the server answered to `init`: its version and extensions.
    server: wire::ServerVersion,
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
            server: wire::ServerVersion {
                version: 0,
                extensions: Vec::new(),
            },
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
        pipe.server = version;
        Ok(pipe)
    }

    /// The server's version and extensions.
    pub fn server(&self) -> &wire::ServerVersion {
        &self.server
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

impl Pipe {
    /// The whole replies received so far.
    fn decode(&mut self, replies: &mut Vec<Reply>) -> Result<(), Broken> {
        while let Some((body, used)) = wire::split_packet(&self.received[self.consumed..])
            .map_err(|e| Broken(format!("protocol: {e}")))?
        {
            replies.push(wire::decode_reply(body).map_err(|e| Broken(format!("protocol: {e}")))?);
            self.consumed += used;
        }
        Ok(())
    }
}

impl Lane for Pipe {
    fn send_as(&mut self, id: u32, request: &Request) {
        wire::encode(&mut self.out, id, request);
    }

    fn poll(&mut self) -> Result<Vec<Reply>, Broken> {
        self.flush()?;
        // What libssh2 has already taken off the connection for this channel: reading it does not
        // block.
        if self.channel.read_window().available > 0 {
            self.fill()?;
        }
        let mut replies = Vec::new();
        self.decode(&mut replies)?;
        Ok(replies)
    }

    fn wait(&mut self) -> Result<Vec<Reply>, Broken> {
        self.flush()?;
        let mut replies = Vec::new();
        loop {
            self.decode(&mut replies)?;
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

impl Wire for Pipe {
    fn send(&mut self, request: &Request) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.send_as(id, request);
        id
    }

    fn exchange(&mut self) -> Result<Vec<Reply>, Broken> {
        self.wait()
    }

    fn offers_fsync(&self) -> bool {
        self.fsync
    }
}

/// Several channels of one SSH session as one [`Wire`]. A file's open goes to the lane with the
/// fewest requests in flight, and everything done with its handle follows it there (handles are
/// tagged with their lane); renames all go to the first lane, so that a session's renames still
/// happen in the order they were sent. Replies are taken from every lane that has some; when none
/// has, it waits on one lane that has requests in flight (the others' servers keep working through
/// their queues meanwhile).
pub struct Lanes<L> {
    lanes: Vec<L>,
    in_flight: Vec<usize>,
    lane_of: HashMap<u32, usize>,
    next_id: u32,
    next_wait: usize,
}

impl<L: Lane> Lanes<L> {
    /// `lanes` must not be empty.
    pub fn new(lanes: Vec<L>) -> Lanes<L> {
        Lanes {
            in_flight: vec![0; lanes.len()],
            lanes,
            lane_of: HashMap::new(),
            next_id: 1,
            next_wait: 0,
        }
    }

    /// The first lane (there is always one).
    pub fn first(&self) -> Option<&L> {
        self.lanes.first()
    }

    /// The lane a handle was tagged with, and the server's own handle.
    fn untag<'h>(&self, handle: &'h [u8]) -> (usize, &'h [u8]) {
        match handle.split_first() {
            Some((&lane, rest)) if (lane as usize) < self.lanes.len() => (lane as usize, rest),
            _ => (0, handle),
        }
    }

    /// Accounts for `replies` of `lane` and tags the handles it gave.
    fn received(&mut self, lane: usize, replies: &mut [Reply]) {
        for reply in replies.iter_mut() {
            if self.lane_of.remove(&reply.id()).is_some() {
                self.in_flight[lane] = self.in_flight[lane].saturating_sub(1);
            }
            if let Reply::Handle { handle, .. } = reply {
                handle.insert(0, lane as u8);
            }
        }
    }
}

impl<L: Lane> Wire for Lanes<L> {
    fn send(&mut self, request: &Request) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let least_busy = || {
            (0..self.in_flight.len())
                .min_by_key(|&l| self.in_flight[l])
                .unwrap_or(0)
        };
        let (lane, routed) = match request.handle() {
            Some(tagged) => {
                let (lane, handle) = self.untag(tagged);
                (lane, request.with_handle(handle))
            }
            None if matches!(request, Request::Rename { .. }) => (0, request.clone()),
            None => (least_busy(), request.clone()),
        };
        if let Some(l) = self.lanes.get_mut(lane) {
            l.send_as(id, &routed);
            self.in_flight[lane] += 1;
            self.lane_of.insert(id, lane);
        }
        id
    }

    fn exchange(&mut self) -> Result<Vec<Reply>, Broken> {
        let mut replies = Vec::new();
        for lane in 0..self.lanes.len() {
            if self.in_flight[lane] > 0 {
                let mut got = self.lanes[lane].poll()?;
                self.received(lane, &mut got);
                replies.append(&mut got);
            }
        }
        if !replies.is_empty() {
            return Ok(replies);
        }
        let n = self.lanes.len();
        let Some(lane) = (0..n)
            .map(|k| (self.next_wait + k) % n)
            .find(|&l| self.in_flight[l] > 0)
        else {
            return Err(Broken("waiting for replies with nothing in flight".into()));
        };
        self.next_wait = (lane + 1) % n;
        let mut got = self.lanes[lane].wait()?;
        self.received(lane, &mut got);
        Ok(got)
    }

    fn offers_fsync(&self) -> bool {
        self.lanes.iter().all(|l| l.offers_fsync())
    }

    fn window(&self) -> usize {
        WINDOW * self.lanes.len()
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
    /// The open was refused: a leftover of ours under the temporary name is being removed, then
    /// the open is tried once more.
    Clearing,
    Reopening,
    Writing {
        outstanding: usize,
        ok: bool,
    },
    Closed,
    Renaming,
    Created,
    Failed,
}

#[derive(Debug, Clone, Copy)]
enum PutOp {
    Open,
    Remove,
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
    let mut puts = Puts {
        uploads,
        strict,
        fsync,
        stage: vec![PutStage::Waiting; uploads.len()],
        pending: HashMap::new(),
        next_open: 0,
        next_rename: 0,
        active: 0,
        rename_in_flight: false,
        stopped: false,
    };
    loop {
        puts.open_more(wire);
        puts.rename_ready(wire);
        if puts.pending.is_empty() {
            return (puts.created(), None);
        }
        let replies = match wire.exchange() {
            Ok(replies) => replies,
            Err(broken) => return (puts.created(), Some(broken)),
        };
        for reply in replies {
            if let Err(broken) = puts.on_reply(wire, reply) {
                return (puts.created(), Some(broken));
            }
        }
    }
}

/// The state of a pipelined batch of puts: where each file is, and the requests in flight.
struct Puts<'u, 'b> {
    uploads: &'u [Upload<'b>],
    strict: bool,
    fsync: bool,
    stage: Vec<PutStage>,
    pending: HashMap<u32, (usize, PutOp)>,
    next_open: usize,
    next_rename: usize,
    /// Files opened and not yet created or failed (bounded by the wire's window).
    active: usize,
    rename_in_flight: bool,
    /// Strict mode after a failure: nothing more is opened or renamed.
    stopped: bool,
}

impl Puts<'_, '_> {
    fn created(&self) -> Vec<bool> {
        self.stage.iter().map(|s| *s == PutStage::Created).collect()
    }

    /// Opens the next files' temporary names while the window has room.
    fn open_more(&mut self, wire: &mut impl Wire) {
        while !self.stopped && self.active < wire.window() && self.next_open < self.uploads.len() {
            let i = self.next_open;
            let id = wire.send(&Request::Open {
                path: &self.uploads[i].temp,
                flags: wire::OPEN_WRITE | wire::OPEN_CREATE | wire::OPEN_TRUNCATE,
                mode: Some(0o640),
            });
            self.pending.insert(id, (i, PutOp::Open));
            self.stage[i] = PutStage::Opening;
            self.next_open += 1;
            self.active += 1;
        }
    }

    /// Renames, in order, the files that are written and closed (strict: one at a time, and
    /// none after a failure).
    fn rename_ready(&mut self, wire: &mut impl Wire) {
        while !self.stopped && self.next_rename < self.next_open {
            let i = self.next_rename;
            match self.stage[i] {
                PutStage::Closed if !(self.strict && self.rename_in_flight) => {
                    let u = &self.uploads[i];
                    let id = wire.send(&Request::Rename {
                        from: &u.temp,
                        to: &u.target,
                    });
                    self.pending.insert(id, (i, PutOp::Rename));
                    self.stage[i] = PutStage::Renaming;
                    self.rename_in_flight = true;
                    self.next_rename += 1;
                }
                PutStage::Failed if self.strict => self.stopped = true,
                PutStage::Failed => self.next_rename += 1,
                _ => break,
            }
        }
    }

    /// Moves the file a reply is about to its next stage.
    fn on_reply(&mut self, wire: &mut impl Wire, reply: Reply) -> Result<(), Broken> {
        let Some((i, op)) = self.pending.remove(&reply.id()) else {
            return Err(Broken(format!("a reply to unknown request {}", reply.id())));
        };
        let ok = matches!(reply, Reply::Status { code: 0, .. });
        match op {
            PutOp::Open => match reply {
                Reply::Handle { handle, .. } => self.write_and_close(wire, i, &handle),
                // A server that never overwrites (ProFTPD's `AllowOverwrite off`) refuses to
                // open a leftover of ours again: it is removed, and the open tried once more.
                _ if self.stage[i] == PutStage::Opening => {
                    let id = wire.send(&Request::Remove {
                        path: &self.uploads[i].temp,
                    });
                    self.pending.insert(id, (i, PutOp::Remove));
                    self.stage[i] = PutStage::Clearing;
                }
                _ => {
                    self.stage[i] = PutStage::Failed;
                    self.active -= 1;
                }
            },
            // Whatever the remove says (most often: no such file), the open is tried again.
            PutOp::Remove => {
                let id = wire.send(&Request::Open {
                    path: &self.uploads[i].temp,
                    flags: wire::OPEN_WRITE | wire::OPEN_CREATE | wire::OPEN_TRUNCATE,
                    mode: Some(0o640),
                });
                self.pending.insert(id, (i, PutOp::Open));
                self.stage[i] = PutStage::Reopening;
            }
            PutOp::Write | PutOp::Fsync | PutOp::Close => {
                if let PutStage::Writing {
                    outstanding,
                    ok: all_ok,
                } = &mut self.stage[i]
                {
                    *outstanding -= 1;
                    // A refused fsync is not a failure, as in the one-by-one path.
                    *all_ok &= ok || matches!(op, PutOp::Fsync);
                    if *outstanding == 0 {
                        if *all_ok {
                            self.stage[i] = PutStage::Closed;
                        } else {
                            self.stage[i] = PutStage::Failed;
                            self.active -= 1;
                        }
                    }
                }
            }
            PutOp::Rename => {
                self.rename_in_flight = false;
                self.active -= 1;
                if ok {
                    self.stage[i] = PutStage::Created;
                } else {
                    self.stage[i] = PutStage::Failed;
                    self.stopped |= self.strict;
                }
            }
        }
        Ok(())
    }

    /// Sends file `i`'s writes, its fsync (where offered and wanted) and its close.
    fn write_and_close(&mut self, wire: &mut impl Wire, i: usize, handle: &[u8]) {
        let bytes = self.uploads[i].bytes;
        let mut outstanding = 0;
        for (k, chunk) in bytes.chunks(CHUNK).enumerate() {
            let id = wire.send(&Request::Write {
                handle,
                offset: (k * CHUNK) as u64,
                data: chunk,
            });
            self.pending.insert(id, (i, PutOp::Write));
            outstanding += 1;
        }
        if self.fsync && wire.offers_fsync() {
            let id = wire.send(&Request::Fsync { handle });
            self.pending.insert(id, (i, PutOp::Fsync));
            outstanding += 1;
        }
        let id = wire.send(&Request::Close { handle });
        self.pending.insert(id, (i, PutOp::Close));
        self.stage[i] = PutStage::Writing {
            outstanding: outstanding + 1,
            ok: true,
        };
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
        while active < wire.window() && next < n {
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
            stage[i] = next_read_stage(current, reply, &paths[i], limit, &mut request);
            if matches!(stage[i], ReadStage::Done(_)) {
                active -= 1;
            }
        }
    }
}

/// Where one file's read goes after `reply`, sending the request that takes it there.
fn next_read_stage(
    current: ReadStage,
    reply: Reply,
    path: &str,
    limit: u64,
    request: &mut impl FnMut(Request),
) -> ReadStage {
    match (current, reply) {
        // A server that gives no permission bits says no type: the file is opened (a folder then
        // fails to read, and is retried one by one, where it fails as a file).
        (ReadStage::Statting, Reply::Attrs { attrs, .. })
            if attrs.is_regular_file() || attrs.permissions.is_none() =>
        {
            request(Request::Open {
                path,
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
            let fetched = match reply {
                Reply::Data { data: more, .. } if !more.is_empty() => {
                    data.extend_from_slice(&more);
                    (data.len() as u64 > limit).then_some(Fetched::TooLarge(data.len() as u64))
                }
                Reply::Status {
                    code: wire::STATUS_EOF,
                    ..
                } => Some(Fetched::Bytes(std::mem::take(&mut data))),
                _ => Some(Fetched::Retry),
            };
            match fetched {
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
    }
}

/// Sends `requests` all at once and returns their replies in the same order.
fn round_trip(wire: &mut impl Wire, requests: &[Request]) -> Result<Vec<Reply>, Broken> {
    let ids: Vec<u32> = requests.iter().map(|r| wire.send(r)).collect();
    let mut got: HashMap<u32, Reply> = HashMap::new();
    while got.len() < ids.len() {
        for reply in wire.exchange()? {
            got.insert(reply.id(), reply);
        }
    }
    ids.iter()
        .map(|id| {
            got.remove(id)
                .ok_or_else(|| Broken(format!("no reply to request {id}")))
        })
        .collect()
}

/// A refusal by the server: its status code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: u32,
    pub message: String,
}

fn refused(reply: Reply) -> Refused {
    match reply {
        Reply::Status { code, message, .. } => Refused { code, message },
        other => Refused {
            code: u32::MAX,
            message: format!("unexpected reply {other:?}"),
        },
    }
}

/// READDIRs kept outstanding on a folder's handle while it is listed: the server reads the next
/// batch while this side takes the last (a third less time for a large folder, against one at a
/// time; docs/PERFORMANCE.md).
pub const READDIR_DEPTH: usize = 8;

/// Why a folder was not listed, the connection being fine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlisted {
    /// The server refused to open the folder.
    Refused(Refused),
    /// The server refused a READDIR (with others outstanding, maybe for that reason alone).
    ReadRefused(Refused),
    /// The server answered a READDIR with names after it had answered an earlier one with the
    /// folder's end: it did not read the folder's batches in the order of their requests.
    OutOfSequence,
}

/// Hands the entries of the folder at `path` (`.` and `..` included, as the server sends them),
/// with the long names that ssh2's own `readdir` does not give, to `each`, one READDIR reply at a
/// time; `each` returns `false` to stop (the folder is closed all the same).
///
/// Up to `depth` READDIRs are outstanding at once. The protocol lets a server reply in any order,
/// but requests on one handle must get the results of processing them in order
/// (draft-ietf-secsh-filexfer-02 §6): batches are handed over in the order of their requests,
/// whatever order their replies arrive in, and the listing ends at the first end-of-folder. Names
/// answered to a READDIR sent after the one that reached the end mean the server did not: the
/// listing is then [`Unlisted::OutOfSequence`], never taken as whole.
pub fn list_dir(
    wire: &mut impl Wire,
    path: &str,
    depth: usize,
    each: &mut dyn FnMut(Vec<NameEntry>) -> bool,
) -> Result<Result<(), Unlisted>, Broken> {
    let handle = match round_trip(wire, &[Request::Opendir { path }])?.pop() {
        Some(Reply::Handle { handle, .. }) => handle,
        Some(other) => return Ok(Err(Unlisted::Refused(refused(other)))),
        None => return Err(Broken("no reply to opendir".into())),
    };
    let mut outstanding: VecDeque<u32> = (0..depth.max(1))
        .map(|_| wire.send(&Request::Readdir { handle: &handle }))
        .collect();
    let mut arrived: HashMap<u32, Reply> = HashMap::new();
    // `None` while the folder is being read; then how the listing ended.
    let mut outcome: Option<Result<(), Unlisted>> = None;
    // The listing reached the folder's end (not stopped by `each`, not refused).
    let mut at_end = false;
    while let Some(&next) = outstanding.front() {
        let Some(reply) = arrived.remove(&next) else {
            for reply in wire.exchange()? {
                arrived.insert(reply.id(), reply);
            }
            continue;
        };
        outstanding.pop_front();
        match (reply, &outcome) {
            // Sent before the listing ended: the end again, or a refusal, is what a server that
            // reads in order answers after the end; names are not.
            (Reply::Name { .. }, _) if at_end => {
                outcome = Some(Err(Unlisted::OutOfSequence));
            }
            (_, Some(_)) => {}
            (Reply::Name { names, .. }, None) => {
                if each(names) {
                    outstanding.push_back(wire.send(&Request::Readdir { handle: &handle }));
                } else {
                    outcome = Some(Ok(()));
                }
            }
            (
                Reply::Status {
                    code: wire::STATUS_EOF,
                    ..
                },
                None,
            ) => {
                at_end = true;
                outcome = Some(Ok(()));
            }
            (other, None) => outcome = Some(Err(Unlisted::ReadRefused(refused(other)))),
        }
    }
    // A refused close of a folder read to its end changes nothing.
    round_trip(wire, &[Request::Close { handle: &handle }])?;
    Ok(outcome.unwrap_or(Ok(())))
}

/// What the entries at `paths` are, for a server whose listing did not say: `lstat`'s permission
/// bits where it gives them, else a folder when the server opens and reads it as one (some servers
/// open anything as a folder and refuse only the read), else (`None`) not a folder, type unknown.
/// All asked at once.
pub fn probe_kinds(
    wire: &mut impl Wire,
    paths: &[String],
) -> Result<Vec<Option<EntryKind>>, Broken> {
    let requests: Vec<Request> = paths
        .iter()
        .flat_map(|path| [Request::Lstat { path }, Request::Opendir { path }])
        .collect();
    let replies = round_trip(wire, &requests)?;
    let mut kinds = Vec::with_capacity(paths.len());
    // (entry, folder handle) of the entries that opened as folders.
    let mut opened = Vec::new();
    for (i, pair) in replies.chunks(2).enumerate() {
        if let Reply::Handle { handle, .. } = &pair[1] {
            opened.push((i, handle.clone()));
        }
        kinds.push(match &pair[0] {
            Reply::Attrs { attrs, .. } => match entry_kind(attrs.permissions, b"") {
                EntryKind::Unknown => None,
                known => Some(known),
            },
            _ => None,
        });
    }
    let reads: Vec<Request> = opened
        .iter()
        .map(|(_, handle)| Request::Readdir { handle })
        .collect();
    let read = round_trip(wire, &reads)?;
    for ((i, _), reply) in opened.iter().zip(read) {
        let folder = matches!(
            reply,
            Reply::Name { .. }
                | Reply::Status {
                    code: wire::STATUS_EOF,
                    ..
                }
        );
        if kinds[*i].is_none() && folder {
            kinds[*i] = Some(EntryKind::Folder);
        }
    }
    let closes: Vec<Request> = opened
        .iter()
        .map(|(_, handle)| Request::Close { handle })
        .collect();
    round_trip(wire, &closes)?;
    Ok(kinds)
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
        /// ProFTPD's `AllowOverwrite off`: an existing file is not opened for writing.
        no_overwrite: bool,
        removed: usize,
        fsync: bool,
        fsyncs: usize,
        /// Rename order seen, for the order checks.
        renamed: Vec<String>,
        max_in_flight: usize,
        /// Names per READDIR reply (0: 3).
        batch: usize,
        /// Where each open folder's listing is.
        cursors: HashMap<Vec<u8>, usize>,
        /// Replies handed back newest first (the protocol lets a server reply in any order).
        reversed: bool,
        /// A server that does not read a folder in order: after the end, the folder again.
        again_after_end: bool,
        /// READDIRs answered.
        readdirs: usize,
        /// The READDIR of this number (from 1) is refused.
        refuse_readdir: Option<usize>,
        /// READDIRs after the folder's end are refused (not answered with the end again).
        refuse_after_end: bool,
        /// The ends of folders answered.
        ends: usize,
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

    impl MemoryServer {
        /// OPEN: refused (as configured, or onto an existing name without overwrite), a new
        /// file for writing, or an existing one for reading.
        fn open(&mut self, id: u32, path: &str, flags: u32) {
            if self.refuse_open.iter().any(|p| p == path)
                || (self.no_overwrite
                    && flags & wire::OPEN_WRITE != 0
                    && self.files.contains_key(path))
            {
                self.status(id, 3);
            } else if flags & wire::OPEN_WRITE != 0 {
                self.files.insert(path.to_string(), Vec::new());
                self.next_handle += 1;
                let h = self.next_handle.to_be_bytes().to_vec();
                self.handles.insert(h.clone(), (path.to_string(), true));
                self.replies.push_back(Reply::Handle { id, handle: h });
            } else if self.files.contains_key(path) {
                self.next_handle += 1;
                let h = self.next_handle.to_be_bytes().to_vec();
                self.handles.insert(h.clone(), (path.to_string(), false));
                self.replies.push_back(Reply::Handle { id, handle: h });
            } else {
                self.status(id, 2);
            }
        }

        /// LSTAT: a link, a regular file with its size, or no such file.
        fn lstat(&mut self, id: u32, path: &str) {
            if self.links.iter().any(|l| l == path) {
                let attrs = wire::Attrs {
                    size: Some(4),
                    permissions: Some(0o120_777),
                    mtime: None,
                };
                self.replies.push_back(Reply::Attrs { id, attrs });
            } else if let Some(f) = self.files.get(path) {
                let attrs = wire::Attrs {
                    size: Some(f.len() as u64),
                    permissions: Some(0o100_640),
                    mtime: None,
                };
                self.replies.push_back(Reply::Attrs { id, attrs });
            } else {
                self.status(id, 2);
            }
        }
    }

    impl MemoryServer {
        /// OPENDIR: the files whose path starts with `path/`.
        fn opendir(&mut self, id: u32, path: &str) {
            self.next_handle += 1;
            let h = self.next_handle.to_be_bytes().to_vec();
            self.handles.insert(h.clone(), (path.to_string(), false));
            self.cursors.insert(h.clone(), 0);
            self.replies.push_back(Reply::Handle { id, handle: h });
        }

        /// READDIR: the next `batch` names of the folder, or its end.
        fn readdir(&mut self, id: u32, handle: &[u8]) {
            self.readdirs += 1;
            if self.refuse_readdir == Some(self.readdirs) {
                self.status(id, 4);
                return;
            }
            let (path, _) = self.handles[handle].clone();
            let prefix = format!("{path}/");
            let names: Vec<String> = self
                .files
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
                .collect();
            let batch = if self.batch == 0 { 3 } else { self.batch };
            let at = self.cursors[handle];
            if at >= names.len() {
                if self.again_after_end {
                    self.cursors.insert(handle.to_vec(), 0);
                }
                let code = if self.refuse_after_end && self.ends > 0 {
                    4
                } else {
                    wire::STATUS_EOF
                };
                self.ends += 1;
                self.status(id, code);
                return;
            }
            let end = (at + batch).min(names.len());
            self.cursors.insert(handle.to_vec(), end);
            let names = names[at..end]
                .iter()
                .map(|n| NameEntry {
                    filename: n.as_bytes().to_vec(),
                    longname: Vec::new(),
                    attrs: wire::Attrs {
                        size: Some(0),
                        permissions: Some(0o100_640),
                        mtime: None,
                    },
                })
                .collect();
            self.replies.push_back(Reply::Name { id, names });
        }
    }

    impl Wire for MemoryServer {
        fn send(&mut self, request: &Request) -> u32 {
            self.next_id += 1;
            let id = self.next_id;
            match request {
                Request::Open { path, flags, .. } => self.open(id, path, *flags),
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
                Request::Lstat { path } => self.lstat(id, path),
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
                Request::Remove { path } => {
                    let code = if self.files.remove(*path).is_some() {
                        self.removed += 1;
                        0
                    } else {
                        2
                    };
                    self.status(id, code);
                }
                Request::Opendir { path } => self.opendir(id, path),
                Request::Readdir { handle } => self.readdir(id, handle),
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
            if self.reversed {
                out.reverse();
            }
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
    fn a_leftover_temporary_file_on_a_server_that_never_overwrites_is_removed_and_the_put_goes_on()
    {
        let files = files(6, 10);
        let mut server = MemoryServer {
            no_overwrite: true,
            ..Default::default()
        };
        // Puts of files 1 and 4 were cut short earlier: their temporary names are taken.
        for i in [1, 4] {
            server
                .files
                .insert(format!("/d/.f000{i}.egme-tmp"), b"partial".to_vec());
        }
        let (created, broken) = put_all(&mut server, &uploads(&files), true, true);
        assert_eq!(broken, None);
        assert_eq!(created, [true; 6]);
        assert_eq!(server.removed, 2);
        assert!(server.files.keys().all(|k| !k.contains("egme-tmp")));
        for (name, bytes) in &files {
            assert_eq!(&server.files[&format!("/d/{name}")], bytes);
        }
        // Where the leftover cannot be removed either, that file fails and strict mode stops.
        let mut server = MemoryServer {
            refuse_open: vec!["/d/.f0002.egme-tmp".into()],
            ..Default::default()
        };
        let (created, _) = put_all(&mut server, &uploads(&files), true, true);
        assert_eq!(created, [true, true, false, false, false, false]);
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

    /// A channel to a server shared with other lanes (one file system, as at a real ORD), with
    /// handles of its own: a handle used on a lane that did not give it fails the test.
    struct TestLane {
        server: std::rc::Rc<std::cell::RefCell<MemoryServer>>,
        replies: VecDeque<Reply>,
        handles: std::collections::HashSet<Vec<u8>>,
        /// `poll` never has anything: only `wait` gives the replies.
        holds_back: bool,
        /// Replies given before the channel breaks.
        break_after: Option<usize>,
        given: usize,
        opens: usize,
        renames: usize,
    }

    fn lanes(n: usize, server: &std::rc::Rc<std::cell::RefCell<MemoryServer>>) -> Vec<TestLane> {
        (0..n)
            .map(|_| TestLane {
                server: server.clone(),
                replies: VecDeque::new(),
                handles: Default::default(),
                holds_back: false,
                break_after: None,
                given: 0,
                opens: 0,
                renames: 0,
            })
            .collect()
    }

    impl TestLane {
        fn take(&mut self) -> Result<Vec<Reply>, Broken> {
            let mut out = Vec::new();
            while let Some(r) = self.replies.pop_front() {
                if self.break_after.is_some_and(|n| self.given >= n) {
                    return Err(Broken("cut".into()));
                }
                self.given += 1;
                out.push(r);
            }
            Ok(out)
        }
    }

    impl Lane for TestLane {
        fn send_as(&mut self, id: u32, request: &Request) {
            if let Some(handle) = request.handle() {
                assert!(self.handles.contains(handle), "a handle of another lane");
            }
            match request {
                Request::Open { .. } => self.opens += 1,
                Request::Rename { .. } => self.renames += 1,
                _ => {}
            }
            let mut server = self.server.borrow_mut();
            server.send(request);
            let reply = match server.replies.pop_back().unwrap() {
                Reply::Status { code, message, .. } => Reply::Status { id, code, message },
                Reply::Handle { handle, .. } => {
                    self.handles.insert(handle.clone());
                    Reply::Handle { id, handle }
                }
                Reply::Data { data, .. } => Reply::Data { id, data },
                Reply::Attrs { attrs, .. } => Reply::Attrs { id, attrs },
                Reply::Name { names, .. } => Reply::Name { id, names },
                Reply::Unexpected { kind, .. } => Reply::Unexpected { id, kind },
            };
            self.replies.push_back(reply);
        }

        fn poll(&mut self) -> Result<Vec<Reply>, Broken> {
            if self.holds_back {
                return Ok(Vec::new());
            }
            self.take()
        }

        fn wait(&mut self) -> Result<Vec<Reply>, Broken> {
            let out = self.take()?;
            assert!(!out.is_empty(), "waiting on a lane with nothing in flight");
            Ok(out)
        }

        fn offers_fsync(&self) -> bool {
            self.server.borrow().fsync
        }
    }

    #[test]
    fn lanes_put_each_file_on_the_lane_that_opened_it_and_send_every_rename_on_the_first() {
        let server = std::rc::Rc::new(std::cell::RefCell::new(MemoryServer {
            fsync: true,
            ..Default::default()
        }));
        let mut wire = Lanes::new(lanes(3, &server));
        // The last lane answers only when waited on.
        wire.lanes[2].holds_back = true;
        assert_eq!(wire.window(), 3 * WINDOW);
        let files = files(200, 5_000);
        let (created, broken) = put_all(&mut wire, &uploads(&files), false, true);
        assert_eq!(broken, None);
        assert!(created.iter().all(|c| *c));
        let server = server.borrow();
        for (name, bytes) in &files {
            assert_eq!(&server.files[&format!("/d/{name}")], bytes);
        }
        assert_eq!(server.files.len(), 200, "no temporary file left");
        assert_eq!(server.fsyncs, 200);
        let order: Vec<String> = files.iter().map(|(n, _)| format!("/d/{n}")).collect();
        assert_eq!(server.renamed, order);
        assert!(server.handles.is_empty(), "every handle closed");
        let opens: Vec<usize> = wire.lanes.iter().map(|l| l.opens).collect();
        assert!(
            opens.iter().all(|&o| o > 20),
            "opens spread over the lanes: {opens:?}"
        );
        let renames: Vec<usize> = wire.lanes.iter().map(|l| l.renames).collect();
        assert_eq!(renames, [200, 0, 0]);
        assert!(wire.lane_of.is_empty() && wire.in_flight.iter().all(|&n| n == 0));
    }

    #[test]
    fn lanes_read_whole_files_back() {
        let server = std::rc::Rc::new(std::cell::RefCell::new(MemoryServer::default()));
        let mut paths = Vec::new();
        for i in 0..90 {
            let p = format!("/in/{i}");
            server
                .borrow_mut()
                .files
                .insert(p.clone(), vec![i as u8; i * 900]);
            paths.push(p);
        }
        let mut wire = Lanes::new(lanes(2, &server));
        let (got, broken) = read_all(&mut wire, &paths, 1_000_000);
        assert_eq!(broken, None);
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g, &Some(Fetched::Bytes(vec![i as u8; i * 900])), "{i}");
        }
        assert!(wire.lanes.iter().all(|l| l.opens > 10));
        assert!(server.borrow().handles.is_empty(), "every handle closed");
    }

    #[test]
    fn one_broken_lane_breaks_the_wire_and_what_was_created_is_reported() {
        let server = std::rc::Rc::new(std::cell::RefCell::new(MemoryServer::default()));
        let mut lanes = lanes(2, &server);
        lanes[1].break_after = Some(40);
        let mut wire = Lanes::new(lanes);
        let files = files(100, 10);
        let (created, broken) = put_all(&mut wire, &uploads(&files), false, false);
        assert_eq!(broken, Some(Broken("cut".into())));
        // What the caller is told was created is there under its name.
        for (c, (name, _)) in created.iter().zip(&files) {
            if *c {
                assert!(server.borrow().files.contains_key(&format!("/d/{name}")));
            }
        }
        assert!(created.iter().any(|c| !c));
    }

    /// A server holding `n` files in `/d`, `batch` names per READDIR.
    fn folder_of(n: usize, batch: usize) -> MemoryServer {
        let mut server = MemoryServer {
            batch,
            ..Default::default()
        };
        for i in 0..n {
            server.files.insert(format!("/d/f{i:04}"), Vec::new());
        }
        server
    }

    /// Lists `/d` with `depth` READDIRs in flight; the names handed over, in order, and how it
    /// ended. `stop_after`: `each` stops after that many batches.
    fn listed(
        server: &mut MemoryServer,
        depth: usize,
        stop_after: Option<usize>,
    ) -> (Vec<String>, Result<Result<(), Unlisted>, Broken>) {
        let mut names = Vec::new();
        let mut batches = 0;
        let outcome = list_dir(server, "/d", depth, &mut |batch| {
            names.extend(
                batch
                    .into_iter()
                    .map(|n| String::from_utf8(n.filename).unwrap()),
            );
            batches += 1;
            stop_after.is_none_or(|s| batches < s)
        });
        (names, outcome)
    }

    fn all_names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i:04}")).collect()
    }

    #[test]
    fn a_folder_listed_with_readdirs_in_flight_hands_every_name_over_once_in_order() {
        for (n, depth) in [
            (0, 8),
            (1, 8),
            (20, 1),
            (20, 4),
            (20, 8),
            (24, 8),
            (100, 16),
        ] {
            let mut server = folder_of(n, 3);
            let (names, outcome) = listed(&mut server, depth, None);
            assert_eq!(outcome, Ok(Ok(())), "{n} names, depth {depth}");
            assert_eq!(names, all_names(n), "{n} names, depth {depth}");
            assert!(server.handles.is_empty(), "the folder is closed");
            // The requests are in flight together (the handle's reply, then `depth` READDIRs),
            // and no more are sent than the batches and the end take, plus those in flight.
            assert!(server.max_in_flight <= depth.max(1), "{n}, {depth}");
            assert!(
                server.readdirs <= n.div_ceil(3) + depth.max(1),
                "{n}, {depth}"
            );
            if depth > 1 && n > 3 {
                assert!(server.max_in_flight > 1, "READDIRs are pipelined");
            }
        }
    }

    #[test]
    fn replies_that_arrive_out_of_order_are_handed_over_in_the_order_of_their_requests() {
        let mut server = MemoryServer {
            reversed: true,
            ..folder_of(40, 3)
        };
        let (names, outcome) = listed(&mut server, 8, None);
        assert_eq!(outcome, Ok(Ok(())));
        assert_eq!(names, all_names(40));
    }

    #[test]
    fn names_after_the_end_of_a_folder_make_a_listing_out_of_sequence_never_a_whole_one() {
        let mut server = MemoryServer {
            again_after_end: true,
            ..folder_of(10, 3)
        };
        let (_, outcome) = listed(&mut server, 8, None);
        assert_eq!(outcome, Ok(Err(Unlisted::OutOfSequence)));
        assert!(server.handles.is_empty(), "the folder is closed");
        // One at a time, the same server's listing is whole: the end is the last READDIR sent.
        let mut server = MemoryServer {
            again_after_end: true,
            ..folder_of(10, 3)
        };
        let (names, outcome) = listed(&mut server, 1, None);
        assert_eq!(outcome, Ok(Ok(())));
        assert_eq!(names, all_names(10));
    }

    #[test]
    fn a_listing_its_visitor_stops_takes_no_more_names_and_closes_the_folder() {
        let mut server = folder_of(40, 3);
        let (names, outcome) = listed(&mut server, 8, Some(2));
        assert_eq!(
            outcome,
            Ok(Ok(())),
            "names in flight after a stop are no fault"
        );
        assert_eq!(names, all_names(6));
        assert!(server.handles.is_empty(), "the folder is closed");
    }

    #[test]
    fn a_refused_readdir_refuses_the_listing_a_refusal_after_the_end_does_not_and_a_cut_breaks_it()
    {
        let mut refusing = MemoryServer {
            refuse_readdir: Some(2),
            ..folder_of(40, 3)
        };
        let (names, outcome) = listed(&mut refusing, 8, None);
        assert_eq!(
            outcome,
            Ok(Err(Unlisted::ReadRefused(Refused {
                code: 4,
                message: String::new()
            })))
        );
        assert_eq!(names, all_names(3), "the batch before the refusal only");
        assert!(refusing.handles.is_empty(), "the folder is closed");
        // A server that answers READDIRs past the end with a failure, not the end again.
        let mut past_end = MemoryServer {
            refuse_after_end: true,
            ..folder_of(10, 3)
        };
        let (names, outcome) = listed(&mut past_end, 8, None);
        assert_eq!(outcome, Ok(Ok(())));
        assert_eq!(names, all_names(10));
        let mut cut = MemoryServer {
            break_after: Some(3),
            ..folder_of(40, 3)
        };
        let (_, outcome) = listed(&mut cut, 8, None);
        assert_eq!(outcome, Err(Broken("cut".into())));
    }
}

//! SFTP version 3 packets (draft-ietf-secsh-filexfer-02, plus OpenSSH's `fsync@openssh.com`): requests encoded, replies decoded; no IO.

use thiserror::Error;

/// The protocol version spoken (OpenSSH's sftp-server speaks 3).
pub const VERSION: u32 = 3;
/// The largest reply accepted (OpenSSH's own limit is 256 KiB).
pub const MAX_PACKET: usize = 256 * 1024 + 1024;

const FXP_INIT: u8 = 1;
const FXP_VERSION: u8 = 2;
const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_LSTAT: u8 = 7;
const FXP_OPENDIR: u8 = 11;
const FXP_READDIR: u8 = 12;
const FXP_REMOVE: u8 = 13;
const FXP_RENAME: u8 = 18;
const FXP_EXTENDED: u8 = 200;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXP_NAME: u8 = 104;
const FXP_ATTRS: u8 = 105;
const FXP_EXTENDED_REPLY: u8 = 201;

/// `SSH_FXF_*` open flags.
pub const OPEN_READ: u32 = 0x01;
pub const OPEN_WRITE: u32 = 0x02;
pub const OPEN_CREATE: u32 = 0x08;
pub const OPEN_TRUNCATE: u32 = 0x10;

const ATTR_SIZE: u32 = 0x01;
const ATTR_UIDGID: u32 = 0x02;
const ATTR_PERMISSIONS: u32 = 0x04;
const ATTR_ACMODTIME: u32 = 0x08;
const ATTR_EXTENDED: u32 = 0x8000_0000;

/// `SSH_FX_EOF`: the end of a file was reached.
pub const STATUS_EOF: u32 = 1;

/// The extension that makes a server flush an open file to disk.
pub const FSYNC_EXTENSION: &str = "fsync@openssh.com";

/// A request the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    Open {
        path: &'a str,
        flags: u32,
        /// Permissions of a created file.
        mode: Option<u32>,
    },
    Close {
        handle: &'a [u8],
    },
    Read {
        handle: &'a [u8],
        offset: u64,
        len: u32,
    },
    Write {
        handle: &'a [u8],
        offset: u64,
        data: &'a [u8],
    },
    Lstat {
        path: &'a str,
    },
    /// Plain rename: OpenSSH refuses an existing target.
    Rename {
        from: &'a str,
        to: &'a str,
    },
    /// `fsync@openssh.com`.
    Fsync {
        handle: &'a [u8],
    },
    Opendir {
        path: &'a str,
    },
    /// The next names of an open folder (`SSH_FX_EOF` when there are no more).
    Readdir {
        handle: &'a [u8],
    },
    Remove {
        path: &'a str,
    },
}

impl<'a> Request<'a> {
    /// The handle the request is about, for those that have one.
    pub fn handle(&self) -> Option<&'a [u8]> {
        match *self {
            Request::Close { handle }
            | Request::Read { handle, .. }
            | Request::Write { handle, .. }
            | Request::Fsync { handle }
            | Request::Readdir { handle } => Some(handle),
            Request::Open { .. }
            | Request::Lstat { .. }
            | Request::Rename { .. }
            | Request::Opendir { .. }
            | Request::Remove { .. } => None,
        }
    }

    /// The same request about `handle` instead (unchanged when it has no handle).
    pub fn with_handle<'h>(&self, handle: &'h [u8]) -> Request<'h>
    where
        'a: 'h,
    {
        match *self {
            Request::Close { .. } => Request::Close { handle },
            Request::Read { offset, len, .. } => Request::Read {
                handle,
                offset,
                len,
            },
            Request::Write { offset, data, .. } => Request::Write {
                handle,
                offset,
                data,
            },
            Request::Fsync { .. } => Request::Fsync { handle },
            Request::Readdir { .. } => Request::Readdir { handle },
            Request::Opendir { path } => Request::Opendir { path },
            Request::Remove { path } => Request::Remove { path },
            Request::Open { path, flags, mode } => Request::Open { path, flags, mode },
            Request::Lstat { path } => Request::Lstat { path },
            Request::Rename { from, to } => Request::Rename { from, to },
        }
    }
}

/// File attributes, as far as they are used here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub permissions: Option<u32>,
    /// Modification time, seconds since the epoch.
    pub mtime: Option<u32>,
}

impl Attrs {
    /// A regular file (not a link, folder, device or pipe), judged from the permission bits.
    pub fn is_regular_file(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170_000 == 0o100_000)
    }
}

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status {
        id: u32,
        code: u32,
        message: String,
    },
    Handle {
        id: u32,
        handle: Vec<u8>,
    },
    Data {
        id: u32,
        data: Vec<u8>,
    },
    Attrs {
        id: u32,
        attrs: Attrs,
    },
    /// Names of a folder, as `readdir` gives them.
    Name {
        id: u32,
        names: Vec<NameEntry>,
    },
    /// A well-formed reply of a kind these requests never ask for (an extended reply).
    Unexpected {
        id: u32,
        kind: u8,
    },
}

impl Reply {
    pub fn id(&self) -> u32 {
        match self {
            Reply::Status { id, .. }
            | Reply::Handle { id, .. }
            | Reply::Data { id, .. }
            | Reply::Attrs { id, .. }
            | Reply::Name { id, .. }
            | Reply::Unexpected { id, .. } => *id,
        }
    }
}

/// One entry of a folder: its name, the server's `ls -l`-like long name, its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    pub filename: Vec<u8>,
    pub longname: Vec<u8>,
    pub attrs: Attrs,
}

/// The server's answer to `init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    pub version: u32,
    pub extensions: Vec<(String, String)>,
}

impl ServerVersion {
    pub fn offers(&self, extension: &str) -> bool {
        self.extensions.iter().any(|(name, _)| name == extension)
    }
}

/// A packet the server sent that does not follow the protocol.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("packet of {0} bytes, more than the limit of {MAX_PACKET}")]
    TooLong(usize),
    #[error("empty packet")]
    Empty,
    #[error("packet of type {kind} ends early")]
    Truncated { kind: u8 },
    #[error("unknown packet type {0}")]
    UnknownKind(u8),
    #[error("expected the server's version, got packet type {0}")]
    NotVersion(u8),
}

/// Appends the `init` packet.
pub fn encode_init(out: &mut Vec<u8>) {
    let start = begin(out, FXP_INIT);
    put_u32(out, VERSION);
    finish(out, start);
}

/// Appends one request packet with id `id`.
pub fn encode(out: &mut Vec<u8>, id: u32, request: &Request) {
    let kind = match request {
        Request::Open { .. } => FXP_OPEN,
        Request::Close { .. } => FXP_CLOSE,
        Request::Read { .. } => FXP_READ,
        Request::Write { .. } => FXP_WRITE,
        Request::Lstat { .. } => FXP_LSTAT,
        Request::Rename { .. } => FXP_RENAME,
        Request::Fsync { .. } => FXP_EXTENDED,
        Request::Opendir { .. } => FXP_OPENDIR,
        Request::Readdir { .. } => FXP_READDIR,
        Request::Remove { .. } => FXP_REMOVE,
    };
    let start = begin(out, kind);
    put_u32(out, id);
    match request {
        Request::Open { path, flags, mode } => {
            put_bytes(out, path.as_bytes());
            put_u32(out, *flags);
            match mode {
                Some(mode) => {
                    put_u32(out, ATTR_PERMISSIONS);
                    put_u32(out, *mode);
                }
                None => put_u32(out, 0),
            }
        }
        Request::Close { handle } => put_bytes(out, handle),
        Request::Read {
            handle,
            offset,
            len,
        } => {
            put_bytes(out, handle);
            out.extend_from_slice(&offset.to_be_bytes());
            put_u32(out, *len);
        }
        Request::Write {
            handle,
            offset,
            data,
        } => {
            put_bytes(out, handle);
            out.extend_from_slice(&offset.to_be_bytes());
            put_bytes(out, data);
        }
        Request::Lstat { path } | Request::Opendir { path } | Request::Remove { path } => {
            put_bytes(out, path.as_bytes())
        }
        Request::Readdir { handle } => put_bytes(out, handle),
        Request::Rename { from, to } => {
            put_bytes(out, from.as_bytes());
            put_bytes(out, to.as_bytes());
        }
        Request::Fsync { handle } => {
            put_bytes(out, FSYNC_EXTENSION.as_bytes());
            put_bytes(out, handle);
        }
    }
    finish(out, start);
}

/// The first complete packet in `buf`: `Some((its body, bytes it takes))`, `None` when more must be read.
pub fn split_packet(buf: &[u8]) -> Result<Option<(&[u8], usize)>, WireError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > MAX_PACKET {
        return Err(WireError::TooLong(len));
    }
    if len == 0 {
        return Err(WireError::Empty);
    }
    Ok(buf.get(4..4 + len).map(|body| (body, 4 + len)))
}

/// Decodes the server's `version` packet (its body, as `split_packet` gives it).
pub fn decode_version(body: &[u8]) -> Result<ServerVersion, WireError> {
    let (&kind, rest) = body.split_first().ok_or(WireError::Empty)?;
    if kind != FXP_VERSION {
        return Err(WireError::NotVersion(kind));
    }
    let mut r = Reader { rest, kind };
    let version = r.u32()?;
    let mut extensions = Vec::new();
    while !r.rest.is_empty() {
        let name = String::from_utf8_lossy(r.bytes()?).into_owned();
        let data = String::from_utf8_lossy(r.bytes()?).into_owned();
        extensions.push((name, data));
    }
    Ok(ServerVersion {
        version,
        extensions,
    })
}

/// Decodes one reply packet (its body, as `split_packet` gives it).
pub fn decode_reply(body: &[u8]) -> Result<Reply, WireError> {
    let (&kind, rest) = body.split_first().ok_or(WireError::Empty)?;
    let mut r = Reader { rest, kind };
    let id = r.u32()?;
    Ok(match kind {
        FXP_STATUS => {
            let code = r.u32()?;
            // Version 3 servers send a message and a language tag; very old ones may omit them.
            let message = if r.rest.is_empty() {
                String::new()
            } else {
                String::from_utf8_lossy(r.bytes()?).into_owned()
            };
            Reply::Status { id, code, message }
        }
        FXP_HANDLE => Reply::Handle {
            id,
            handle: r.bytes()?.to_vec(),
        },
        FXP_DATA => Reply::Data {
            id,
            data: r.bytes()?.to_vec(),
        },
        FXP_ATTRS => Reply::Attrs {
            id,
            attrs: r.attrs()?,
        },
        FXP_NAME => {
            let count = r.u32()?;
            let mut names = Vec::new();
            for _ in 0..count {
                let filename = r.bytes()?.to_vec();
                let longname = r.bytes()?.to_vec();
                let attrs = r.attrs()?;
                names.push(NameEntry {
                    filename,
                    longname,
                    attrs,
                });
            }
            Reply::Name { id, names }
        }
        FXP_EXTENDED_REPLY => Reply::Unexpected { id, kind },
        other => return Err(WireError::UnknownKind(other)),
    })
}

fn begin(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, kind]);
    start
}

fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    rest: &'a [u8],
    kind: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Truncated { kind: self.kind });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn attrs(&mut self) -> Result<Attrs, WireError> {
        let flags = self.u32()?;
        let mut attrs = Attrs::default();
        if flags & ATTR_SIZE != 0 {
            attrs.size = Some(self.u64()?);
        }
        if flags & ATTR_UIDGID != 0 {
            self.take(8)?;
        }
        if flags & ATTR_PERMISSIONS != 0 {
            attrs.permissions = Some(self.u32()?);
        }
        if flags & ATTR_ACMODTIME != 0 {
            self.take(4)?;
            attrs.mtime = Some(self.u32()?);
        }
        if flags & ATTR_EXTENDED != 0 {
            let count = self.u32()?;
            for _ in 0..count {
                self.bytes()?;
                self.bytes()?;
            }
        }
        Ok(attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body(packet: &[u8]) -> &[u8] {
        match split_packet(packet) {
            Ok(Some((body, used))) if used == packet.len() => body,
            other => panic!("not one whole packet: {other:?}"),
        }
    }

    #[test]
    fn a_request_about_a_handle_is_rewritten_about_another_and_the_others_stay_the_same() {
        let requests = [
            Request::Open {
                path: "/a",
                flags: OPEN_WRITE,
                mode: Some(0o640),
            },
            Request::Close { handle: b"h1" },
            Request::Read {
                handle: b"h1",
                offset: 7,
                len: 9,
            },
            Request::Write {
                handle: b"h1",
                offset: 3,
                data: b"xyz",
            },
            Request::Lstat { path: "/a" },
            Request::Rename {
                from: "/a",
                to: "/b",
            },
            Request::Fsync { handle: b"h1" },
        ];
        for r in &requests {
            let moved = r.with_handle(b"h2");
            match r.handle() {
                Some(h) => {
                    assert_eq!(h, b"h1");
                    assert_eq!(moved.handle(), Some(&b"h2"[..]));
                    assert_eq!(moved.with_handle(h), *r);
                }
                None => assert_eq!(moved, *r),
            }
        }
    }

    #[test]
    fn init_is_the_version_3_hello() {
        let mut out = Vec::new();
        encode_init(&mut out);
        assert_eq!(out, [0, 0, 0, 5, 1, 0, 0, 0, 3]);
    }

    #[test]
    fn a_write_request_is_laid_out_as_the_draft_says() {
        let mut out = Vec::new();
        encode(
            &mut out,
            7,
            &Request::Write {
                handle: b"h1",
                offset: 5,
                data: b"abc",
            },
        );
        let expected: Vec<u8> = [
            &[0, 0, 0, 26, 6][..],
            &[0, 0, 0, 7],
            &[0, 0, 0, 2, b'h', b'1'],
            &[0, 0, 0, 0, 0, 0, 0, 5],
            &[0, 0, 0, 3, b'a', b'b', b'c'],
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn fsync_is_an_extended_request_naming_the_openssh_extension() {
        let mut out = Vec::new();
        encode(&mut out, 1, &Request::Fsync { handle: b"h" });
        let b = body(&out);
        assert_eq!(b[0], FXP_EXTENDED);
        assert_eq!(&b[5..9], &(FSYNC_EXTENSION.len() as u32).to_be_bytes());
        assert!(b.ends_with(&[0, 0, 0, 1, b'h']));
    }

    #[test]
    fn the_version_reply_lists_the_extensions() {
        let mut v = vec![FXP_VERSION, 0, 0, 0, 3];
        put_bytes(&mut v, b"posix-rename@openssh.com");
        put_bytes(&mut v, b"1");
        put_bytes(&mut v, FSYNC_EXTENSION.as_bytes());
        put_bytes(&mut v, b"1");
        let version = decode_version(&v).unwrap();
        assert_eq!(version.version, 3);
        assert!(version.offers(FSYNC_EXTENSION));
        assert!(!version.offers("hardlink@openssh.com"));
    }

    #[test]
    fn attributes_tell_a_regular_file_from_a_link() {
        let mut p = vec![FXP_ATTRS, 0, 0, 0, 9];
        put_u32(
            &mut p,
            ATTR_SIZE | ATTR_UIDGID | ATTR_PERMISSIONS | ATTR_ACMODTIME,
        );
        p.extend_from_slice(&3700u64.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        put_u32(&mut p, 0o100_640);
        p.extend_from_slice(&[0; 8]);
        let Reply::Attrs { id: 9, attrs } = decode_reply(&p).unwrap() else {
            panic!("not attributes");
        };
        assert_eq!(attrs.size, Some(3700));
        assert!(attrs.is_regular_file());
        let link = Attrs {
            size: None,
            permissions: Some(0o120_777),
            mtime: None,
        };
        assert!(!link.is_regular_file());
        assert!(!Attrs::default().is_regular_file());
    }

    #[test]
    fn a_packet_split_across_reads_waits_for_the_rest() {
        let mut out = Vec::new();
        encode(&mut out, 1, &Request::Lstat { path: "/x" });
        assert_eq!(split_packet(&out[..3]), Ok(None));
        assert_eq!(split_packet(&out[..out.len() - 1]), Ok(None));
        assert!(matches!(split_packet(&out), Ok(Some((_, n))) if n == out.len()));
    }

    #[test]
    fn an_oversized_or_empty_length_is_refused() {
        assert_eq!(
            split_packet(&[0xff, 0xff, 0xff, 0xff]),
            Err(WireError::TooLong(0xffff_ffff))
        );
        assert_eq!(split_packet(&[0, 0, 0, 0]), Err(WireError::Empty));
    }

    #[test]
    fn a_truncated_reply_is_an_error_not_a_panic() {
        assert_eq!(
            decode_reply(&[FXP_HANDLE, 0, 0, 0, 1, 0, 0, 0, 9, b'h']),
            Err(WireError::Truncated { kind: FXP_HANDLE })
        );
    }

    proptest! {
        #[test]
        fn replies_round_trip(id in any::<u32>(), code in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..300), msg in "[ -~]{0,40}") {
            let mut status = vec![FXP_STATUS];
            put_u32(&mut status, id);
            put_u32(&mut status, code);
            put_bytes(&mut status, msg.as_bytes());
            put_bytes(&mut status, b"en");
            prop_assert_eq!(decode_reply(&status).unwrap(), Reply::Status { id, code, message: msg.clone() });
            for (kind, expected) in [
                (FXP_HANDLE, Reply::Handle { id, handle: data.clone() }),
                (FXP_DATA, Reply::Data { id, data: data.clone() }),
            ] {
                let mut p = vec![kind];
                put_u32(&mut p, id);
                put_bytes(&mut p, &data);
                prop_assert_eq!(decode_reply(&p).unwrap(), expected);
            }
        }

        #[test]
        fn the_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_reply(&bytes);
            let _ = decode_version(&bytes);
            let _ = split_packet(&bytes);
        }

        #[test]
        fn requests_are_whole_length_prefixed_packets(id in any::<u32>(), path in "[a-z/._-]{0,60}", data in proptest::collection::vec(any::<u8>(), 0..500)) {
            let requests = [
                Request::Open { path: &path, flags: OPEN_WRITE | OPEN_CREATE | OPEN_TRUNCATE, mode: Some(0o640) },
                Request::Open { path: &path, flags: OPEN_READ, mode: None },
                Request::Close { handle: &data },
                Request::Read { handle: &data, offset: 9, len: 32768 },
                Request::Write { handle: b"h", offset: 0, data: &data },
                Request::Lstat { path: &path },
                Request::Rename { from: &path, to: "x" },
                Request::Fsync { handle: &data },
            ];
            let mut out = Vec::new();
            for r in &requests {
                encode(&mut out, id, r);
            }
            let mut rest = &out[..];
            let mut n = 0;
            while let Some((b, used)) = split_packet(rest).unwrap() {
                prop_assert_eq!(&b[1..5], &id.to_be_bytes());
                rest = &rest[used..];
                n += 1;
            }
            prop_assert!(rest.is_empty());
            prop_assert_eq!(n, requests.len());
        }
    }
}

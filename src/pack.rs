//! Packs: a batch's outbound files (the outbox) or received ORD files (the archive) kept in one zstd-compressed tar, read back by the slice the ledger recorded.
//!
//! A pack is a ustar archive compressed with zstd (`tar --zstd -tvf
//! outbox/<ORD>/pack-0000000101.tar.zst` lists it, `tar --zstd -xf` extracts the very bytes that
//! were sent or received), named after the first id of its batch (a transmission id in the outbox,
//! a ledger row id in the archive). The ledger records, for every file, its pack and the offset of
//! its bytes in the *uncompressed* tar (and their length); delivery and `verify` read that slice
//! and check it against the recorded sha256. One pack per batch instead of one file per file: on a
//! disk, creating tens of thousands of small files a day was the largest cost of the cycle
//! (docs/PERFORMANCE.md).
//!
//! The tar is compressed in independent frames of about [`FRAME_TARGET`] bytes, each starting at a
//! member's header, and ends with a seek table in the zstd seekable format (a skippable frame that
//! `zstd -d` ignores): a slice is read by decompressing the one frame that holds it, not the pack
//! from its start. Packs written before compression (`.tar`) are read as they are.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use egme_ord_core::ledger::{pack_name, PackSlice};

/// About how many bytes of tar go into one zstd frame: a slice read decompresses at most this much
/// (plus its own member), and similar files within a frame compress against each other.
pub const FRAME_TARGET: usize = 4 << 20;

/// The zstd level packs are written with: level 1 keeps the cycle's CPU low, and the files of a
/// batch are so alike that it already compresses them more than a hundredfold
/// (docs/PERFORMANCE.md).
pub const LEVEL: i32 = 1;

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// The magic number of the skippable frame that holds the seek table.
const SEEK_TABLE_FRAME_MAGIC: u32 = 0x184D_2A5E;
/// The last four bytes of a seekable zstd file.
const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// The seek table's footer: number of frames (4), descriptor (1), magic (4).
const FOOTER_LEN: u64 = 9;

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Builds one pack in memory (no IO): files are added as they are written, compressed a frame at a
/// time, then the whole pack is written at once, before the batch that records its slices commits.
pub struct PackBuilder {
    name: Option<String>,
    /// The tar bytes of the frame being filled.
    tar: tar::Builder<Vec<u8>>,
    /// Where that frame starts in the uncompressed tar.
    base: u64,
    /// The frames compressed so far.
    out: Vec<u8>,
    /// Each frame's (compressed, uncompressed) size, for the seek table.
    frames: Vec<(u32, u32)>,
    /// The frames' compressor, or why it could not be made (said at the first frame).
    compressor: io::Result<zstd::bulk::Compressor<'static>>,
    mtime: u64,
    /// [`FRAME_TARGET`], smaller in tests.
    frame_target: usize,
}

impl PackBuilder {
    /// An empty pack whose members will carry `at` as their modification time.
    pub fn new(at: DateTime<Utc>) -> PackBuilder {
        PackBuilder {
            name: None,
            tar: tar::Builder::new(Vec::new()),
            base: 0,
            out: Vec::new(),
            frames: Vec::new(),
            compressor: compressor(),
            mtime: u64::try_from(at.timestamp()).unwrap_or(0),
            frame_target: FRAME_TARGET,
        }
    }

    /// An empty pack with a name of its own (files a recovery brings back from an ORD's folder).
    pub fn named(at: DateTime<Utc>, name: &str) -> PackBuilder {
        let mut pack = PackBuilder::new(at);
        pack.name = Some(name.to_string());
        pack
    }

    /// Adds the file `name` and says where its bytes are. The pack takes its name from the
    /// `first_id` given with the first file added (see [`pack_name`]).
    pub fn add(&mut self, first_id: u64, name: &str, bytes: &[u8]) -> io::Result<PackSlice> {
        let pack = self.name.get_or_insert_with(|| pack_name(first_id)).clone();
        // A full frame is closed before the next member, never after the last one: the last frame
        // then always holds a member as well as the end of the archive.
        if self.tar.get_ref().len() >= self.frame_target {
            let chunk = std::mem::take(self.tar.get_mut());
            self.compress(&chunk)?;
        }
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        self.tar.append_data(&mut header, name, bytes)?;
        // The member's data ends where the frame now ends, less the padding to 512 bytes.
        let len = bytes.len() as u64;
        let padding = (512 - len % 512) % 512;
        let end = self.base + self.tar.get_ref().len() as u64 - padding;
        Ok(PackSlice {
            pack,
            offset: end - len,
            len,
        })
    }

    /// Compresses one frame's tar bytes onto the pack.
    fn compress(&mut self, chunk: &[u8]) -> io::Result<()> {
        let frame = match &mut self.compressor {
            Ok(c) => c.compress(chunk)?,
            Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
        };
        let sizes = (u32::try_from(frame.len()), u32::try_from(chunk.len()));
        let (Ok(compressed), Ok(plain)) = sizes else {
            return Err(invalid(format!(
                "a pack frame of {} bytes is too large for the seek table",
                chunk.len()
            )));
        };
        self.frames.push((compressed, plain));
        self.out.extend_from_slice(&frame);
        self.base += chunk.len() as u64;
        Ok(())
    }

    /// The pack's name and bytes, or `None` when nothing was added.
    pub fn finish(mut self) -> io::Result<Option<(String, Vec<u8>)>> {
        let Some(name) = self.name.take() else {
            return Ok(None);
        };
        let tar = std::mem::replace(&mut self.tar, tar::Builder::new(Vec::new()));
        let last = tar.into_inner()?;
        self.compress(&last)?;
        let mut table = Vec::with_capacity(self.frames.len() * 8 + FOOTER_LEN as usize);
        for (compressed, plain) in &self.frames {
            table.extend_from_slice(&compressed.to_le_bytes());
            table.extend_from_slice(&plain.to_le_bytes());
        }
        let count = u32::try_from(self.frames.len())
            .map_err(|_| invalid("too many frames for a seek table".into()))?;
        table.extend_from_slice(&count.to_le_bytes());
        // The descriptor: no per-frame checksums (each frame carries zstd's own).
        table.push(0);
        table.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        let mut out = self.out;
        out.extend_from_slice(&SEEK_TABLE_FRAME_MAGIC.to_le_bytes());
        out.extend_from_slice(&(table.len() as u32).to_le_bytes());
        out.extend_from_slice(&table);
        Ok(Some((name, out)))
    }
}

/// How the name of a file kept compressed on its own ends (the mobility archive).
pub const ZST_SUFFIX: &str = ".zst";

/// A file's bytes as kept compressed on its own: one zstd frame with its checksum, which `zstd -d`
/// reads.
pub fn compress_file(bytes: &[u8]) -> io::Result<Vec<u8>> {
    compressor()?.compress(bytes)
}

/// The bytes of a file kept by [`compress_file`]; an error when they do not decompress whole.
pub fn decompress_file(kept: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Decoder::new(kept)?.read_to_end(&mut out)?;
    Ok(out)
}

fn compressor() -> io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(LEVEL)?;
    // Each frame checks its own content when it is decompressed (ARCHITECTURE's invariant): a
    // compressor that cannot say so writes nothing.
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
    Ok(c)
}

/// One zstd frame of a pack: where it is in the file and which bytes of the tar it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    at: u64,
    tar_at: u64,
    tar_len: u64,
}

/// How a pack's bytes are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// A plain tar (packs from before compression).
    Plain,
    /// zstd frames with a seek table.
    Seekable(Vec<Frame>),
    /// zstd without a seek table (recompressed by hand): read from the start.
    Stream,
}

/// Whether the file starts like zstd.
fn is_zstd(file: &mut File) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    file.seek(SeekFrom::Start(0))?;
    let n = file.take(4).read(&mut magic)?;
    Ok(n == 4 && magic == ZSTD_MAGIC)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// The frames a seek table at the end of `file` lists, or `None` when it has none.
fn seek_table(file: &mut File) -> io::Result<Option<Vec<Frame>>> {
    let size = file.seek(SeekFrom::End(0))?;
    if size < FOOTER_LEN + 8 {
        return Ok(None);
    }
    let mut footer = [0u8; FOOTER_LEN as usize];
    file.seek(SeekFrom::Start(size - FOOTER_LEN))?;
    file.read_exact(&mut footer)?;
    if u32_at(&footer, 5) != SEEKABLE_MAGIC {
        return Ok(None);
    }
    let count = u64::from(u32_at(&footer, 0));
    let descriptor = footer[4];
    let entry = if descriptor & 0x80 != 0 { 12 } else { 8 };
    let table_len = count * entry + FOOTER_LEN;
    let Some(frame_start) = size.checked_sub(table_len + 8) else {
        return Err(invalid(format!(
            "a seek table of {count} frames does not fit in the pack"
        )));
    };
    let mut table = vec![0u8; (table_len + 8) as usize];
    file.seek(SeekFrom::Start(frame_start))?;
    file.read_exact(&mut table)?;
    if u32_at(&table, 0) != SEEK_TABLE_FRAME_MAGIC || u64::from(u32_at(&table, 4)) != table_len {
        return Err(invalid("the seek table's frame header is damaged".into()));
    }
    let mut frames = Vec::with_capacity(count as usize);
    let (mut at, mut tar_at) = (0u64, 0u64);
    for i in 0..count as usize {
        let e = 8 + i * entry as usize;
        let (compressed, plain) = (
            u64::from(u32_at(&table, e)),
            u64::from(u32_at(&table, e + 4)),
        );
        frames.push(Frame {
            at,
            tar_at,
            tar_len: plain,
        });
        at += compressed;
        tar_at += plain;
    }
    if at != frame_start {
        return Err(invalid(format!(
            "the seek table's frames end at byte {at}, the table starts at {frame_start}"
        )));
    }
    Ok(Some(frames))
}

/// How the pack in `file` is stored.
fn layout(file: &mut File) -> io::Result<Layout> {
    if !is_zstd(file)? {
        return Ok(Layout::Plain);
    }
    Ok(match seek_table(file)? {
        Some(frames) => Layout::Seekable(frames),
        None => Layout::Stream,
    })
}

type Decoder<R = File> = zstd::stream::read::Decoder<'static, BufReader<R>>;

/// The uncompressed tar of the pack at `path`, from its start. A pack with a seek table is read a
/// whole frame at a time, so that no byte of a frame is handed on before its checksum is checked.
fn tar_stream(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut file = File::open(path)?;
    let layout = layout(&mut file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(match layout {
        Layout::Plain => Box::new(file),
        Layout::Stream => Box::new(Decoder::new(file)?),
        Layout::Seekable(frames) => Box::new(Frames {
            file,
            frames: frames.into_iter(),
            whole: io::Cursor::new(Vec::new()),
        }),
    })
}

/// A seekable pack's tar, decompressed and checked a frame at a time.
struct Frames {
    file: File,
    frames: std::vec::IntoIter<Frame>,
    /// The frame being read out.
    whole: io::Cursor<Vec<u8>>,
}

impl Read for Frames {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.whole.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(f) = self.frames.next() else {
                return Ok(0);
            };
            self.file.seek(SeekFrom::Start(f.at))?;
            let mut whole = Vec::with_capacity(f.tar_len as usize);
            Decoder::new(&self.file)?
                .single_frame()
                .read_to_end(&mut whole)?;
            if whole.len() as u64 != f.tar_len {
                return Err(frame_size_error(&f, whole.len()));
            }
            self.whole = io::Cursor::new(whole);
        }
    }
}

fn frame_size_error(f: &Frame, found: usize) -> io::Error {
    invalid(format!(
        "the frame at byte {} holds {found} bytes, the seek table says {}",
        f.at, f.tar_len
    ))
}

/// The names of a pack's members, in order, read from their headers (the data of a plain tar is
/// skipped; a compressed one is decompressed as it is read).
pub fn member_names(path: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut file = File::open(path)?;
    if is_zstd(&mut file)? {
        let mut archive = tar::Archive::new(tar_stream(path)?);
        for entry in archive.entries()? {
            out.push(entry?.path()?.to_string_lossy().into_owned());
        }
    } else {
        file.seek(SeekFrom::Start(0))?;
        let mut archive = tar::Archive::new(file);
        for entry in archive.entries_with_seek()? {
            out.push(entry?.path()?.to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// The names of the members of a pack's last frame (a compressed pack with a seek table) — the
/// newest files of the batch, read without decompressing the rest; every member's name otherwise.
pub fn last_member_names(path: &Path) -> io::Result<Vec<String>> {
    let mut file = File::open(path)?;
    let Layout::Seekable(frames) = layout(&mut file)? else {
        return member_names(path);
    };
    let Some(last) = frames.last() else {
        return Ok(Vec::new());
    };
    file.seek(SeekFrom::Start(last.at))?;
    let decoder = Decoder::new(file)?.single_frame();
    let mut archive = tar::Archive::new(decoder.take(last.tar_len));
    let mut out = Vec::new();
    for entry in archive.entries()? {
        out.push(entry?.path()?.to_string_lossy().into_owned());
    }
    Ok(out)
}

/// An open pack, and what of it is decompressed.
struct OpenPack {
    name: String,
    path: PathBuf,
    file: File,
    layout: Layout,
    /// The last frame read whole, by its index (compressed packs with a seek table).
    frame: Option<(usize, Vec<u8>)>,
    /// A decoder and the tar offset it has reached (compressed packs without a seek table).
    cursor: Option<(Decoder, u64)>,
}

impl OpenPack {
    fn open(name: &str, path: &Path) -> io::Result<OpenPack> {
        let mut file = File::open(path)?;
        let layout = layout(&mut file)?;
        Ok(OpenPack {
            name: name.to_string(),
            path: path.to_path_buf(),
            file,
            layout,
            frame: None,
            cursor: None,
        })
    }

    /// The `len` bytes at tar offset `offset` (fewer when the pack ends before). A frame is
    /// decompressed whole, so its checksum is checked before any of its bytes are returned.
    fn read(&mut self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        match &self.layout {
            Layout::Plain => {
                self.file.seek(SeekFrom::Start(offset))?;
                (&mut self.file).take(len).read_to_end(&mut bytes)?;
            }
            Layout::Seekable(frames) => {
                let i = frames.partition_point(|f| f.tar_at + f.tar_len <= offset);
                let Some(f) = frames.get(i).copied() else {
                    return Ok(bytes);
                };
                if self.frame.as_ref().is_none_or(|(at, _)| *at != i) {
                    self.frame = None;
                    self.file.seek(SeekFrom::Start(f.at))?;
                    let mut decoder = Decoder::new(&self.file)?.single_frame();
                    let mut whole = Vec::with_capacity(f.tar_len as usize);
                    decoder.read_to_end(&mut whole)?;
                    if whole.len() as u64 != f.tar_len {
                        return Err(frame_size_error(&f, whole.len()));
                    }
                    self.frame = Some((i, whole));
                }
                if let Some((_, whole)) = &self.frame {
                    let start = (offset - f.tar_at) as usize;
                    let end = whole.len().min(start + len as usize);
                    bytes.extend_from_slice(&whole[start..end]);
                }
            }
            Layout::Stream => {
                // Reading on while the cursor is before the slice; from the start otherwise.
                if !matches!(&self.cursor, Some((_, at)) if *at <= offset) {
                    self.cursor = Some((Decoder::new(File::open(&self.path)?)?, 0));
                }
                if let Some((decoder, at)) = &mut self.cursor {
                    *at += io::copy(&mut decoder.take(offset - *at), &mut io::sink())?;
                    if *at == offset {
                        *at += decoder.take(len).read_to_end(&mut bytes)? as u64;
                    }
                }
            }
        }
        Ok(bytes)
    }
}

/// Reads files back from a folder of packs (an ORD's outbox, for delivery), keeping the last pack
/// open (a delivery page reads its files in transmission order, so mostly from one pack, forward).
pub struct PackReader {
    dir: PathBuf,
    /// Where packs that are not in `dir` are read from (a dry run reads the real outbox).
    fallback: Option<PathBuf>,
    open: Option<OpenPack>,
}

impl PackReader {
    pub fn new(dir: &Path) -> PackReader {
        PackReader {
            dir: dir.to_path_buf(),
            fallback: None,
            open: None,
        }
    }

    /// Reads from `dir`, and from `fallback` what `dir` does not have.
    pub fn with_fallback(dir: &Path, fallback: Option<PathBuf>) -> PackReader {
        PackReader {
            fallback,
            ..PackReader::new(dir)
        }
    }

    /// Where the file or pack `name` is: in the folder, else in the fallback if it is there.
    fn locate(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        match &self.fallback {
            Some(f) if !path.exists() => f.join(name),
            _ => path,
        }
    }

    /// The bytes of the file `name`: its slice of a pack, or (files written before packs) the file
    /// `name` itself. The error names the file that could not be read.
    pub fn read(
        &mut self,
        name: &str,
        slice: Option<&PackSlice>,
    ) -> Result<Vec<u8>, (PathBuf, io::Error)> {
        let Some(slice) = slice else {
            let path = self.locate(name);
            return std::fs::read(&path).map_err(|e| (path, e));
        };
        let path = self.locate(&slice.pack);
        let pack = match &mut self.open {
            Some(open) if open.name == slice.pack => open,
            _ => {
                let open = OpenPack::open(&slice.pack, &path).map_err(|e| (path.clone(), e))?;
                self.open.insert(open)
            }
        };
        let read = pack.read(slice.offset, slice.len);
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) => {
                // A damaged frame: the next read starts afresh.
                pack.cursor = None;
                pack.frame = None;
                return Err((path, e));
            }
        };
        if bytes.len() as u64 != slice.len {
            return Err((
                path,
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{name}: the pack ends before the {} bytes at offset {}",
                        slice.len, slice.offset
                    ),
                ),
            ));
        }
        Ok(bytes)
    }
}

/// One file of a pack as `tar` sees it: its name, where its bytes start, and the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackMember {
    pub name: String,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Calls `each` with every member of the pack at `path`, in order, one at a time (a pack is never
/// held in memory whole); `io` turns a read error into the caller's.
pub fn for_each_member<E>(
    path: &Path,
    io: impl Fn(io::Error) -> E,
    mut each: impl FnMut(PackMember) -> Result<(), E>,
) -> Result<(), E> {
    let mut archive = tar::Archive::new(tar_stream(path).map_err(&io)?);
    for entry in archive.entries().map_err(&io)? {
        let mut entry = entry.map_err(&io)?;
        let name = entry.path().map_err(&io)?.to_string_lossy().into_owned();
        let offset = entry.raw_file_position();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(&io)?;
        each(PackMember {
            name,
            offset,
            bytes,
        })?;
    }
    Ok(())
}

/// Every member of the pack at `path` (small packs and tests; see [`for_each_member`]).
pub fn pack_members(path: &Path) -> io::Result<Vec<PackMember>> {
    let mut out = Vec::new();
    for_each_member(
        path,
        |e| e,
        |m| {
            out.push(m);
            Ok(())
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use egme_ord_core::ledger::pack_first_id;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_730_764_800, 0).unwrap_or_default()
    }

    #[test]
    fn a_packs_first_id_is_read_from_its_name_and_its_members_from_the_headers() {
        assert_eq!(pack_first_id("pack-0000000101.tar.zst"), Some(101));
        assert_eq!(pack_first_id("pack-0000000101.tar"), Some(101));
        assert_eq!(pack_first_id("pack-.tar.zst"), None);
        assert_eq!(pack_first_id("pack-12a.tar"), None);
        assert_eq!(pack_first_id("pack-0000000101.tar.1"), None);
        assert_eq!(pack_first_id("pack-0000000101.zst"), None);
        let dir = tempfile::tempdir().unwrap();
        let mut pack = PackBuilder::new(at());
        pack.add(7, "A7", &[1; 700]).unwrap();
        pack.add(7, "B8", b"x").unwrap();
        let (name, bytes) = pack.finish().unwrap().unwrap();
        std::fs::write(dir.path().join(&name), bytes).unwrap();
        assert_eq!(member_names(&dir.path().join(name)).unwrap(), ["A7", "B8"]);
    }

    #[test]
    fn an_empty_pack_writes_nothing() {
        assert!(PackBuilder::new(at()).finish().unwrap().is_none());
    }

    #[test]
    fn each_file_is_read_back_from_its_slice_and_the_pack_is_a_plain_tar() {
        let dir = tempfile::tempdir().unwrap();
        let mut pack = PackBuilder::new(at());
        let files: Vec<(String, Vec<u8>)> = (0..5u64)
            .map(|i| {
                (
                    format!("F{i}.sgl"),
                    vec![b'a' + i as u8; 100 + 300 * i as usize],
                )
            })
            .collect();
        let slices: Vec<PackSlice> = files
            .iter()
            .enumerate()
            .map(|(i, (name, bytes))| pack.add(41 + i as u64, name, bytes).unwrap())
            .collect();
        let (name, bytes) = pack.finish().unwrap().unwrap();
        assert_eq!(name, "pack-0000000041.tar.zst");
        assert!(slices.iter().all(|s| s.pack == name));
        std::fs::write(dir.path().join(&name), &bytes).unwrap();
        let mut reader = PackReader::new(dir.path());
        // Out of order too: each read seeks to its own slice.
        for i in [3, 0, 4, 1, 2] {
            let (file, content) = &files[i];
            assert_eq!(&reader.read(file, Some(&slices[i])).unwrap(), content);
        }
        let members = pack_members(&dir.path().join(&name)).unwrap();
        let listed: Vec<(String, Vec<u8>)> = members
            .iter()
            .map(|m| (m.name.clone(), m.bytes.clone()))
            .collect();
        assert_eq!(listed, files);
        let offsets: Vec<u64> = members.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, slices.iter().map(|s| s.offset).collect::<Vec<_>>());
    }

    #[test]
    fn a_file_written_before_packs_is_read_by_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.sgl"), b"abc").unwrap();
        let mut reader = PackReader::new(dir.path());
        assert_eq!(reader.read("old.sgl", None).unwrap(), b"abc");
        let (path, _) = reader.read("gone.sgl", None).unwrap_err();
        assert!(path.ends_with("gone.sgl"));
    }

    #[test]
    fn a_slice_past_the_end_of_its_pack_or_a_missing_pack_is_an_error_not_short_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut pack = PackBuilder::new(at());
        let slice = pack.add(1, "a.sgl", b"abc").unwrap();
        let (name, bytes) = pack.finish().unwrap().unwrap();
        std::fs::write(dir.path().join(&name), &bytes).unwrap();
        let mut reader = PackReader::new(dir.path());
        let tar_len = zstd::stream::decode_all(&bytes[..]).unwrap().len() as u64;
        let beyond = PackSlice {
            offset: tar_len - 2,
            ..slice.clone()
        };
        let (path, e) = reader.read("a.sgl", Some(&beyond)).unwrap_err();
        assert!(path.ends_with(&name));
        assert!(e.to_string().contains("ends before"), "{e}");
        let missing = PackSlice {
            pack: pack_name(99),
            ..slice
        };
        let (path, _) = reader.read("a.sgl", Some(&missing)).unwrap_err();
        assert!(path.ends_with(pack_name(99)));
    }

    /// The frame size of the tests' packs: many frames from a few files.
    const FRAME: usize = 256 << 10;

    /// Files enough for several frames, each unlike the next.
    fn many_files() -> Vec<(String, Vec<u8>)> {
        (0..3000u64)
            .map(|i| {
                let line = format!("{i:08};{};0.{:03}\n", i * 7919 % 10007, i % 997);
                (
                    format!("F{i:05}.sgl"),
                    line.repeat(1 + (i % 40) as usize).into_bytes(),
                )
            })
            .collect()
    }

    fn built(files: &[(String, Vec<u8>)]) -> (tempfile::TempDir, String, Vec<PackSlice>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let mut pack = PackBuilder::new(at());
        pack.frame_target = FRAME;
        let slices: Vec<PackSlice> = files
            .iter()
            .map(|(name, bytes)| pack.add(1, name, bytes).unwrap())
            .collect();
        let (name, bytes) = pack.finish().unwrap().unwrap();
        std::fs::write(dir.path().join(&name), &bytes).unwrap();
        (dir, name, slices, bytes)
    }

    #[test]
    fn a_pack_is_a_plain_zstd_stream_of_a_plain_tar_whose_offsets_are_the_ledgers() {
        let files = many_files();
        let (dir, name, slices, bytes) = built(&files);
        // What `zstd -d` does: every frame in turn, the seek table skipped.
        let tar = zstd::stream::decode_all(&bytes[..]).unwrap();
        let total: usize = files.iter().map(|(_, b)| b.len()).sum();
        assert!(tar.len() > 8 * FRAME, "{} bytes of tar", tar.len());
        assert!(
            bytes.len() * 10 < total,
            "{} compressed from {total}",
            bytes.len()
        );
        let mut archive = tar::Archive::new(&tar[..]);
        let mut n = 0;
        for (entry, ((name, content), slice)) in
            archive.entries().unwrap().zip(files.iter().zip(&slices))
        {
            let mut entry = entry.unwrap();
            assert_eq!(entry.path().unwrap().to_string_lossy(), *name);
            assert_eq!(entry.raw_file_position(), slice.offset);
            let mut read = Vec::new();
            entry.read_to_end(&mut read).unwrap();
            assert_eq!(&read, content);
            n += 1;
        }
        assert_eq!(n, files.len());
        let mut file = File::open(dir.path().join(&name)).unwrap();
        let Layout::Seekable(frames) = layout(&mut file).unwrap() else {
            panic!("no seek table");
        };
        assert!(frames.len() >= 3, "{} frames", frames.len());
        assert_eq!(
            frames.iter().map(|f| f.tar_len).sum::<u64>(),
            tar.len() as u64
        );
    }

    #[test]
    fn slices_are_read_across_frames_in_any_order() {
        let files = many_files();
        let (dir, _, slices, _) = built(&files);
        let mut reader = PackReader::new(dir.path());
        // Forward (delivery), backward, and jumping between frames.
        let order: Vec<usize> = (0..files.len())
            .step_by(7)
            .chain((0..files.len()).rev().step_by(13))
            .chain((0..200).map(|i| i * 1543 % files.len()))
            .collect();
        for i in order {
            let (name, content) = &files[i];
            assert_eq!(
                &reader.read(name, Some(&slices[i])).unwrap(),
                content,
                "{name}"
            );
        }
        let all = pack_members(&dir.path().join(&slices[0].pack)).unwrap();
        assert_eq!(all.len(), files.len());
    }

    #[test]
    fn the_last_frames_names_are_the_newest_files_read_alone() {
        let files = many_files();
        let (dir, name, _, _) = built(&files);
        let path = dir.path().join(&name);
        let last = last_member_names(&path).unwrap();
        let all = member_names(&path).unwrap();
        assert!(
            !last.is_empty() && last.len() < all.len() / 2,
            "{} of {}",
            last.len(),
            all.len()
        );
        assert_eq!(last[..], all[all.len() - last.len()..]);
        assert_eq!(all.last().map(String::as_str), Some("F02999.sgl"));
    }

    #[test]
    fn a_damaged_byte_in_a_compressed_pack_is_an_error_never_other_bytes() {
        let files = many_files();
        let (dir, name, slices, bytes) = built(&files);
        let path = dir.path().join(&name);
        let mut file = File::open(&path).unwrap();
        let Layout::Seekable(frames) = layout(&mut file).unwrap() else {
            panic!("no seek table");
        };
        // Every slice in the second frame is either read right or refused.
        let second = frames[1];
        let mut damaged = bytes.clone();
        damaged[(second.at + 200) as usize] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        let mut reader = PackReader::new(dir.path());
        let mut refused = 0;
        for (i, slice) in slices.iter().enumerate() {
            if slice.offset < second.tar_at || slice.offset >= second.tar_at + second.tar_len {
                continue;
            }
            match reader.read(&files[i].0, Some(slice)) {
                Ok(read) => assert_eq!(read, files[i].1),
                Err(_) => refused += 1,
            }
        }
        assert!(refused > 0);
        // Read whole, the members before the damaged frame come out right and none after.
        let mut handed = 0;
        let whole = for_each_member(
            &path,
            |e| e,
            |m| {
                assert_eq!(m.bytes, files[handed].1, "{}", m.name);
                assert!(
                    m.offset < second.tar_at,
                    "{} from the damaged frame",
                    m.name
                );
                handed += 1;
                Ok(())
            },
        );
        assert!(whole.is_err());
        assert!(handed > 0);
    }

    #[test]
    fn a_plain_tar_pack_from_before_compression_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(3);
        header.set_mode(0o600);
        tar.append_data(&mut header, "old.sgl", &b"abc"[..])
            .unwrap();
        let bytes = tar.into_inner().unwrap();
        std::fs::write(dir.path().join("pack-0000000001.tar"), &bytes).unwrap();
        let slice = PackSlice {
            pack: "pack-0000000001.tar".into(),
            offset: 512,
            len: 3,
        };
        let mut reader = PackReader::new(dir.path());
        assert_eq!(reader.read("old.sgl", Some(&slice)).unwrap(), b"abc");
        let path = dir.path().join("pack-0000000001.tar");
        assert_eq!(member_names(&path).unwrap(), ["old.sgl"]);
        assert_eq!(last_member_names(&path).unwrap(), ["old.sgl"]);
        assert_eq!(pack_members(&path).unwrap()[0].offset, 512);
    }

    #[test]
    fn a_pack_recompressed_without_a_seek_table_is_read_from_its_start() {
        let files = many_files();
        let (dir, name, slices, bytes) = built(&files);
        let tar = zstd::stream::decode_all(&bytes[..]).unwrap();
        std::fs::write(
            dir.path().join(&name),
            zstd::stream::encode_all(&tar[..], 3).unwrap(),
        )
        .unwrap();
        let mut reader = PackReader::new(dir.path());
        for i in [5, 2000, 17, 2999] {
            assert_eq!(
                reader.read(&files[i].0, Some(&slices[i])).unwrap(),
                files[i].1
            );
        }
    }
}

//! Tar packs: a batch's outbound files (the outbox) or received ORD files (the archive) kept in one tar, read back by the slice the ledger recorded.
//!
//! A pack is a plain ustar archive (`tar -tvf outbox/<ORD>/pack-0000000101.tar` lists it, `tar -xf`
//! extracts the very bytes that were sent or received), named after the first id of its batch (a
//! transmission id in the outbox, a ledger row id in the archive). The ledger records, for every
//! file, its pack and the offset of its bytes in the pack (and their length); delivery and `verify`
//! read that slice and check it against the recorded sha256. One pack per batch instead of one file
//! per file: on a disk, creating tens of thousands of small files a day was the largest cost of the
//! cycle (docs/PERFORMANCE.md).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

pub use crate::ledger::{pack_first_id, pack_name, PackSlice, PACK_SUFFIX};

/// The names of a pack's members, in order, read from their headers only (no data is read).
pub fn member_names(path: &Path) -> io::Result<Vec<String>> {
    let mut archive = tar::Archive::new(File::open(path)?);
    let mut out = Vec::new();
    for entry in archive.entries_with_seek()? {
        out.push(entry?.path()?.to_string_lossy().into_owned());
    }
    Ok(out)
}

/// Builds one pack in memory (no IO): files are added as they are written, then the whole pack is
/// written at once, before the batch that records its slices commits.
pub struct PackBuilder {
    name: Option<String>,
    tar: tar::Builder<Vec<u8>>,
    mtime: u64,
}

impl PackBuilder {
    /// An empty pack whose members will carry `at` as their modification time.
    pub fn new(at: DateTime<Utc>) -> PackBuilder {
        PackBuilder {
            name: None,
            tar: tar::Builder::new(Vec::new()),
            mtime: u64::try_from(at.timestamp()).unwrap_or(0),
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
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        self.tar.append_data(&mut header, name, bytes)?;
        // The member's data ends where the archive now ends, less the padding to 512 bytes.
        let len = bytes.len() as u64;
        let padding = (512 - len % 512) % 512;
        let end = self.tar.get_ref().len() as u64 - padding;
        Ok(PackSlice {
            pack,
            offset: end - len,
            len,
        })
    }

    /// The pack's name and bytes, or `None` when nothing was added.
    pub fn finish(self) -> io::Result<Option<(String, Vec<u8>)>> {
        let Some(name) = self.name else {
            return Ok(None);
        };
        Ok(Some((name, self.tar.into_inner()?)))
    }
}

/// Reads files back from a folder of packs (an ORD's outbox, for delivery), keeping the last pack
/// open (a delivery page reads its files in transmission order, so mostly from one pack).
pub struct PackReader {
    dir: PathBuf,
    /// Where packs that are not in `dir` are read from (a dry run reads the real outbox).
    fallback: Option<PathBuf>,
    open: Option<(String, File)>,
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
        let file = match &mut self.open {
            Some((open, file)) if *open == slice.pack => file,
            _ => {
                let file = File::open(&path).map_err(|e| (path.clone(), e))?;
                &mut self.open.insert((slice.pack.clone(), file)).1
            }
        };
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(slice.offset))
            .and_then(|_| file.take(slice.len).read_to_end(&mut bytes))
            .map_err(|e| (path.clone(), e))?;
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

/// Every member of the pack at `path`, in one read (for `verify`, which checks the ledger's slices
/// against them and also lists files that no ledger row names).
pub fn pack_members(path: &Path) -> io::Result<Vec<PackMember>> {
    let mut archive = tar::Archive::new(File::open(path)?);
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let offset = entry.raw_file_position();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        out.push(PackMember {
            name,
            offset,
            bytes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_730_764_800, 0).unwrap_or_default()
    }

    #[test]
    fn a_packs_first_id_is_read_from_its_name_and_its_members_from_the_headers() {
        assert_eq!(pack_first_id("pack-0000000101.tar"), Some(101));
        assert_eq!(pack_first_id("pack-.tar"), None);
        assert_eq!(pack_first_id("pack-12a.tar"), None);
        assert_eq!(pack_first_id("pack-0000000101.tar.1"), None);
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
        assert_eq!(name, "pack-0000000041.tar");
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
        let beyond = PackSlice {
            offset: bytes.len() as u64 - 2,
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
}

//! A file in an ORD's folder as a listing shows it, the names that are safe to use, and the temporary name an upload goes under (plain values shared by the transports and `verify`).

use std::fmt;

/// What follows a file's name in its temporary name while it is being put.
pub const UPLOAD_TEMP_SUFFIX: &str = ".egme-tmp";

/// Longest remote name used as a local file name; longer ones are quarantined under a hash.
pub const MAX_SAFE_NAME: usize = 200;

/// The hidden name `name` is written under before it is renamed: one per file, so the next put of
/// that file replaces (and renames or removes) what a put cut short left behind.
pub fn upload_temp_name(name: &SafeName) -> String {
    TempName::default().of(name)
}

/// The default `temp_name` of an SFTP send folder: hidden, beside the final name.
pub const DEFAULT_TEMP_NAME: &str = ".{name}.egme-tmp";

/// How the name a file is written under before its rename is made from its final name: a
/// pattern with `{name}` once, e.g. `.{name}.egme-tmp` (hidden, the default), `{name}.part` (for
/// a server that refuses dot-names) or `upload/{name}` (a subfolder of the ORD's choosing, for a
/// pickup that takes every file it sees). One name per file, so a put cut short is found again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempName {
    /// What comes before the name, a subfolder (`folder/`) included.
    prefix: String,
    suffix: String,
}

impl Default for TempName {
    fn default() -> TempName {
        TempName {
            prefix: ".".to_string(),
            suffix: UPLOAD_TEMP_SUFFIX.to_string(),
        }
    }
}

impl TempName {
    /// Reads a pattern; the error says what is wrong with it.
    pub fn parse(pattern: &str) -> Result<TempName, String> {
        let Some((prefix, suffix)) = pattern.split_once("{name}") else {
            return Err("must contain {name} (the file's final name)".into());
        };
        if suffix.contains("{name}") {
            return Err("must contain {name} once".into());
        }
        if prefix.is_empty() && suffix.is_empty() {
            return Err("must differ from {name}: the file would be visible under its final name while it is written".into());
        }
        if !pattern.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
            return Err("may hold printable ASCII only, without spaces or backslashes".into());
        }
        if suffix.contains('/') {
            return Err("may name a subfolder only before {name} (e.g. upload/{name})".into());
        }
        if let Some((folder, rest)) = prefix.split_once('/') {
            if rest.contains('/') {
                return Err("may name one subfolder, not a path (e.g. upload/{name})".into());
            }
            if folder.is_empty() || folder == "." || folder == ".." {
                return Err(
                    "names a subfolder that is not a folder name: use e.g. upload/{name}".into(),
                );
            }
        }
        Ok(TempName {
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
        })
    }

    /// The temporary name of `name`, relative to the send folder.
    pub fn of(&self, name: &SafeName) -> String {
        format!("{}{name}{}", self.prefix, self.suffix)
    }

    /// The subfolder the temporary names are in, if any.
    pub fn folder(&self) -> Option<&str> {
        self.prefix.split_once('/').map(|(folder, _)| folder)
    }

    /// The final name whose temporary name is `listed`, a name listed in the folder the
    /// temporary names are in (the subfolder's own listing when the pattern names one); `None`
    /// when `listed` is no temporary name of this pattern.
    pub fn final_of<'a>(&self, listed: &'a str) -> Option<&'a str> {
        let prefix = self.prefix.rsplit('/').next().unwrap_or_default();
        listed
            .strip_prefix(prefix)?
            .strip_suffix(self.suffix.as_str())
            .filter(|name| !name.is_empty())
    }

    /// The leftovers of puts cut short in a folder's listing (in the subfolder's listing when
    /// the pattern names one): the temporary names whose final name `ours` accepts. Anyone
    /// else's files, and temporary names of other names, are not touched.
    pub fn leftovers(&self, listing: &Listing, ours: impl Fn(&str) -> bool) -> Vec<String> {
        let files = listing.files.iter().map(|f| f.name.as_str());
        let unsafe_files = listing.unsafe_files.iter().map(|f| f.name.as_str());
        let mut found: Vec<String> = files
            .chain(unsafe_files)
            .chain(listing.hidden.iter().map(String::as_str))
            .filter(|listed| self.final_of(listed).is_some_and(&ours))
            .map(str::to_string)
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

impl fmt::Display for TempName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{name}}{}", self.prefix, self.suffix)
    }
}

/// Whether a remote name is safe to use as a local file name and as one component of a remote
/// path: not empty, not hidden, no separators, printable ASCII, at most `MAX_SAFE_NAME` bytes.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        // Room for the `.`, `.tmp-<pid>`, `.N` and `.errors.txt` the local copies add (NAME_MAX is 255).
        && name.len() <= MAX_SAFE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
}

/// A file name `is_safe_name` accepts: the only kind of name the transports read, write or move,
/// so no path built from an ORD's listing can leave its folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SafeName(String);

impl SafeName {
    /// `name` if it is safe.
    pub fn new(name: &str) -> Option<SafeName> {
        is_safe_name(name).then(|| SafeName(name.to_string()))
    }

    /// `name` if it is safe, else `name` given back (no copy either way).
    pub fn from_string(name: String) -> Result<SafeName, String> {
        if is_safe_name(&name) {
            Ok(SafeName(name))
        } else {
            Err(name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SafeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SafeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for SafeName {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

/// A file in a remote folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    pub name: SafeName,
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// A regular file listed under a name that is not safe: recorded and reported, never read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeEntry {
    pub name: String,
    pub size: u64,
    pub mtime: i64,
}

/// What a listed entry is, as far as the server said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Folder,
    Link,
    /// A device, pipe or socket.
    Other,
    /// The server said neither permission bits nor a long name that starts with a type.
    Unknown,
}

/// An entry's kind from its permission bits when the server sent them (SFTP v3 makes every
/// attribute optional), else from its `ls -l`-like long name: a type character followed by nine
/// permission characters (a long name that is only the file's name says nothing).
pub fn entry_kind(permissions: Option<u32>, longname: &[u8]) -> EntryKind {
    if let Some(p) = permissions {
        return match p & 0o170_000 {
            0o100_000 => EntryKind::File,
            0o040_000 => EntryKind::Folder,
            0o120_000 => EntryKind::Link,
            0 => EntryKind::Unknown,
            _ => EntryKind::Other,
        };
    }
    let Some(mode) = longname.get(..10) else {
        return EntryKind::Unknown;
    };
    if !mode[1..].iter().all(|c| b"-rwxsStT".contains(c)) {
        return EntryKind::Unknown;
    }
    match mode[0] {
        b'-' => EntryKind::File,
        b'd' => EntryKind::Folder,
        b'l' => EntryKind::Link,
        b'p' | b's' | b'c' | b'b' => EntryKind::Other,
        _ => EntryKind::Unknown,
    }
}

/// What a folder holds, as intake and `verify` use it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Regular files with safe names, by name.
    pub files: Vec<RemoteEntry>,
    /// Regular files whose names are not safe, by name.
    pub unsafe_files: Vec<UnsafeEntry>,
    /// Links and names that are not UTF-8 (shown lossily): never followed nor read.
    pub odd: Vec<String>,
    /// Hidden (dot) names, of any type: never files of the listing; the temporary names of
    /// uploads are among them.
    pub hidden: Vec<String>,
}

impl Listing {
    /// Sorts the regular files a folder listed, `(name, size, mtime)`, into safe and unsafe;
    /// `hidden`, the dot names it listed, are kept apart (sorted).
    pub fn new(
        files: impl IntoIterator<Item = (String, u64, i64)>,
        odd: Vec<String>,
        hidden: Vec<String>,
    ) -> Listing {
        let mut listing = Listing {
            odd,
            hidden,
            ..Listing::default()
        };
        for (name, size, mtime) in files {
            match SafeName::from_string(name) {
                Ok(name) => listing.files.push(RemoteEntry { name, size, mtime }),
                Err(name) => listing.unsafe_files.push(UnsafeEntry { name, size, mtime }),
            }
        }
        listing.sort();
        listing
    }

    /// Puts each part in name order (a listing arrives in the server's order).
    pub fn sort(&mut self) {
        self.files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        self.unsafe_files
            .sort_unstable_by(|a, b| a.name.cmp(&b.name));
        self.hidden.sort_unstable();
    }
}

/// Which files of a listing (sorted by name, as [`Listing::files`]) a ledger recorded under the same
/// name, size and modification time, told by the ledger's records in name order: one ordered pass
/// over both, whatever the folder holds.
#[derive(Debug)]
pub struct Recognition<'a> {
    listed: &'a [RemoteEntry],
    next: usize,
    recorded: Vec<bool>,
}

impl<'a> Recognition<'a> {
    pub fn new(listed: &'a [RemoteEntry]) -> Recognition<'a> {
        Recognition {
            listed,
            next: 0,
            recorded: vec![false; listed.len()],
        }
    }

    /// One record of the ledger; records come in name order (a name recorded with several sizes
    /// or times comes once for each).
    pub fn record(&mut self, name: &str, size: u64, mtime: i64) {
        while self
            .listed
            .get(self.next)
            .is_some_and(|e| e.name.as_str() < name)
        {
            self.next += 1;
        }
        if let Some(e) = self.listed.get(self.next) {
            if e.name.as_str() == name && e.size == size && e.mtime == mtime {
                self.recorded[self.next] = true;
            }
        }
    }

    /// For each listed file, in its order: whether the ledger recorded it.
    pub fn recorded(self) -> Vec<bool> {
        self.recorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_never_safe_names() {
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a b",
            "caf\u{e9}",
            "a\nb",
            &"x".repeat(MAX_SAFE_NAME + 1),
        ] {
            assert!(SafeName::new(bad).is_none(), "{bad:?}");
        }
        assert!(SafeName::new("0001PEPT0002000123681633GX_20241027_1234567890.sgl").is_some());
        assert!(SafeName::new(&"x".repeat(MAX_SAFE_NAME)).is_some());
    }

    #[test]
    fn a_listed_file_is_recognised_only_by_a_record_of_the_same_name_size_and_time() {
        let l = Listing::new(
            [
                ("a.sgl".to_string(), 1, 10),
                ("b.sgl".to_string(), 2, 20),
                ("c.sgl".to_string(), 3, 30),
                ("e.sgl".to_string(), 5, 50),
            ],
            Vec::new(),
            Vec::new(),
        );
        let mut r = Recognition::new(&l.files);
        // In name order: a name recorded twice (rewritten by the ORD), one with another time, one
        // never listed, and none after the last listed.
        for (name, size, mtime) in [
            ("a.sgl", 1, 9),
            ("a.sgl", 1, 10),
            ("b.sgl", 2, 21),
            ("d.sgl", 4, 40),
            ("e.sgl", 5, 50),
        ] {
            r.record(name, size, mtime);
        }
        assert_eq!(r.recorded(), [true, false, false, true]);
        assert_eq!(Recognition::new(&[]).recorded(), Vec::<bool>::new());
    }

    #[test]
    fn a_listing_keeps_safe_files_apart_from_unsafe_ones_each_by_name() {
        let l = Listing::new(
            [
                ("b.sgl".to_string(), 2, 20),
                ("a b.sgl".to_string(), 3, 30),
                ("a.sgl".to_string(), 1, 10),
            ],
            vec!["link".into()],
            vec![".b".into(), ".a".into()],
        );
        let names: Vec<&str> = l.files.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a.sgl", "b.sgl"]);
        assert_eq!(l.unsafe_files.len(), 1);
        assert_eq!(l.unsafe_files[0].name, "a b.sgl");
        assert_eq!(l.odd, ["link"]);
        assert_eq!(l.hidden, [".a", ".b"]);
    }

    #[test]
    fn an_entry_kind_comes_from_the_permission_bits_else_from_a_typed_long_name() {
        assert_eq!(entry_kind(Some(0o100_644), b""), EntryKind::File);
        assert_eq!(
            entry_kind(Some(0o040_755), b"-rw-r--r-- x"),
            EntryKind::Folder
        );
        assert_eq!(entry_kind(Some(0o120_777), b""), EntryKind::Link);
        assert_eq!(entry_kind(Some(0o010_644), b""), EntryKind::Other);
        // Bits without a type say nothing.
        assert_eq!(entry_kind(Some(0o644), b""), EntryKind::Unknown);
        let long = |s: &str| entry_kind(None, s.as_bytes());
        assert_eq!(
            long("-rw-r--r--    1 u g 12 Jan  1 00:00 a.sgl"),
            EntryKind::File
        );
        assert_eq!(
            long("drwxr-x---    2 u g 4096 Jan  1 00:00 done"),
            EntryKind::Folder
        );
        assert_eq!(
            long("lrwxrwxrwx    1 u g 5 Jan  1 00:00 l -> x"),
            EntryKind::Link
        );
        assert_eq!(
            long("prw-------    1 u g 0 Jan  1 00:00 fifo"),
            EntryKind::Other
        );
        assert_eq!(long("-rwsr-sr-T 1 u g 1 Jan 1 00:00 x"), EntryKind::File);
        // No type: an empty mode column, a bare name (even one that starts like a type), nothing.
        assert_eq!(
            long("                1 u g 12           a.sgl"),
            EntryKind::Unknown
        );
        assert_eq!(long("data-file-2024.sgl"), EntryKind::Unknown);
        assert_eq!(long("d.sgl"), EntryKind::Unknown);
        assert_eq!(long(""), EntryKind::Unknown);
    }

    #[test]
    fn a_temp_name_pattern_places_the_name_once_and_at_most_one_subfolder() {
        let name = SafeName::new("a.sgl").unwrap();
        let of = |p: &str| TempName::parse(p).map(|t| t.of(&name));
        assert_eq!(TempName::default().of(&name), ".a.sgl.egme-tmp");
        assert_eq!(of(DEFAULT_TEMP_NAME).unwrap(), ".a.sgl.egme-tmp");
        assert_eq!(
            TempName::parse(DEFAULT_TEMP_NAME).unwrap(),
            TempName::default()
        );
        assert_eq!(of("{name}.part").unwrap(), "a.sgl.part");
        assert_eq!(of("upload/{name}").unwrap(), "upload/a.sgl");
        assert_eq!(
            TempName::parse("upload/{name}").unwrap().folder(),
            Some("upload")
        );
        assert_eq!(TempName::parse("{name}.part").unwrap().folder(), None);
        assert_eq!(
            TempName::parse("{name}.part").unwrap().to_string(),
            "{name}.part"
        );
        for bad in [
            "",
            "name.part",
            "{name}",
            "{name}.{name}",
            "up load/{name}",
            "a/b/{name}",
            "/{name}",
            "../{name}",
            "./{name}",
            "{name}/x",
            "up\\load/{name}",
        ] {
            assert!(TempName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_the_temporary_names_of_our_files_are_leftovers_whatever_the_pattern() {
        let ours = |name: &str| name.starts_with("ours") && name.ends_with(".sgl");
        let listing = Listing::new(
            [
                ("ours1.sgl".to_string(), 1, 0),
                ("ours2.sgl.part".to_string(), 1, 0),
                ("theirs.sgl.part".to_string(), 1, 0),
                ("ours3.sgl".to_string(), 1, 0),
            ],
            Vec::new(),
            vec![
                ".ours4.sgl.egme-tmp".into(),
                ".theirs.sgl.egme-tmp".into(),
                ".ours5.sgl".into(),
                "..egme-tmp".into(),
            ],
        );
        let hidden = TempName::default();
        assert_eq!(hidden.leftovers(&listing, ours), [".ours4.sgl.egme-tmp"]);
        assert_eq!(hidden.final_of(".ours4.sgl.egme-tmp"), Some("ours4.sgl"));
        assert_eq!(hidden.final_of("..egme-tmp"), None);
        let part = TempName::parse("{name}.part").unwrap();
        assert_eq!(part.leftovers(&listing, ours), ["ours2.sgl.part"]);
        // A subfolder's own listing holds the final names themselves.
        let folder = TempName::parse("upload/{name}").unwrap();
        assert_eq!(folder.leftovers(&listing, ours), ["ours1.sgl", "ours3.sgl"]);
        let both = TempName::parse("up/.{name}~").unwrap();
        assert_eq!(both.final_of(".ours6.sgl~"), Some("ours6.sgl"));
    }
}

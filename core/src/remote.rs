//! A file in an ORD's folder as a listing shows it, and the temporary name an upload goes under (plain values shared by the transports and `verify`).

/// What follows a file's name in its temporary name while it is being put.
pub const UPLOAD_TEMP_SUFFIX: &str = ".egme-tmp";

/// The hidden name `name` is written under before it is renamed: one per file, so the next put of
/// that file replaces (and renames or removes) what a put cut short left behind.
pub fn upload_temp_name(name: &str) -> String {
    format!(".{name}{UPLOAD_TEMP_SUFFIX}")
}

/// A file in a remote folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    pub name: String,
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

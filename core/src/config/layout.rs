//! Where a config's folders are, compared: no folder serves two roles, and our private places never sit inside (or around) an ORD's.

use std::path::{Component, Path, PathBuf};

use super::read::KeyPath;
use super::{Config, Endpoint};

/// Where a folder is: on this machine (or a mount), or in a remote account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Local(PathBuf),
    /// `user@host:port` and the folder's path in that account (relative to its home when it does
    /// not start with `/`).
    Remote {
        account: String,
        path: String,
    },
}

impl Place {
    fn shown(&self) -> String {
        match self {
            Place::Local(p) => p.display().to_string(),
            Place::Remote { account, path } => format!("{account}:{path}"),
        }
    }

    /// `self` is `other` or inside it.
    fn within(&self, other: &Place) -> bool {
        match (self, other) {
            (Place::Local(a), Place::Local(b)) => a.starts_with(b),
            (
                Place::Remote { account, path },
                Place::Remote {
                    account: other_account,
                    path: other_path,
                },
            ) => {
                account == other_account
                    && (path.starts_with('/') == other_path.starts_with('/'))
                    && Path::new(path).starts_with(Path::new(other_path))
            }
            _ => false,
        }
    }
}

/// What a folder is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The ledger (a file): it may sit in the work folder.
    Store,
    WorkDir,
    /// Ours alone too: the backup folder, the mobility inbox.
    Ours,
    /// An ORD's receive or send folder (index of its ORD in the config).
    Ord(usize),
}

/// One folder the config names, with the key that names it.
#[derive(Debug, Clone)]
struct Folder {
    key: KeyPath,
    what: String,
    role: Role,
    place: Place,
}

/// Two folders of the config that collide: the key of the second, and a message naming both.
#[derive(Debug, Clone)]
pub struct Collision {
    pub(super) key: KeyPath,
    pub message: String,
}

/// `path` with `.` dropped and `..` taken back (never above the root), without touching the disk.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A remote folder's path normalised as [`normalise`] does (`/` kept for an absolute one, `.`
/// for the account's home).
fn normalise_remote(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    match (absolute, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".to_string(),
        (false, false) => parts.join("/"),
    }
}

fn place(endpoint: &Endpoint, resolve: &dyn Fn(&Path) -> PathBuf) -> Place {
    match endpoint {
        Endpoint::Local { path } => Place::Local(resolve(path)),
        Endpoint::Sftp(s) => Place::Remote {
            account: format!("{}@{}:{}", s.user, s.host.to_ascii_lowercase(), s.port),
            path: normalise_remote(&s.path),
        },
        Endpoint::Ftp(s) => Place::Remote {
            account: format!("{}@{}:{}", s.user, s.host.to_ascii_lowercase(), s.port),
            path: normalise_remote(&s.path),
        },
    }
}

fn folders(config: &Config, resolve: &dyn Fn(&Path) -> PathBuf) -> Vec<Folder> {
    let root = KeyPath::root();
    let ours = |key: KeyPath, what: &str, path: &Path, role: Role| Folder {
        key,
        what: what.to_string(),
        role,
        place: Place::Local(resolve(path)),
    };
    let mut out = vec![
        ours(
            root.key("store"),
            "the ledger (store)",
            &config.store,
            Role::Store,
        ),
        ours(
            root.key("work_dir"),
            "work_dir",
            &config.work_dir,
            Role::WorkDir,
        ),
        ours(
            root.key("mobility").key("inbox"),
            "the mobility inbox",
            &config.mobility_inbox,
            Role::Ours,
        ),
    ];
    if let Some(b) = &config.backup_folder {
        out.push(ours(
            root.key("backup").key("folder"),
            "the backup folder",
            b,
            Role::Ours,
        ));
    }
    for (i, ord) in config.ords.iter().enumerate() {
        for (side, endpoint) in [("receive", &ord.receive), ("send", &ord.send)] {
            out.push(Folder {
                key: root.key("ord").index(i).key(side).key("path"),
                what: format!("{}'s {side} folder", ord.name),
                role: Role::Ord(i),
                place: place(endpoint, resolve),
            });
        }
    }
    out
}

/// Every pair of the config's folders that collide, each path resolved by `resolve` (lexically
/// in the core; the shell also follows the links that exist):
/// - any two folders that are the same (an ORD's receive and send folders included; two ORDs'
///   folders in the same remote account and path);
/// - a folder inside another, unless both are the same ORD's or the ledger is in the work folder.
pub fn collisions(config: &Config, resolve: &dyn Fn(&Path) -> PathBuf) -> Vec<Collision> {
    let all = folders(config, resolve);
    let mut out = Vec::new();
    for (j, b) in all.iter().enumerate() {
        for a in &all[..j] {
            let same = a.place == b.place;
            let nested = a.place.within(&b.place) || b.place.within(&a.place);
            let allowed = !same
                && match (a.role, b.role) {
                    (Role::Ord(x), Role::Ord(y)) => x == y,
                    (Role::Store, Role::WorkDir) => a.place.within(&b.place),
                    (Role::WorkDir, Role::Store) => b.place.within(&a.place),
                    _ => false,
                };
            if (same || nested) && !allowed {
                let how = if same {
                    "is the same folder as"
                } else if b.place.within(&a.place) {
                    "is inside"
                } else {
                    "contains"
                };
                out.push(Collision {
                    key: b.key.clone(),
                    message: format!(
                        "{} ({}) {how} {} ({}, key `{}`): {}",
                        b.what,
                        b.place.shown(),
                        a.what,
                        a.place.shown(),
                        a.key,
                        why(a, b)
                    ),
                });
            }
        }
    }
    out
}

/// What goes wrong when `a` and `b` collide, and what to do.
fn why(a: &Folder, b: &Folder) -> &'static str {
    match (a.role, b.role) {
        (Role::Ord(x), Role::Ord(y)) if x == y => {
            "the ORD would read back our own files; give each side its own folder"
        }
        (Role::Ord(_), Role::Ord(_)) => {
            "one ORD would receive or read another's files; give each ORD its own folders"
        }
        (Role::Ord(_), _) | (_, Role::Ord(_)) => "the ORD's account would see (or fill) what is ours alone; keep the ledger, work_dir, the backups and the mobility inbox outside every ORD folder",
        _ => "give each its own folder",
    }
}

impl Collision {
    pub fn key(&self) -> String {
        self.key.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_without_the_disk() {
        assert_eq!(
            normalise(Path::new("/x/exchange/eda/../e-redes/./to-ord")),
            PathBuf::from("/x/exchange/e-redes/to-ord")
        );
        assert_eq!(normalise(Path::new("/../a")), PathBuf::from("/a"));
        assert_eq!(normalise_remote("in/../out/./x/"), "out/x");
        assert_eq!(normalise_remote("/../in"), "/in");
        assert_eq!(normalise_remote(""), ".");
        assert_eq!(normalise_remote("../up"), "../up");
    }
}

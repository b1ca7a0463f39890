//! The TOML read into raw sections: every mistake kept with its key path and its place in the file; a wrong value is dropped and the section read again, so one run reports every mistake.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde::de::DeserializeOwned;

/// One step of a key path: a key, or an index in an array (of tables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// Where a value is in the document: `ord[1].receive.host`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct KeyPath(pub Vec<Step>);

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    /// This path and then `key`.
    pub fn key(&self, key: &str) -> KeyPath {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_string()));
        KeyPath(steps)
    }

    /// This path and then `[index]`.
    pub fn index(&self, index: usize) -> KeyPath {
        let mut steps = self.0.clone();
        steps.push(Step::Index(index));
        KeyPath(steps)
    }

    /// This path and then `rest`.
    pub fn join(&self, rest: &KeyPath) -> KeyPath {
        let mut steps = self.0.clone();
        steps.extend(rest.0.iter().cloned());
        KeyPath(steps)
    }

    /// The path serde_path_to_error found an error at.
    fn of(path: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment;
        KeyPath(
            path.iter()
                .filter_map(|s| match s {
                    Segment::Map { key } => Some(Step::Key(key.clone())),
                    Segment::Seq { index } => Some(Step::Index(*index)),
                    Segment::Enum { .. } | Segment::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => f.write_str(k)?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A mistake found while reading: where (a key path, or nowhere in particular) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mistake {
    pub key: Option<KeyPath>,
    /// For a key in an ORD's section: the ORD's name, to say which one.
    pub ord: Option<String>,
    pub message: String,
    /// A key no section takes (its place is the key's, not a value's).
    pub unknown: bool,
}

/// The mistakes of one configuration, in the order found.
#[derive(Debug, Default)]
pub(super) struct Mistakes {
    pub list: Vec<Mistake>,
    /// Key paths already reported: a value refused once is not reported again as missing.
    reported: BTreeSet<String>,
    /// The ORD whose section is being read, named in its mistakes.
    pub ord: Option<String>,
}

impl Mistakes {
    /// A mistake in the value at `key`.
    pub fn at(&mut self, key: KeyPath, message: impl Into<String>) {
        self.reported.insert(key.to_string());
        self.list.push(Mistake {
            key: Some(key),
            ord: self.ord.clone(),
            message: message.into(),
            unknown: false,
        });
    }

    /// A key no section takes (a misspelling, or a key of another section).
    pub fn unknown(&mut self, key: KeyPath) {
        self.list.push(Mistake {
            key: Some(key),
            ord: self.ord.clone(),
            message: String::new(),
            unknown: true,
        });
    }

    /// A mistake of the whole file.
    pub fn general(&mut self, message: impl Into<String>) {
        self.list.push(Mistake {
            key: None,
            ord: None,
            message: message.into(),
            unknown: false,
        });
    }

    /// Whether a mistake was already reported at `key`.
    pub fn reported(&self, key: &KeyPath) -> bool {
        self.reported.contains(&key.to_string())
    }

    /// `value` when set, else a mistake: `key` is required (unless its value was refused
    /// already); `what` follows "is required" (": what it is", or " for …").
    pub fn required<T>(&mut self, key: KeyPath, value: Option<T>, what: &str) -> Option<T> {
        if value.is_none() && !self.reported(&key) {
            self.at(key, format!("is required{what}"));
        }
        value
    }
}

/// Reads `value` as a `T`. Each value serde refuses is a mistake at `at` + its path; it is then
/// dropped and the section read again, so every wrong value of a section is reported in one run
/// (the dropped keys read as absent). Keys `T` does not take are returned (relative paths).
pub(super) fn read_section<T: DeserializeOwned>(
    mut value: toml::Value,
    at: &KeyPath,
    mistakes: &mut Mistakes,
) -> (Option<T>, Vec<KeyPath>) {
    let mut ignored: Vec<KeyPath> = Vec::new();
    // What `ignored` holds, to keep it free of repeats in linear time.
    let mut seen: HashSet<String> = HashSet::new();
    // Each round drops one key, so a section of n keys takes at most n + 1 rounds.
    for _ in 0..=64 {
        let mut found: Vec<String> = Vec::new();
        let mut note = |p: serde_ignored::Path<'_>| found.push(p.to_string());
        let de = serde_ignored::Deserializer::new(value.clone(), &mut note);
        let read: Result<T, _> = serde_path_to_error::deserialize(de);
        for p in found {
            if seen.insert(p.clone()) {
                ignored.push(KeyPath(
                    p.split('.').map(|k| Step::Key(k.to_string())).collect(),
                ));
            }
        }
        match read {
            Ok(t) => return (Some(t), ignored),
            Err(e) => {
                let path = KeyPath::of(e.path());
                let message: &toml::de::Error = e.inner();
                mistakes.at(at.join(&path), message.message().trim().to_string());
                if path.0.is_empty() || !remove(&mut value, &path.0) {
                    return (None, ignored);
                }
            }
        }
    }
    (None, ignored)
}

/// Removes the value at `path` from `value`; whether it was there.
fn remove(value: &mut toml::Value, path: &[Step]) -> bool {
    match path {
        [] => false,
        [Step::Key(k)] => value.as_table_mut().is_some_and(|t| t.remove(k).is_some()),
        [Step::Index(i)] => match value.as_array_mut() {
            Some(a) if *i < a.len() => {
                a.remove(*i);
                true
            }
            _ => false,
        },
        [Step::Key(k), rest @ ..] => value
            .as_table_mut()
            .and_then(|t| t.get_mut(k))
            .is_some_and(|v| remove(v, rest)),
        [Step::Index(i), rest @ ..] => value
            .as_array_mut()
            .and_then(|a| a.get_mut(*i))
            .is_some_and(|v| remove(v, rest)),
    }
}

/// The document's places, to say on which line and column a key path is.
pub(super) struct Places<'t> {
    text: &'t str,
    doc: Option<toml_edit::ImDocument<&'t str>>,
    /// The offset where each line starts (a place is found by a binary search, so reporting
    /// n mistakes stays linear in the file's size).
    line_starts: Vec<usize>,
}

impl<'t> Places<'t> {
    pub fn new(text: &'t str) -> Places<'t> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Places {
            text,
            doc: toml_edit::ImDocument::parse(text).ok(),
            line_starts,
        }
    }

    /// The line and column (1-based) of the value at `path`, or of its key, or of the nearest
    /// section around it that is in the file.
    pub fn of(&self, path: &KeyPath) -> Option<(usize, usize)> {
        let doc = self.doc.as_ref()?;
        let mut span = None;
        let mut node = Node::Table(doc.as_table());
        for step in &path.0 {
            let (next, here) = match (node, step) {
                (Node::Table(t), Step::Key(k)) => match t.get_key_value(k) {
                    Some((key, item)) => (Node::Item(item), item.span().or(key.span())),
                    None => break,
                },
                (Node::Item(item), Step::Key(k)) => match item.as_table_like() {
                    Some(t) => match t.get_key_value(k) {
                        Some((key, item)) => (Node::Item(item), item.span().or(key.span())),
                        None => break,
                    },
                    None => break,
                },
                (Node::Item(item), Step::Index(i)) => {
                    if let Some(tables) = item.as_array_of_tables() {
                        match tables.get(*i) {
                            Some(t) => (Node::Table(t), t.span()),
                            None => break,
                        }
                    } else if let Some(v) = item.as_array().and_then(|a| a.get(*i)) {
                        (Node::Leaf, v.span())
                    } else {
                        break;
                    }
                }
                _ => break,
            };
            span = here.or(span);
            node = next;
        }
        span.map(|s| self.line_column(s.start))
    }

    /// The line and column of the key `path` ends with (for a key that should not be there).
    pub fn of_key(&self, path: &KeyPath) -> Option<(usize, usize)> {
        let Some((Step::Key(last), parent)) = path.0.split_last() else {
            return self.of(path);
        };
        let span = self
            .table_at(parent)
            .and_then(|t| t.get_key_value(last))
            .and_then(|(k, _)| k.span());
        match span {
            Some(s) => Some(self.line_column(s.start)),
            None => self.of(path),
        }
    }

    /// The table (or inline table, or table of an array of tables) at `path`.
    fn table_at(&self, path: &[Step]) -> Option<&dyn toml_edit::TableLike> {
        let doc = self.doc.as_ref()?;
        let mut table: Option<&dyn toml_edit::TableLike> = Some(doc.as_table());
        let mut item: Option<&toml_edit::Item> = None;
        for step in path {
            match step {
                Step::Key(k) => {
                    let next = table?.get(k)?;
                    item = Some(next);
                    table = next.as_table_like();
                }
                Step::Index(i) => {
                    table = Some(item?.as_array_of_tables()?.get(*i)?);
                    item = None;
                }
            }
        }
        table
    }

    fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        (line, offset - start + 1)
    }
}

/// Where the walk down a key path is.
#[derive(Clone, Copy)]
enum Node<'d> {
    Table(&'d toml_edit::Table),
    Item(&'d toml_edit::Item),
    /// A value inside an array: nothing below it has a place of its own.
    Leaf,
}

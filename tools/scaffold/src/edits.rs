//! A set of file edits made in memory and written together, so that a generator that fails
//! half-way (a missing anchor, a clash) writes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Pending writes under one root, each path relative to it.
#[derive(Debug)]
pub struct Edits {
    root: PathBuf,
    files: BTreeMap<PathBuf, String>,
}

impl Edits {
    /// No edits yet, under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            files: BTreeMap::new(),
        }
    }

    /// The root the paths are relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `path` exists on disk or among the pending writes.
    pub fn exists(&self, path: &str) -> bool {
        self.files.contains_key(Path::new(path)) || self.root.join(path).exists()
    }

    /// The text of `path`: the pending edit if there is one, else the file on disk.
    pub fn read(&self, path: &str) -> anyhow::Result<String> {
        if let Some(text) = self.files.get(Path::new(path)) {
            return Ok(text.clone());
        }
        std::fs::read_to_string(self.root.join(path)).with_context(|| format!("reading {path}"))
    }

    /// Replaces (or creates) `path` with `text`.
    pub fn write(&mut self, path: &str, text: String) {
        self.files.insert(PathBuf::from(path), text);
    }

    /// Rewrites `path` with `change`, whose error is reported with the file's name.
    pub fn edit(
        &mut self,
        path: &str,
        change: impl FnOnce(&str) -> anyhow::Result<String>,
    ) -> anyhow::Result<()> {
        let text = self.read(path)?;
        let changed = change(&text).with_context(|| format!("editing {path}"))?;
        self.write(path, changed);
        Ok(())
    }

    /// The paths that would be written, in order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.keys().map(PathBuf::as_path)
    }

    /// The pending text of `path`, if it is being written.
    pub fn pending(&self, path: &str) -> Option<&str> {
        self.files.get(Path::new(path)).map(String::as_str)
    }

    /// Writes every edit; returns the paths written.
    pub fn apply(self) -> anyhow::Result<Vec<PathBuf>> {
        let mut written = Vec::with_capacity(self.files.len());
        for (path, text) in self.files {
            let full = self.root.join(&path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&full, text).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// `text` with `insertion` placed right after the first occurrence of `anchor`.
pub fn insert_after(text: &str, anchor: &str, insertion: &str) -> anyhow::Result<String> {
    let at = text
        .find(anchor)
        .with_context(|| format!("`{}` is not there to insert after", anchor.trim_end()))?
        + anchor.len();
    Ok(format!("{}{insertion}{}", &text[..at], &text[at..]))
}

/// `text` with `insertion` placed right before the first occurrence of `anchor`.
pub fn insert_before(text: &str, anchor: &str, insertion: &str) -> anyhow::Result<String> {
    let at = text
        .find(anchor)
        .with_context(|| format!("`{}` is not there to insert before", anchor.trim_end()))?;
    Ok(format!("{}{insertion}{}", &text[..at], &text[at..]))
}

/// `text` with `line` added at its end (and a newline before it if the text lacks one).
pub fn append(text: &str, line: &str) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertions_name_a_missing_anchor() {
        assert_eq!(insert_after("a\nb\n", "a\n", "x\n").unwrap(), "a\nx\nb\n");
        assert_eq!(insert_before("a\nb\n", "b\n", "x\n").unwrap(), "a\nx\nb\n");
        let error = insert_after("a\n", "members = [\n", "x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`members = [` is not there to insert after"
        );
    }

    #[test]
    fn nothing_is_written_until_apply() {
        let root = std::env::temp_dir().join(format!("scaffold-edits-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.txt"), "one\n").unwrap();
        let mut edits = Edits::new(&root);
        edits
            .edit("a.txt", |text| Ok(append(text, "two\n")))
            .unwrap();
        edits.write("new/b.txt", "b\n".to_owned());
        assert_eq!(
            std::fs::read_to_string(root.join("a.txt")).unwrap(),
            "one\n"
        );
        assert!(!root.join("new/b.txt").exists());
        assert_eq!(edits.read("a.txt").unwrap(), "one\ntwo\n");
        edits.apply().unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("a.txt")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("new/b.txt")).unwrap(),
            "b\n"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}

//! Every link in every Markdown file of the repository resolves, offline: a relative link names
//! a file or directory that exists, and a `#fragment` names a heading (or an explicit
//! `<a id>`) of the document it points into. Links to other sites are not fetched.
//!
//! Files under `target/`, `.local/`, `.git/` and `node_modules/` are not documentation and
//! are skipped. So are the service template's files (a path or link holding a
//! `{{ placeholder }}`): their links resolve once rendered, and the generated project's own
//! run of this test checks them there.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const SKIPPED_DIRS: [&str; 4] = ["target", ".local", ".git", "node_modules"];

#[test]
fn every_link_in_the_documentation_resolves() {
    let root = root();
    let documents = markdown_files(&root);
    assert!(
        documents.iter().any(|path| path.ends_with("README.md")),
        "no README.md found under {}",
        root.display()
    );
    let mut anchors = Anchors::default();
    let mut broken = Vec::new();
    let mut checked = 0;
    for document in &documents {
        let text = std::fs::read_to_string(document).unwrap();
        for link in links(&text) {
            checked += 1;
            if let Err(why) = resolve(&root, document, &link.target, &mut anchors) {
                let shown = document.strip_prefix(&root).unwrap_or(document);
                broken.push(format!(
                    "{}:{}: `{}`: {why}",
                    shown.display(),
                    link.line,
                    link.target
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {checked} links in {} Markdown files do not resolve:\n{}",
        broken.len(),
        documents.len(),
        broken.join("\n")
    );
}

/// Every `.md` file under `dir`, skipping build output and local data.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type().unwrap().is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_ref()) {
                    pending.push(path);
                }
            } else if name.ends_with(".md") && !path.to_string_lossy().contains("{{") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A link found in a document, and its line (1-based).
#[derive(Debug, PartialEq)]
struct Link {
    target: String,
    line: usize,
}

/// The link targets of a Markdown text: inline links and images `[text](target)`, reference
/// definitions `[label]: target` and HTML `href`/`src` attributes, outside code blocks and
/// code spans.
fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    for (line_number, line) in prose_lines(text) {
        let prose = without_code_spans(line);
        let mut push = |target: &str| {
            let target = target.trim();
            // `[text](<target with spaces>)` and `[text](target "title")`.
            let target = target
                .strip_prefix('<')
                .and_then(|t| t.strip_suffix('>'))
                .unwrap_or_else(|| target.split_whitespace().next().unwrap_or(""));
            if !target.is_empty() {
                found.push(Link {
                    target: target.to_owned(),
                    line: line_number,
                });
            }
        };
        // Reference definitions: `[label]: target`.
        if let Some(rest) = prose.trim_start().strip_prefix('[')
            && let Some((label, target)) = rest.split_once("]:")
            && !label.is_empty()
            && !label.contains(']')
        {
            push(target);
            continue;
        }
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            match closing_paren(after) {
                Some(end) => {
                    push(&after[..end]);
                    rest = &after[end..];
                }
                None => break,
            }
        }
        for attribute in ["href=\"", "src=\""] {
            let mut rest = prose.as_str();
            while let Some(at) = rest.find(attribute) {
                let after = &rest[at + attribute.len()..];
                let Some(end) = after.find('"') else { break };
                push(&after[..end]);
                rest = &after[end..];
            }
        }
    }
    found
}

/// The lines of a Markdown text outside fenced code blocks (```` ``` ```` or `~~~`), with
/// their numbers (1-based).
fn prose_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fence: Option<&'static str> = None;
    text.lines().enumerate().filter_map(move |(index, line)| {
        let trimmed = line.trim_start();
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
            return None;
        }
        if let Some(marker) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
            fence = Some(marker);
            return None;
        }
        Some((index + 1, line))
    })
}

/// Where the link target starting `text` ends: at the `)` that balances, so a target may
/// hold parentheses of its own.
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (at, character) in text.char_indices() {
        match character {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(at),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `line` with its code spans (`` `like this` ``) blanked out.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let delimiter = &rest[start..start + ticks];
        out.push_str(&rest[..start]);
        match rest[start + ticks..].find(delimiter) {
            Some(end) => rest = &rest[start + ticks + end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The anchors of each document, read once.
#[derive(Default)]
struct Anchors(BTreeMap<PathBuf, HashSet<String>>);

impl Anchors {
    fn of(&mut self, document: &Path) -> &HashSet<String> {
        self.0
            .entry(document.to_path_buf())
            .or_insert_with(|| anchors(&std::fs::read_to_string(document).unwrap_or_default()))
    }
}

/// Whether `target`, linked from `document`, resolves.
fn resolve(
    root: &Path,
    document: &Path,
    target: &str,
    anchors: &mut Anchors,
) -> Result<(), String> {
    if target.contains("{{") || is_external(target) {
        return Ok(());
    }
    let (path, fragment) = match target.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (target, None),
    };
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let resolved = if path.is_empty() {
        document.to_path_buf()
    } else if let Some(from_root) = path.strip_prefix('/') {
        root.join(from_root)
    } else {
        document.parent().unwrap().join(path)
    };
    let resolved = normalise(&resolved);
    if !resolved.starts_with(normalise(root)) {
        return Err("points outside the repository".to_owned());
    }
    if !resolved.exists() {
        return Err("no such file or directory".to_owned());
    }
    let Some(fragment) = fragment else {
        return Ok(());
    };
    if resolved
        .extension()
        .is_none_or(|extension| extension != "md")
    {
        // A line anchor into a source file (`#L10`) is GitHub's; anything else is not.
        return if fragment.starts_with('L')
            && fragment[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            Ok(())
        } else {
            Err("a fragment into a file that is not Markdown".to_owned())
        };
    }
    if anchors.of(&resolved).contains(fragment) {
        Ok(())
    } else {
        Err(format!("no heading `#{fragment}` in that document"))
    }
}

fn is_external(target: &str) -> bool {
    target.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// `path` with `.` and `..` resolved lexically.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The anchors a document offers: GitHub's slug of each heading (duplicates numbered `-1`,
/// `-2`, ...) and every explicit `id="..."` or `name="..."`.
fn anchors(text: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let slug = slug(line[hashes..].trim().trim_end_matches('#').trim());
            let count = seen.entry(slug.clone()).or_insert(0);
            found.insert(if *count == 0 {
                slug.clone()
            } else {
                format!("{slug}-{count}")
            });
            *count += 1;
        }
        for attribute in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(attribute) {
                let after = &rest[at + attribute.len()..];
                let Some(end) = after.find('"') else { break };
                found.insert(after[..end].to_owned());
                rest = &after[end..];
            }
        }
    }
    found
}

/// GitHub's anchor for a heading: the rendered text (links reduced to their text, code and
/// emphasis markers dropped), lower-cased, punctuation other than `-` and `_` removed, spaces
/// turned into `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](target)` renders as `text`.
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|at| at + open) else {
            break;
        };
        let Some(end) = closing_paren(&rest[close + 2..]).map(|at| at + close + 2) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn slugs_follow_githubs_rules() {
    assert_eq!(slug("Quick start"), "quick-start");
    assert_eq!(slug("The `order` service"), "the-order-service");
    assert_eq!(
        slug("0001. NATS JetStream over Kafka"),
        "0001-nats-jetstream-over-kafka"
    );
    assert_eq!(
        slug("Observability: docker-compose.observability.yml"),
        "observability-docker-composeobservabilityyml"
    );
    assert_eq!(
        slug("See [the kit](libs/kit/README.md) first"),
        "see-the-kit-first"
    );
    assert_eq!(slug("Dead letters & retries"), "dead-letters--retries");
    assert_eq!(slug("user_service (8081)"), "user_service-8081");
}

#[test]
fn duplicate_headings_are_numbered_and_ids_count() {
    let found = anchors(
        "# Tests\n## Run\n```sh\n# not a heading\n```\n## Run\n<a id=\"custom\"></a>\n#nospace\n",
    );
    let mut found: Vec<_> = found.into_iter().collect();
    found.sort();
    assert_eq!(found, ["custom", "run", "run-1", "tests"]);
}

#[test]
fn links_are_found_outside_code_only() {
    let text = "See [a](a.md#x) and ![b](img/b.png \"title\").\n\
                `[not](code.md)` but [c](<c d.md>)\n\
                ```md\n[fenced](no.md)\n```\n\
                [ref]: docs/ref.md\n\
                <img src=\"shot.png\"> <a href=\"#top\">top</a> [paren](f(1).md)\n";
    let targets: Vec<(String, usize)> = links(text)
        .into_iter()
        .map(|link| (link.target, link.line))
        .collect();
    let expected = [
        ("a.md#x", 1),
        ("img/b.png", 1),
        ("c d.md", 2),
        ("docs/ref.md", 6),
        ("f(1).md", 7),
        ("#top", 7),
        ("shot.png", 7),
    ];
    let expected: Vec<(String, usize)> = expected
        .into_iter()
        .map(|(target, line)| (target.to_owned(), line))
        .collect();
    assert_eq!(targets, expected);
}

#[test]
fn a_broken_link_or_anchor_is_named() {
    let dir = std::env::temp_dir().join(format!("links-check-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(dir.join("README.md"), "# Title\n## Quick start\n").unwrap();
    std::fs::write(dir.join("docs/a.md"), "# A\n").unwrap();
    let document = dir.join("docs/a.md");
    let mut anchors = Anchors::default();
    let mut check = |target: &str| resolve(&dir, &document, target, &mut anchors);
    assert_eq!(check("../README.md#quick-start"), Ok(()));
    assert_eq!(check("#a"), Ok(()));
    assert_eq!(check("https://example.com/nowhere"), Ok(()));
    assert_eq!(check("../README.md"), Ok(()));
    assert_eq!(check("/docs/a.md"), Ok(()));
    assert_eq!(
        check("../README.md#quickstart"),
        Err("no heading `#quickstart` in that document".to_owned())
    );
    assert_eq!(check("b.md"), Err("no such file or directory".to_owned()));
    assert_eq!(
        check("../../outside.md"),
        Err("points outside the repository".to_owned())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

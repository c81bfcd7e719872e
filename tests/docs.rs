//! The README and the pages in `docs/` hold together: every relative link names a file that
//! exists, and every `#anchor` a heading of the page it points to (as GitHub makes anchors of
//! headings), so a reader who follows one lands where it says.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn project() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The README and every Markdown page in `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![project().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(project().join("docs"))
        .expect("a docs/ folder")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// A page's text outside fenced code blocks, where `[a](b)` is code, not a link.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// The targets of a page's Markdown links, `[text](target)` and `![alt](target)`, without
/// inline code spans.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text).lines() {
        // Drop `code spans`, which may hold brackets that are not links.
        let line: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect();
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, and every character but
/// letters, digits, hyphens and underscores dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings, numbered as GitHub numbers repeats (`-1`, `-2`).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(text).lines() {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = anchor(heading.trim_start_matches('#'));
        let mut candidate = base.clone();
        let mut n = 0;
        while seen.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        seen.insert(candidate);
    }
    seen
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = match target.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let name = page.strip_prefix(project()).unwrap().display().to_string();
            if !resolved.exists() {
                broken.push(format!("{name}: ({target}): no such file"));
                continue;
            }
            if let Some(fragment) = fragment {
                let headings = fs::read_to_string(&resolved).map(|t| anchors(&t));
                if !headings.is_ok_and(|h| h.contains(fragment)) {
                    broken.push(format!("{name}: ({target}): no such heading"));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links read: is the reader broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_reader_reads_what_github_renders() {
    assert_eq!(
        anchor(" Image folders: `\"dataset\": \"folder\"`"),
        "image-folders-dataset-folder"
    );
    assert_eq!(anchor("99% in seconds"), "99-in-seconds");
    let text =
        "# A\n## A\n```\n# not a heading [x](nowhere.md)\n```\nsee [b](b.md#a-1) and `[c](d)`\n";
    assert_eq!(links(text), ["b.md#a-1"]);
    assert_eq!(
        anchors(text),
        BTreeSet::from(["a".to_string(), "a-1".to_string()])
    );
}

/// The commands `lenet --help` lists, and the long flags `lenet <command> --help` lists.
fn commands_and_flags() -> Vec<(String, Vec<String>)> {
    let help = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_lenet"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success(), "lenet {args:?} --help");
        String::from_utf8(output.stdout).unwrap()
    };
    // A flag is defined where a line of the help starts with it: `  -c, --config <FILE>`.
    let flags = |text: &str| -> Vec<String> {
        let mut flags: Vec<String> = text
            .lines()
            .filter_map(|line| {
                let line = line.trim_start();
                let line = match line.strip_prefix('-')? {
                    long if long.starts_with('-') => line,
                    short => short.split_once(", ")?.1,
                };
                let flag = line.split([' ', '=', '[', '<']).next()?;
                (flag.starts_with("--") && flag != "--help").then(|| flag.to_string())
            })
            .collect();
        flags.dedup();
        flags
    };
    // The commands a help text lists under "Commands:", without `help`.
    let commands = |text: &str| -> Vec<String> {
        let Some(listed) = text
            .split("Commands:")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
        else {
            return Vec::new();
        };
        listed
            .lines()
            // Command names start two spaces in; their wrapped descriptions further.
            .filter(|line| !line.starts_with("   "))
            .filter_map(|line| line.strip_prefix("  ")?.split_whitespace().next())
            .filter(|name| *name != "help")
            .map(str::to_string)
            .collect()
    };
    let top = help(&[]);
    assert!(
        !commands(&top).is_empty(),
        "lenet --help lists its commands"
    );
    let mut found = vec![(String::new(), flags(&top))];
    for name in commands(&top) {
        let text = help(&[&name]);
        // A command's own commands (`lenet sweep report`) too.
        for sub in commands(&text) {
            found.push((format!("{name} {sub}"), flags(&help(&[&name, &sub]))));
        }
        found.push((name, flags(&text)));
    }
    found
}

/// The command line's pages ([Command line](docs/cli.md), [Runs in the browser]
/// (docs/serve.md) for `serve`, [Sweeps](docs/sweeps.md) for `sweep`) name every command and
/// every flag the binary has, so that a new flag without a word in the docs fails here.
#[test]
fn every_command_and_flag_is_in_the_docs() {
    let text: String = ["docs/cli.md", "docs/serve.md", "docs/sweeps.md"]
        .iter()
        .map(|page| fs::read_to_string(project().join(page)).unwrap())
        .collect();
    let mentions = |needle: &str| {
        text.match_indices(needle).any(|(at, _)| {
            !text[at + needle.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
    };
    let commands = commands_and_flags();
    assert!(
        commands.len() > 10,
        "{commands:?}: is the help reader broken?"
    );
    let mut missing = Vec::new();
    for (command, flags) in &commands {
        let invocation = format!("lenet {command}");
        if !command.is_empty() && !mentions(&invocation) {
            missing.push(format!("`{invocation}`"));
        }
        for flag in flags {
            if !mentions(flag) {
                missing.push(format!("{invocation} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/cli.md, docs/serve.md or docs/sweeps.md:\n{}",
        missing.join("\n")
    );
}

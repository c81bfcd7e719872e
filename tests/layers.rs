//! The library's layers, as `docs/design.md` draws them, held against the code: no module
//! imports from a layer above its own, and no two files import each other, directly or round
//! a circle. It reads `use` declarations and `crate::`/`super::` paths as text, the way a
//! reader would, so it needs nothing but the sources.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The library's top-level modules from the bottom up: each may use only those before it.
/// Modules on one line share a layer and use nothing of each other.
const LAYERS: [&[&str]; 12] = [
    &["input", "device"],
    &["kernels"],
    &["data"],
    &["model"],
    &["config"],
    &["run"],
    &["report", "tracking"],
    &["inference"],
    &["training"],
    &["sweep"],
    &["serve"],
    &["bench"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer of tests/layers.rs"))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file of the library (the command line's `src/main.rs` and `src/cli/` are its
/// own binary, on top of everything).
fn library_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files.retain(|f| {
        let relative = f.strip_prefix(src()).unwrap();
        !relative.starts_with("cli") && relative != Path::new("main.rs")
    });
    files.sort();
    files
}

/// The module path of a file: `src/data/split.rs` is `["data", "split"]`, a `mod.rs` is its
/// folder's module, `lib.rs` the crate.
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without its comments and string literals' contents, line by line, and
/// without its unit tests (which may reach anywhere to test).
fn code_of(file: &Path) -> String {
    let text = fs::read_to_string(file).unwrap();
    // The unit tests: `mod tests {` under a `#[cfg(...test...)]` line.
    let tests = text.match_indices("\nmod tests {").find(|(at, _)| {
        let before = &text[..*at];
        let attribute = &before[before.rfind('\n').map_or(0, |n| n + 1)..];
        attribute.starts_with("#[cfg(") && attribute.contains("test")
    });
    let text = match tests {
        Some((at, _)) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths a file names: each `crate::a::b`, `super::a` and `self::a` path, and each
/// path through a child module (`use child::Item`, `pub use child::Item`: a re-export is an
/// import too; `child::f()` in code), with `use` lists (`use crate::a::{b, c::d}`) expanded.
fn paths_named(
    code: &str,
    module: &[String],
    modules: &BTreeMap<Vec<String>, PathBuf>,
) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let tokens = tokenize(code);
    let token = |at: usize| tokens.get(at).map(String::as_str);
    let mut i = 0;
    while i < tokens.len() {
        let after_path = i > 0 && token(i - 1) == Some("::");
        let followed = token(i + 1) == Some("::");
        let start = match tokens[i].as_str() {
            "crate" if followed && !after_path => Some((Vec::new(), i + 2)),
            // A module's parent, whether its file is `x.rs` or `x/mod.rs`.
            "super" if followed && !after_path => module
                .split_last()
                .map(|(_, parent)| (parent.to_vec(), i + 2)),
            "self" if followed && !after_path => Some((module.to_vec(), i + 2)),
            // `use child::...` or `child::f()`: a path that starts here, from a child's name.
            child if followed && !after_path => {
                let mut path = module.to_vec();
                path.push(child.to_string());
                modules.contains_key(&path).then(|| (module.to_vec(), i))
            }
            _ => None,
        };
        match start {
            Some((base, from)) => i = expand(&tokens, from, base, &mut found),
            None => i += 1,
        }
    }
    found
}

/// Reads a path (and `{...}` lists) from `tokens[at..]` onto `base`; returns where it ended.
fn expand(
    tokens: &[String],
    mut at: usize,
    mut base: Vec<String>,
    found: &mut BTreeSet<Vec<String>>,
) -> usize {
    loop {
        match tokens.get(at).map(String::as_str) {
            Some("{") => {
                at += 1;
                loop {
                    at = expand(tokens, at, base.clone(), found);
                    match tokens.get(at).map(String::as_str) {
                        Some(",") => at += 1,
                        Some("}") => return at + 1,
                        _ => return at,
                    }
                    if tokens.get(at).map(String::as_str) == Some("}") {
                        return at + 1;
                    }
                }
            }
            Some("self") => {
                found.insert(base);
                return at + 1;
            }
            Some("super") => {
                base.pop();
                at += 1;
                if tokens.get(at).map(String::as_str) == Some("::") {
                    at += 1;
                }
            }
            Some(name) if is_identifier(name) => {
                base.push(name.to_string());
                at += 1;
                if tokens.get(at).map(String::as_str) == Some("::") {
                    at += 1;
                } else {
                    found.insert(base);
                    return at;
                }
            }
            _ => {
                found.insert(base);
                return at;
            }
        }
    }
}

fn is_identifier(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && token.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers, `::` and single punctuation, with string literals dropped.
fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_string());
            i += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    tokens
}

/// The file a module path lands in: the longest prefix of it that is a module of its own
/// file (the rest names items inside that file).
fn file_of(path: &[String], files: &BTreeMap<Vec<String>, PathBuf>) -> Option<PathBuf> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.get(&path[..n]).cloned())
}

/// Each library file and the other library files it imports from.
fn imports() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let files = library_files();
    let modules: BTreeMap<Vec<String>, PathBuf> =
        files.iter().map(|f| (module_of(f), f.clone())).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let named = paths_named(&code_of(file), &module_of(file), &modules);
        let targets = named
            .iter()
            .filter_map(|path| file_of(path, &modules))
            .filter(|target| target != file)
            .collect();
        graph.insert(file.clone(), targets);
    }
    graph
}

fn short(file: &Path) -> String {
    file.strip_prefix(src()).unwrap().display().to_string()
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let mut wrong = Vec::new();
    for (file, targets) in imports() {
        let Some(own) = module_of(&file).first().cloned() else {
            continue;
        };
        for target in targets {
            let Some(theirs) = module_of(&target).first().cloned() else {
                continue;
            };
            if theirs != own && layer_of(&theirs) >= layer_of(&own) {
                wrong.push(format!("{} imports {}", short(&file), short(&target)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_files_import_each_other_round_a_circle() {
    let graph = imports();
    // A depth-first walk that reports the first circle it closes.
    fn visit(
        file: &Path,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        path: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == file) {
            let circle: Vec<String> = path[at..].iter().map(|p| short(p)).collect();
            circles.push(format!("{} -> {}", circle.join(" -> "), short(file)));
            return;
        }
        if !done.insert(file.to_path_buf()) {
            return;
        }
        path.push(file.to_path_buf());
        for next in graph.get(file).into_iter().flatten() {
            // A folder's mod.rs names its files to declare them; a file naming an item its
            // folder's mod.rs defines is an import like any other.
            visit(next, graph, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for file in graph.keys() {
        visit(file, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "files that import each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_reader_sees_the_imports_it_must() {
    // The parsing above, checked on this crate's own forms, so that an empty graph cannot pass.
    let graph = imports();
    let of = |file: &str| graph.get(&src().join(file)).cloned().unwrap_or_default();
    assert!(of("data/split.rs").contains(&src().join("data/error.rs")));
    assert!(of("data/split.rs").contains(&src().join("data/mod.rs")));
    assert!(of("training/launch.rs").contains(&src().join("inference/mod.rs")));
    assert!(of("training/launch.rs").contains(&src().join("training/burn_glue.rs")));
    assert!(of("serve/api.rs").contains(&src().join("inference/eval.rs")));
    let layers: usize = LAYERS.iter().map(|l| l.len()).sum();
    let top: BTreeSet<String> = library_files()
        .iter()
        .filter_map(|f| module_of(f).first().cloned())
        .collect();
    assert_eq!(
        top.len(),
        layers,
        "every top-level module has a layer: {top:?}"
    );
}

//! The crate's modules import one way: inside every folder, its own `mod.rs` and its children (each child
//! standing for everything below it) form an acyclic graph of `use` declarations and `crate::`/`super::`
//! paths. So a parent that hands out its children's parts is never imported back by them, and no two
//! siblings import each other, at any depth. Test code (`#[cfg(test)]` items) is left out: tests may reach
//! anywhere.
//!
//! Read from the sources with a small scanner rather than a compiler plugin: `use` trees, and paths
//! written inline in code, resolved against the module tree the files form. The binary's `main.rs` is a
//! crate of its own and is not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// An import of `to` by `from`, with the text it was read from.
#[derive(Debug, Clone)]
struct Import {
    from: Module,
    to: Module,
    text: String,
}

fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments, string and character literals, and `#[cfg(test)]` items.
fn code_of(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |end| end + 2);
        } else if let Some(len) = raw_string_len(rest) {
            out.push_str("\"\"");
            i += len;
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() && rest.as_bytes()[j] != b'"' {
                j += if rest.as_bytes()[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i += (j + 1).min(rest.len());
        } else if let Some(len) = char_literal_len(rest) {
            out.push_str("' '");
            i += len;
        } else if rest.starts_with("#[cfg(test)]") {
            i += "#[cfg(test)]".len();
            i += item_len(&text[i..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"..."` or `r#"..."#` at the start of `rest`: its length.
fn raw_string_len(rest: &str) -> Option<usize> {
    let after_r = rest.strip_prefix('r').or_else(|| rest.strip_prefix("br"))?;
    let hashes = after_r.len() - after_r.trim_start_matches('#').len();
    let body = after_r[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    let end = body.find(&close)?;
    Some(rest.len() - body.len() + end + close.len())
}

/// `'x'` or `'\n'` at the start of `rest` (not a lifetime): its length.
fn char_literal_len(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix('\'')?;
    let mut chars = body.char_indices();
    let (_, first) = chars.next()?;
    let after = if first == '\\' { body[1..].find('\'')? + 1 } else { first.len_utf8() };
    (body[after..].starts_with('\'')).then_some(after + 2)
}

/// The length of the item at the start of `rest`: through its `;` or its balanced `{...}`, whichever ends it.
fn item_len(rest: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            ';' if depth == 0 => return i + 1,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    rest.len()
}

/// The paths a `use` tree names: `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split_whitespace().next().unwrap_or_default();
        return vec![path.to_string()];
    };
    let prefix: String = tree[..open].split_whitespace().collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(p).into_iter().map(|e| format!("{prefix}{e}")).collect::<Vec<_>>())
        .collect()
}

/// `crate::`, `super::` and `self::` paths in `code`, and paths starting with one of `children` (the
/// module's own submodules, named bare): those of `use` declarations, then those written inline.
fn paths_in(code: &str, children: &[String]) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest_of_code = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        rest_of_code.push_str(&rest[..at]);
        let statement = &rest[at + 3..];
        let end = statement.find(';').unwrap_or(statement.len());
        paths.extend(expand(statement[..end].trim()).into_iter().map(|p| p.trim_end_matches("::self").to_string()));
        rest = &statement[(end + 1).min(statement.len())..];
    }
    rest_of_code.push_str(rest);
    let bytes = rest_of_code.as_bytes();
    let roots: Vec<String> =
        ["crate", "super", "self"].iter().map(|r| r.to_string()).chain(children.iter().cloned()).map(|r| format!("{r}::")).collect();
    for root in &roots {
        let mut from = 0;
        while let Some(found) = rest_of_code[from..].find(root) {
            let at = from + found;
            from = at + root.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':' || bytes[at - 1] == b'$') {
                continue;
            }
            let len = rest_of_code[at..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest_of_code.len() - at);
            paths.push(rest_of_code[at..at + len].trim_end_matches(':').to_string());
        }
    }
    paths
}

/// Where `word` starts as a whole word in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let after = bytes.get(at + word.len()).is_some_and(|b| b.is_ascii_whitespace());
        if before && after {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// The module a path from `module` lands in: the longest known module its segments name.
fn resolve(module: &Module, path: &str, modules: &BTreeSet<Module>) -> Option<Module> {
    let mut segments = path.split("::").filter(|s| !s.is_empty());
    let first = segments.next()?;
    let mut rest: Vec<&str> = segments.collect();
    let mut at: Module = match first {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => module[..module.len().checked_sub(1)?].to_vec(),
        child if modules.contains(&[module.as_slice(), &[child.to_string()]].concat()) => {
            rest.insert(0, child);
            module.clone()
        }
        _ => return None,
    };
    while rest.first() == Some(&"super") {
        at.pop();
        rest.remove(0);
    }
    let mut best = at.clone();
    for segment in rest {
        at.push(segment.to_string());
        if modules.contains(&at) {
            best = at.clone();
        } else {
            break;
        }
    }
    Some(best)
}

fn imports(src: &Path) -> (BTreeSet<Module>, Vec<Import>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.retain(|f| f != &src.join("main.rs"));
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    let mut found = Vec::new();
    for file in &files {
        let module = module_of(src, file);
        let children: Vec<String> =
            modules.iter().filter(|m| m.len() == module.len() + 1 && m.starts_with(&module)).map(|m| m[module.len()].clone()).collect();
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for path in paths_in(&code, &children) {
            if let Some(to) = resolve(&module, &path, &modules) {
                if to != module {
                    found.push(Import { from: module.clone(), to, text: path });
                }
            }
        }
    }
    (modules, found)
}

/// Cycles among the parts of `parent` (itself and each child with what lies below it).
fn cycles_within(parent: &Module, imports: &[Import]) -> Vec<Vec<String>> {
    let part = |m: &Module| -> Option<String> {
        if !m.starts_with(parent) {
            return None;
        }
        Some(m.get(parent.len()).cloned().unwrap_or_else(|| "(mod.rs)".to_string()))
    };
    let mut edges: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for import in imports {
        if let (Some(a), Some(b)) = (part(&import.from), part(&import.to)) {
            if a != b {
                edges.entry(a).or_default().entry(b).or_default().push(format!("{} uses {}", display(&import.from), import.text));
            }
        }
    }
    // Depth-first search for back edges; each cycle is reported once, with the imports that close it.
    let mut cycles = Vec::new();
    let mut state: BTreeMap<String, u8> = BTreeMap::new();
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in edges.get(node).map(|e| e.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            match state.get(&next) {
                Some(1) => {
                    let start = stack.iter().position(|n| *n == next).unwrap();
                    let mut cycle: Vec<String> = stack[start..].to_vec();
                    cycle.push(next.clone());
                    let evidence = cycle.windows(2).map(|w| edges[&w[0]][&w[1]][0].clone()).collect::<Vec<_>>();
                    cycles.push(vec![cycle.join(" -> ")].into_iter().chain(evidence).collect());
                }
                Some(_) => {}
                None => visit(&next, edges, state, stack, cycles),
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
    }
    let nodes: Vec<String> = edges.keys().cloned().collect();
    for node in nodes {
        if !state.contains_key(&node) {
            visit(&node, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    cycles
}

fn display(module: &Module) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        format!("crate::{}", module.join("::"))
    }
}

/// Every folder's cycles, as text.
fn all_cycles(src: &Path) -> Vec<String> {
    let (modules, imports) = imports(src);
    let parents: BTreeSet<Module> = modules.iter().filter(|m| !m.is_empty()).map(|m| m[..m.len() - 1].to_vec()).collect();
    let mut report = Vec::new();
    for parent in &parents {
        for cycle in cycles_within(parent, &imports) {
            report.push(format!("in {}: {}", display(parent), cycle.join("\n    ")));
        }
    }
    report
}

/// The imports between the parts of `parent`, as `a -> b` lines (`LAYERING_PRINT=lake cargo test --test
/// layering -- --nocapture` prints those of `crate::lake`).
fn part_edges(src: &Path, parent: &Module) -> BTreeSet<String> {
    let (_, imports) = imports(src);
    let part = |m: &Module| m.starts_with(parent).then(|| m.get(parent.len()).cloned().unwrap_or_else(|| "(mod.rs)".to_string()));
    imports
        .iter()
        .filter_map(|i| match (part(&i.from), part(&i.to)) {
            (Some(a), Some(b)) if a != b => Some(format!("{a} -> {b}")),
            _ => None,
        })
        .collect()
}

#[test]
fn modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if let Ok(parent) = std::env::var("LAYERING_PRINT") {
        let parent: Module = parent.split("::").filter(|p| !p.is_empty() && *p != "crate").map(str::to_string).collect();
        println!("{}", part_edges(&src, &parent).into_iter().collect::<Vec<_>>().join("\n"));
    }
    let cycles = all_cycles(&src);
    assert!(cycles.is_empty(), "import cycles ({}):\n{}", cycles.len(), cycles.join("\n"));
}

#[test]
fn a_cycle_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("lake")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod lake;\npub mod query;\n").unwrap();
    std::fs::write(src.join("lake/mod.rs"), "mod commit;\npub use self::commit::Report;\npub struct Lake;\n").unwrap();
    // A child importing what its parent defines, while the parent re-exports the child: a cycle.
    std::fs::write(src.join("lake/commit.rs"), "use super::Lake;\n// use crate::query::X; in a comment is no import\npub struct Report;\n").unwrap();
    std::fs::write(src.join("query.rs"), "use crate::lake::{Lake, commit::Report as R};\n#[cfg(test)]\nmod tests { use crate::lake::*; }\n").unwrap();
    let cycles = all_cycles(src);
    assert_eq!(cycles.len(), 1, "{cycles:#?}");
    assert!(cycles[0].contains("in crate::lake") && cycles[0].contains("crate::lake::commit uses super::Lake"), "{}", cycles[0]);

    // Siblings importing each other, one of them inline in code.
    std::fs::write(src.join("lake/commit.rs"), "pub struct Report;\n").unwrap();
    std::fs::write(src.join("lake/mod.rs"), "mod commit;\npub use self::commit::Report;\npub fn open() { let _ = crate::query::answer(); }\n")
        .unwrap();
    let cycles = all_cycles(src);
    assert_eq!(cycles.len(), 1, "{cycles:#?}");
    assert!(cycles[0].starts_with("in crate: lake -> query -> lake") || cycles[0].starts_with("in crate: query -> lake -> query"), "{}", cycles[0]);

    std::fs::write(src.join("lake/mod.rs"), "mod commit;\npub use self::commit::Report;\n").unwrap();
    assert!(all_cycles(src).is_empty());

    // A parent naming its child bare, the child importing the parent: a cycle.
    std::fs::write(src.join("lake/mod.rs"), "mod commit;\npub struct Lake;\nfn f() -> commit::Report { todo!() }\n").unwrap();
    std::fs::write(src.join("lake/commit.rs"), "pub struct Report(super::Lake);\n").unwrap();
    let cycles = all_cycles(src);
    assert_eq!(cycles.len(), 1, "{cycles:#?}");
}

#[test]
fn use_trees_expand_to_every_path() {
    assert_eq!(expand("super::{a::{B, C}, d, e as f}"), vec!["super::a::B", "super::a::C", "super::d", "super::e"]);
    assert_eq!(expand("crate::lake::Lake"), vec!["crate::lake::Lake"]);
    assert_eq!(code_of("let s = \"crate::x\"; // crate::y\nlet r = r#\"super::z\"#; let c = '{';"), "let s = \"\"; \nlet r = \"\"; let c = ' ';");
}

//! The modules of `ipc-core` form layers: the import graph of its top-level
//! modules (`sys`, `sync`, `layout`, `region`, …) has no cycle, and the
//! list in `lib.rs` that says "each layer uses only the ones before it"
//! names every module in an order that is true.
//!
//! The check reads the sources: from `lib.rs` it follows the `mod`
//! declarations (leaving out test-only ones: a test may set up what it
//! needs from a higher layer), strips comments, strings and character
//! literals, and records which top-level module each `crate::…`,
//! `$crate::…` or root-reaching `super::…` path names. A name re-exported
//! at the crate root (`crate::Error`) counts as the module it comes from.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn is(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }

    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            Tok::Punct(_) => None,
        }
    }

    fn is_ident(&self, word: &str) -> bool {
        self.ident() == Some(word)
    }
}

/// Identifiers and punctuation of `src`, without comments (doc comments
/// included), string, byte-string, raw-string and character literals.
fn tokens(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    // Skips a quoted literal whose opening quote is at `i`; returns the
    // index after the closing quote, counting the lines it spans.
    let skip_quoted = |mut i: usize, quote: char, line: &mut usize| {
        i += 1;
        while i < chars.len() && chars[i] != quote {
            if chars[i] == '\\' {
                i += 1;
            }
            if at(i) == '\n' {
                *line += 1;
            }
            i += 1;
        }
        i + 1
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                assert!(i < chars.len(), "unterminated block comment");
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_quoted(i, '"', &mut line);
        } else if c == '\'' {
            if at(i + 1) == '\\' || at(i + 2) == '\'' {
                i = skip_quoted(i, '\'', &mut line);
            } else {
                // A lifetime or label: its name follows as an identifier.
                out.push(Token {
                    tok: Tok::Punct('\''),
                    line,
                });
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let raw_prefix = word == "r" || word == "br" || word == "cr";
            if raw_prefix && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '#' | '"'))) {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                i += 1;
                loop {
                    assert!(i < chars.len(), "unterminated raw string");
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    i += 1;
                }
            } else if (word == "b" || word == "c") && at(i) == '"' {
                i = skip_quoted(i, '"', &mut line);
            } else if word == "b" && at(i) == '\'' {
                i = skip_quoted(i, '\'', &mut line);
            } else {
                out.push(Token {
                    tok: Tok::Ident(word),
                    line,
                });
            }
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

/// Evaluates a `cfg` predicate with `test` off and everything else unknown:
/// `Some(false)` means the item exists only in test builds.
fn cfg_value(toks: &[Token], i: &mut usize) -> Option<bool> {
    let name = toks[*i].ident().expect("a cfg predicate").to_string();
    *i += 1;
    if toks.get(*i).is_some_and(|t| t.is('(')) {
        *i += 1;
        let mut values = Vec::new();
        while !toks[*i].is(')') {
            values.push(cfg_value(toks, i));
            if toks[*i].is(',') {
                *i += 1;
            }
        }
        *i += 1;
        match name.as_str() {
            "all" if values.contains(&Some(false)) => Some(false),
            "all" if values.iter().all(|v| *v == Some(true)) => Some(true),
            "any" if values.contains(&Some(true)) => Some(true),
            "any" if values.iter().all(|v| *v == Some(false)) => Some(false),
            "not" => values[0].map(|v| !v),
            _ => None,
        }
    } else if toks.get(*i).is_some_and(|t| t.is('=')) {
        // `feature = "…"`: the string was stripped.
        *i += 1;
        None
    } else if name == "test" {
        Some(false)
    } else {
        None
    }
}

/// Index just past the item starting at `i`: through its first `;` or its
/// first balanced `{…}` block, whichever comes first.
fn skip_item(toks: &[Token], mut i: usize) -> usize {
    let mut parens = 0i32;
    while i < toks.len() {
        let t = &toks[i];
        if t.is('(') || t.is('[') {
            parens += 1;
        } else if t.is(')') || t.is(']') {
            parens -= 1;
        } else if parens == 0 && t.is(';') {
            return i + 1;
        } else if parens == 0 && t.is('{') {
            let mut depth = 0;
            while i < toks.len() {
                if toks[i].is('{') {
                    depth += 1;
                } else if toks[i].is('}') {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                i += 1;
            }
        }
        i += 1;
    }
    i
}

/// Index just past the `[…]` opening at `i`.
fn past_brackets(toks: &[Token], mut i: usize) -> usize {
    let mut depth = 0;
    loop {
        if toks[i].is('[') {
            depth += 1;
        } else if toks[i].is(']') {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
}

/// The first identifier of each element of the `{…}` group opening at `i`
/// (`{a, b::c, d::{e, f}}` gives `a`, `b`, `d`).
fn group_heads(toks: &[Token], mut i: usize) -> Vec<(String, usize)> {
    assert!(toks[i].is('{'));
    i += 1;
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    while depth > 0 || !toks[i].is('}') {
        let t = &toks[i];
        if t.is('{') {
            depth += 1;
        } else if t.is('}') {
            depth -= 1;
        } else if depth == 0 && t.is(',') {
            expect_head = true;
        } else if expect_head {
            let name = t.ident().expect("a path in a use group");
            heads.push((name.to_string(), t.line));
            expect_head = false;
        }
        i += 1;
    }
    heads
}

/// What one file says: the root-level names its paths reach (with their
/// lines), and the modules it declares in files of their own.
#[derive(Default)]
struct Scan {
    uses: Vec<(String, usize)>,
    children: Vec<String>,
}

/// Scans the tokens of a file for a module `depth` levels below the root.
fn scan(toks: &[Token], depth: usize) -> Scan {
    let mut out = Scan::default();
    // Brace depths at which inline `mod name { … }` blocks opened.
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut braces = 0;
    let mut test_only = false;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let after_colons = i >= 2 && toks[i - 1].is(':') && toks[i - 2].is(':');
        if t.is('#') && (toks[i + 1].is('[') || toks[i + 1].is('!')) {
            let open = if toks[i + 1].is('!') { i + 2 } else { i + 1 };
            let end = past_brackets(toks, open);
            if toks[open + 1].is_ident("cfg") && toks[open + 2].is('(') {
                let mut j = open + 3;
                if cfg_value(toks, &mut j) == Some(false) {
                    assert!(!toks[i + 1].is('!'), "a test-only file is declared so");
                    test_only = true;
                }
            }
            i = end;
            continue;
        }
        if test_only {
            test_only = false;
            i = skip_item(toks, i);
            continue;
        }
        if t.is('{') {
            braces += 1;
        } else if t.is('}') {
            if inline_mods.last() == Some(&braces) {
                inline_mods.pop();
            }
            braces -= 1;
        } else if t.is_ident("mod") && !after_colons {
            let name = toks[i + 1].ident().expect("a module name").to_string();
            if toks[i + 2].is(';') {
                out.children.push(name);
            } else {
                inline_mods.push(braces + 1);
            }
            i += 2;
            continue;
        } else if (t.is_ident("crate") || t.is_ident("super")) && !after_colons {
            // The path's segments after the root, once it is reached.
            // `j` ends on the first `:` of the `::` after the root.
            let mut j = i + 1;
            let reaches_root = if t.is_ident("crate") {
                true
            } else {
                let mut ups = 1;
                while toks[j].is(':') && toks[j + 2].is_ident("super") {
                    ups += 1;
                    j += 3;
                }
                ups >= depth + inline_mods.len()
            };
            if reaches_root && toks[j].is(':') && toks[j + 1].is(':') {
                let next = &toks[j + 2];
                if next.is('{') {
                    out.uses.extend(group_heads(toks, j + 2));
                } else {
                    let name = next.ident().expect("a name after `crate::`");
                    out.uses.push((name.to_string(), next.line));
                }
            }
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    out
}

/// The file of module `name` declared in `parent_dir`.
fn module_file(parent_dir: &Path, name: &str) -> PathBuf {
    let flat = parent_dir.join(format!("{name}.rs"));
    if flat.exists() {
        return flat;
    }
    let nested = parent_dir.join(name).join("mod.rs");
    assert!(
        nested.exists(),
        "no file for module {name} in {parent_dir:?}"
    );
    nested
}

fn rust_files(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.insert(path);
        }
    }
}

/// Where a module edge was seen: file and line.
type Evidence = (PathBuf, usize);

struct Crate {
    /// Top-level modules, each with the modules it uses and where.
    graph: BTreeMap<String, BTreeMap<String, Evidence>>,
    /// The crate docs' layer list, top to bottom.
    doc_order: Vec<String>,
}

fn read_crate() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib_path = src.join("lib.rs");
    let lib_text = fs::read_to_string(&lib_path).unwrap();
    let lib = tokens(&lib_text);

    let root = scan(&lib, 0);
    let modules: BTreeSet<String> = root.children.iter().cloned().collect();
    // Names the root re-exports: `pub use module::{A, B}` or `module::A`.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for (i, t) in lib.iter().enumerate() {
        if t.is_ident("use") && lib[i - 1].is_ident("pub") {
            let module = lib[i + 1].ident().unwrap().to_string();
            assert!(modules.contains(&module), "lib.rs re-exports from {module}");
            let end = skip_item(&lib, i);
            let mut j = i + 2;
            while j < end {
                if let Some(name) = lib[j].ident() {
                    reexports.insert(name.to_string(), module.clone());
                }
                j += 1;
            }
        }
    }

    let mut all_files = BTreeSet::new();
    rust_files(&src, &mut all_files);
    let mut seen = BTreeSet::from([lib_path.clone()]);
    let mut graph: BTreeMap<String, BTreeMap<String, Evidence>> = BTreeMap::new();
    // (top-level module, file, depth below the root)
    let mut queue: Vec<(String, PathBuf, usize)> = modules
        .iter()
        .map(|m| (m.clone(), module_file(&src, m), 1))
        .collect();
    while let Some((top, file, depth)) = queue.pop() {
        seen.insert(file.clone());
        let text = fs::read_to_string(&file).unwrap();
        let found = scan(&tokens(&text), depth);
        let edges = graph.entry(top.clone()).or_default();
        for (name, line) in found.uses {
            let target = if modules.contains(&name) {
                name
            } else if let Some(module) = reexports.get(&name) {
                module.clone()
            } else {
                panic!(
                    "{}:{line}: `crate::{name}` is neither a module nor a root re-export",
                    file.display()
                )
            };
            if target != top {
                edges.entry(target).or_insert((file.clone(), line));
            }
        }
        let dir = if file.ends_with("mod.rs") {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for child in found.children {
            queue.push((top.clone(), module_file(&dir, &child), depth + 1));
        }
    }
    // Files left out are those of test-only modules, declared in a scanned
    // file under a `cfg` that needs `test`; anything else is a file no
    // module declares, or one this scanner misread.
    for file in all_files.difference(&seen) {
        let name = file.file_stem().unwrap().to_str().unwrap();
        let name = if name == "mod" {
            file.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
        } else {
            name
        };
        let parent = file.parent().unwrap();
        let declared_in = [parent.join("mod.rs"), parent.with_extension("rs")];
        let test_only = declared_in.iter().chain([&lib_path]).any(|decl| {
            seen.contains(decl) && {
                let toks = tokens(&fs::read_to_string(decl).unwrap());
                (0..toks.len().saturating_sub(2)).any(|i| {
                    toks[i].is_ident("mod") && toks[i + 1].is_ident(name) && toks[i + 2].is(';')
                })
            }
        });
        assert!(
            test_only,
            "{} is not reached from lib.rs and not a test-only module",
            file.display()
        );
    }

    // The crate docs' list: `//! - [`name`]: …` or `//! - `name`: …`.
    let doc_order = lib_text
        .lines()
        .filter_map(|line| line.strip_prefix("//! - "))
        .filter_map(|item| {
            let item = item.strip_prefix('[').unwrap_or(item);
            let name = item.strip_prefix('`')?.split('`').next()?;
            Some(name.to_string())
        })
        .collect();
    Crate { graph, doc_order }
}

/// A cycle of `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, Evidence>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, Evidence>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|edges| edges.keys()) {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn describe(graph: &BTreeMap<String, BTreeMap<String, Evidence>>, path: &[String]) -> String {
    path.windows(2)
        .map(|pair| {
            let (file, line) = &graph[&pair[0]][&pair[1]];
            format!(
                "  {} -> {}   ({}:{line})\n",
                pair[0],
                pair[1],
                file.display()
            )
        })
        .collect()
}

#[test]
fn the_module_graph_has_no_cycle() {
    let Crate { graph, .. } = read_crate();
    // The scan found the crate's layers at all.
    for module in ["sys", "sync", "layout", "region", "spsc", "mpmc", "channel"] {
        assert!(graph.contains_key(module), "no module {module}");
    }
    assert!(graph["spsc"].contains_key("sync"), "spsc uses sync");
    if let Some(cycle) = find_cycle(&graph) {
        let edges: String = graph
            .iter()
            .map(|(module, uses)| {
                let uses: Vec<&str> = uses.keys().map(String::as_str).collect();
                format!("  {module}: {}\n", uses.join(", "))
            })
            .collect();
        panic!(
            "ipc-core's modules import each other in a circle:\n{}the whole graph:\n{edges}",
            describe(&graph, &cycle)
        );
    }
}

#[test]
fn the_crate_docs_list_the_layers_in_an_order_that_holds() {
    let Crate { graph, doc_order } = read_crate();
    let listed: BTreeSet<&String> = doc_order.iter().collect();
    let modules: BTreeSet<&String> = graph.keys().collect();
    assert_eq!(
        listed, modules,
        "lib.rs's layer list names each top-level module once"
    );
    assert_eq!(listed.len(), doc_order.len(), "a module listed twice");
    for (place, module) in doc_order.iter().enumerate() {
        for used in graph[module].keys() {
            let used_place = doc_order.iter().position(|m| m == used).unwrap();
            assert!(
                used_place < place,
                "lib.rs lists {module} before {used}, which it uses:\n{}",
                describe(&graph, &[module.clone(), used.clone()])
            );
        }
    }
}

#[test]
fn the_scanner_reads_paths_not_comments_or_strings() {
    let src = r##"
        //! [`crate::doc_only`]
        use crate::{a, b::{c, d}, e::f};
        /* crate::block_comment /* nested */ crate::still_comment */
        fn g<'x>(v: &'x str) -> char {
            let _ = "crate::in_a_string";
            let _ = r#"crate::raw " crate::still_raw"#;
            crate::h::call();
            super::i::call();
            '"'
        }
        mod inline { fn j() { super::k(); super::super::l(); } }
        #[cfg(all(test, unix))]
        mod tests { use crate::test_only; }
        #[cfg(not(test))]
        use crate::m;
        mod child;
    "##;
    let found = scan(&tokens(src), 1);
    let names: Vec<&str> = found.uses.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "e", "h", "i", "l", "m"]);
    assert_eq!(found.children, ["child"]);
}

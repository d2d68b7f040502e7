//! The structure of the workspace drawn from its source (issue #19), and the rules it must keep:
//! - the CLI crate (`src/`) holds arguments, output and progress only: at most
//!   [`CLI_MAX_LINES`] lines in all, no file over [`CLI_MAX_FILE_LINES`];
//! - no library source file over [`LIBRARY_MAX_FILE_LINES`] lines;
//! - no import circle between the modules of a crate (the graph is built from `use` trees and
//!   `crate::`/`super::`/`self::` paths, re-exports followed to the defining module, test-only
//!   items left out; see `architecture/scan.rs`), and none between crates (`Cargo.toml`
//!   dependencies of every kind);
//! - `unsafe` only in `sys/`, and every other library crate on the workspace lints;
//! - one definition each of the whiteout xattr names, `MAX_INLINE_CONTENT`, the default
//!   repository path and the JSON string escaper.
//!
//! `cargo test --release --test architecture -- --nocapture` prints the drawing: each crate
//! with its files, lines, modules and import edges, and every circle with the references that
//! make it.

#[path = "architecture/scan.rs"]
mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use scan::{CrateModules, ModPath};

/// The CLI crate's size bar: it parses, calls the libraries and prints (design.md), in at most
/// the 2,500 lines issue #19 asks for, most of them clap argument definitions with their help
/// texts. A CLI that grows past it holds logic that belongs in a library.
const CLI_MAX_LINES: usize = 2_500;
/// No CLI file over this: a file that grows past it holds logic that belongs in a library.
const CLI_MAX_FILE_LINES: usize = 400;
/// No library source file over this (the project rule; a file past it is two modules).
const LIBRARY_MAX_FILE_LINES: usize = 800;
/// The one crate allowed `unsafe` code.
const UNSAFE_CRATE_DIR: &str = "sys";
/// The whiteout and opaque xattr names the EROFS writer and reader must share (issue #19).
const OVERLAY_XATTR_NAMES: [&str; 9] = [
    "trusted.overlay.whiteout",
    "user.overlay.whiteout",
    "trusted.overlay.overlay.whiteout",
    "trusted.overlay.whiteouts",
    "user.overlay.whiteouts",
    "trusted.overlay.overlay.whiteouts",
    "user.overlay.opaque",
    "trusted.overlay.overlay.opaque",
    "trusted.overlay.opaque",
];
/// The default repository path.
const DEFAULT_REPOSITORY: &str = "/var/lib/cfsgate";
/// The escaped quote, as a Rust string literal's source text: every hand-written JSON string
/// escaper writes it once, so it counts escapers.
const JSON_QUOTE_ESCAPE_SOURCE: &str = r#"\\\""#;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A crate of the workspace: its directory (relative), its package name, its root file.
struct Crate {
    dir: String,
    name: String,
    root: PathBuf,
    manifest: String,
}

fn crates() -> Vec<Crate> {
    let root = workspace();
    let manifest = read(&root.join("Cargo.toml"));
    let members_line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("the workspace Cargo.toml lists its members");
    let mut dirs: Vec<String> = vec![String::new()];
    dirs.extend(
        members_line
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string),
    );
    assert!(dirs.len() > 2, "members not read from: {members_line}");
    dirs.into_iter()
        .map(|dir| {
            let base = root.join(&dir);
            let manifest = read(&base.join("Cargo.toml"));
            let name = package_name(&manifest);
            let lib = base.join("src/lib.rs");
            let root_file = if lib.exists() {
                lib
            } else {
                base.join("src/main.rs")
            };
            Crate {
                dir,
                name,
                root: root_file,
                manifest,
            }
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn package_name(manifest: &str) -> String {
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("a [package] name")
        .to_string()
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn line_count(path: &Path) -> usize {
    read(path).lines().count()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The source files of a crate (its `src/`), each with its line count.
fn source_files(krate: &Crate) -> Vec<(PathBuf, usize)> {
    let src = krate.root.parent().expect("src/").to_path_buf();
    rust_files(&src)
        .into_iter()
        .map(|f| {
            let n = line_count(&f);
            (f, n)
        })
        .collect()
}

fn module_name(path: &ModPath) -> String {
    if path.is_empty() {
        "crate".to_string()
    } else {
        path.join("::")
    }
}

/// The module graph of one crate: node → node → the first reference that makes the edge.
type Graph = BTreeMap<ModPath, BTreeMap<ModPath, String>>;

fn module_graph(krate: &CrateModules) -> Graph {
    let mut graph: Graph = BTreeMap::new();
    for module in krate.modules.keys() {
        graph.entry(module.clone()).or_default();
    }
    for (node, file) in &krate.files {
        let file_name = krate
            .modules
            .get(node)
            .map(|m| relative(&m.file))
            .unwrap_or_default();
        let mut add = |from: &ModPath, target: Option<ModPath>, what: String, line: usize| {
            let Some(target) = target.filter(|t| t != from && krate.modules.contains_key(t)) else {
                return;
            };
            graph
                .entry(from.clone())
                .or_default()
                .entry(target)
                .or_insert_with(|| format!("{file_name}:{line} `{what}`"));
        };
        for binding in file.uses.iter().filter(|b| !b.public) {
            let target = krate.resolve(&binding.module, &binding.target);
            let what = format!("use {}", binding.target.join("::"));
            add(&binding.module, target, what, binding.line);
        }
        for path in &file.paths {
            let target = krate.resolve(&path.module, &path.segments);
            add(&path.module, target, path.segments.join("::"), path.line);
        }
    }
    graph
}

/// Strongly connected components with more than one node (Tarjan).
fn circles<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct State<N> {
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on_stack: BTreeSet<N>,
        next: usize,
        found: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>, v: &N, s: &mut State<N>) {
        s.index.insert(v.clone(), s.next);
        s.low.insert(v.clone(), s.next);
        s.next += 1;
        s.stack.push(v.clone());
        s.on_stack.insert(v.clone());
        for w in graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(graph, w, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v.clone(), low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v.clone(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = &w == v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(graph, v, &mut state);
        }
    }
    state.found.sort();
    state.found
}

/// Each crate's module circles, described with the references that close them.
fn module_circles() -> Vec<String> {
    let mut report = Vec::new();
    for krate in crates() {
        let modules = scan::read_crate(&krate.root);
        let graph = module_graph(&modules);
        let edges: usize = graph.values().map(BTreeMap::len).sum();
        let plain: BTreeMap<ModPath, BTreeSet<ModPath>> = graph
            .iter()
            .map(|(k, v)| (k.clone(), v.keys().cloned().collect()))
            .collect();
        let found = circles(&plain);
        println!(
            "{}: {} files, {} modules, {} import edges, {} circles",
            krate.name,
            modules.files.len(),
            graph.len(),
            edges,
            found.len()
        );
        for circle in found {
            let members: BTreeSet<&ModPath> = circle.iter().collect();
            let names: Vec<String> = circle.iter().map(module_name).collect();
            let mut text = format!("{}: circle {{{}}}", krate.name, names.join(", "));
            for from in &circle {
                for (to, why) in &graph[from] {
                    if members.contains(to) {
                        text.push_str(&format!(
                            "\n    {} -> {}: {why}",
                            module_name(from),
                            module_name(to)
                        ));
                    }
                }
            }
            println!("  {text}");
            report.push(text);
        }
    }
    report
}

/// Circles known and not yet removed (crate, module prefix every member of the circle lies
/// under, what is left to do): tolerated, and an entry whose circles are gone fails the test
/// until it is removed, so the list only shrinks.
const CIRCLES_BEING_REMOVED: [(&str, &str, &str); 0] = [];

/// The `CIRCLES_BEING_REMOVED` entry a circle (`crate: circle {a, b::c}`) falls under.
fn pending_owner(circle: &str) -> Option<usize> {
    let (krate, rest) = circle.split_once(": circle {")?;
    let members = rest.split('}').next()?;
    CIRCLES_BEING_REMOVED
        .iter()
        .position(|(owner_crate, prefix, _)| {
            krate == *owner_crate
                && members.split(", ").all(|m| {
                    prefix.is_empty() || m == *prefix || m.starts_with(&format!("{prefix}::"))
                })
        })
}

#[test]
fn no_import_circle_between_the_modules_of_a_crate() {
    let found = module_circles();
    let mut pending_seen = [false; CIRCLES_BEING_REMOVED.len()];
    let mut unexpected = Vec::new();
    for circle in &found {
        match pending_owner(circle) {
            Some(entry) => {
                pending_seen[entry] = true;
                println!("PENDING ({}): {circle}", CIRCLES_BEING_REMOVED[entry].2);
            }
            None => unexpected.push(circle.clone()),
        }
    }
    assert!(
        unexpected.is_empty(),
        "import circles:\n{}",
        unexpected.join("\n")
    );
    let stale: Vec<_> = CIRCLES_BEING_REMOVED
        .iter()
        .zip(pending_seen)
        .filter(|(_, seen)| !seen)
        .map(|(entry, _)| entry)
        .collect();
    assert!(
        stale.is_empty(),
        "no circle is left under {stale:?}: remove them from CIRCLES_BEING_REMOVED"
    );
}

/// The workspace crates each crate's manifest depends on (any kind of dependency).
fn crate_graph() -> BTreeMap<String, BTreeSet<String>> {
    let all = crates();
    let names: BTreeSet<String> = all.iter().map(|c| c.name.clone()).collect();
    let mut graph = BTreeMap::new();
    for krate in &all {
        let mut deps = BTreeSet::new();
        let mut in_deps = false;
        for line in krate.manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                in_deps = line.ends_with("dependencies]");
                continue;
            }
            let key = line.split(['=', '.', ' ']).next().unwrap_or("");
            if in_deps && names.contains(key) && key != krate.name {
                deps.insert(key.to_string());
            }
        }
        graph.insert(krate.name.clone(), deps);
    }
    graph
}

#[test]
fn no_circle_between_crates() {
    let graph = crate_graph();
    for (name, deps) in &graph {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("{name} -> {}", deps.join(", "));
    }
    assert!(
        graph.values().map(BTreeSet::len).sum::<usize>() >= graph.len(),
        "the crates' workspace dependencies were not read: {graph:?}"
    );
    let found = circles(&graph);
    assert!(found.is_empty(), "circles between crates: {found:?}");
}

#[test]
fn the_cli_crate_parses_calls_and_prints_within_its_bars() {
    let cli = crates()
        .into_iter()
        .find(|c| c.dir.is_empty())
        .expect("the root package");
    let files = source_files(&cli);
    let total: usize = files.iter().map(|(_, n)| n).sum();
    println!(
        "{} (src/): {total} lines in {} files (bar {CLI_MAX_LINES})",
        cli.name,
        files.len()
    );
    let over: Vec<String> = files
        .iter()
        .filter(|(_, n)| *n > CLI_MAX_FILE_LINES)
        .map(|(f, n)| format!("{} ({n} lines)", relative(f)))
        .collect();
    assert!(
        total <= CLI_MAX_LINES && over.is_empty(),
        "the CLI crate has {total} lines (bar {CLI_MAX_LINES}); files over {CLI_MAX_FILE_LINES}: {over:?}"
    );
}

#[test]
fn no_library_source_file_over_its_bar() {
    let mut over = Vec::new();
    for krate in crates().iter().filter(|c| !c.dir.is_empty()) {
        let files = source_files(krate);
        let total: usize = files.iter().map(|(_, n)| n).sum();
        let largest = files.iter().max_by_key(|(_, n)| *n);
        println!(
            "{}: {total} lines in {} files, largest {}",
            krate.name,
            files.len(),
            largest
                .map(|(f, n)| format!("{} ({n})", relative(f)))
                .unwrap_or_default()
        );
        over.extend(
            files
                .iter()
                .filter(|(_, n)| *n > LIBRARY_MAX_FILE_LINES)
                .map(|(f, n)| format!("{} ({n} lines)", relative(f))),
        );
    }
    assert!(
        over.is_empty(),
        "library files over {LIBRARY_MAX_FILE_LINES} lines: {over:?}"
    );
}

#[test]
fn unsafe_only_in_sys_and_the_lints_on_every_other_library() {
    let root = workspace();
    let sys = root.join(UNSAFE_CRATE_DIR);
    let mut outside = Vec::new();
    let mut in_sys = 0;
    for file in rust_files(&root) {
        let unsafe_lines: Vec<usize> = scan::tokenize(&read(&file))
            .iter()
            .filter(|t| t.tok == scan::Tok::Ident("unsafe".into()))
            .map(|t| t.line)
            .collect();
        if file.starts_with(&sys) {
            in_sys += unsafe_lines.len();
        } else {
            outside.extend(
                unsafe_lines
                    .iter()
                    .map(|l| format!("{}:{l}", relative(&file))),
            );
        }
    }
    println!(
        "unsafe: {in_sys} in {UNSAFE_CRATE_DIR}/, {} elsewhere",
        outside.len()
    );
    assert!(
        in_sys > 0,
        "the scan found no `unsafe` even in {UNSAFE_CRATE_DIR}/"
    );
    assert!(
        outside.is_empty(),
        "`unsafe` outside {UNSAFE_CRATE_DIR}/: {outside:?}"
    );

    let mut missing = Vec::new();
    for krate in crates().iter().filter(|c| !c.dir.is_empty()) {
        let lines: Vec<&str> = krate.manifest.lines().map(str::trim).collect();
        let on_workspace = lines
            .windows(2)
            .any(|w| w == ["[lints]", "workspace = true"]);
        let own_table = lines.contains(&"[lints.rust]") && lines.contains(&"[lints.clippy]");
        let ok = if krate.dir == UNSAFE_CRATE_DIR {
            own_table
        } else {
            on_workspace
        };
        if !ok {
            missing.push(krate.name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "library crates without their lints table: {missing:?}"
    );
}

/// Where, in the code that ships (libraries and CLI, tests left out), `wanted` holds.
fn occurrences(wanted: impl Fn(&scan::FileScan) -> Vec<usize>) -> Vec<String> {
    let mut found = Vec::new();
    for krate in crates() {
        let modules = scan::read_crate(&krate.root);
        for (node, file) in &modules.files {
            let name = modules
                .modules
                .get(node)
                .map(|m| relative(&m.file))
                .unwrap_or_default();
            found.extend(
                wanted(file)
                    .into_iter()
                    .map(|line| format!("{name}:{line}")),
            );
        }
    }
    found
}

#[test]
fn one_definition_each_of_the_shared_names_and_the_json_escaper() {
    let mut problems = Vec::new();
    let mut expect_one = |what: &str, found: Vec<String>| {
        println!("{what}: {}", found.join(", "));
        if found.len() != 1 {
            problems.push(format!("{what}: {} definitions {found:?}", found.len()));
        }
    };
    for name in OVERLAY_XATTR_NAMES {
        let found = occurrences(|f| {
            f.strings
                .iter()
                .filter(|(s, _)| s == name)
                .map(|(_, l)| *l)
                .collect()
        });
        expect_one(&format!("xattr name {name}"), found);
    }
    let found = occurrences(|f| {
        f.consts
            .iter()
            .filter(|(n, _)| n == "MAX_INLINE_CONTENT")
            .map(|(_, l)| *l)
            .collect()
    });
    expect_one("const MAX_INLINE_CONTENT", found);
    let found = occurrences(|f| {
        f.strings
            .iter()
            .filter(|(s, _)| s == DEFAULT_REPOSITORY)
            .map(|(_, l)| *l)
            .collect()
    });
    expect_one(
        &format!("the default repository {DEFAULT_REPOSITORY}"),
        found,
    );
    let found = occurrences(|f| {
        f.strings
            .iter()
            .filter(|(s, _)| s == JSON_QUOTE_ESCAPE_SOURCE)
            .map(|(_, l)| *l)
            .collect()
    });
    expect_one("JSON string escaper", found);
    assert!(
        problems.is_empty(),
        "duplicated definitions:\n{}",
        problems.join("\n")
    );
}

/// The scanner on a crate written for it: a circle through `super::` and a re-export is
/// found; a facade that only re-exports, test-only code, comments and strings make none.
#[test]
fn the_scanner_finds_a_circle_and_sees_through_re_exports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    let files = [
        (
            "lib.rs",
            "mod a;\nmod b;\nmod c;\npub use a::Alpha;\npub use b::*;\n",
        ),
        (
            "a.rs",
            "pub struct Alpha;\nfn f() { let _ = crate::b::beta(); }\n",
        ),
        (
            "b.rs",
            "use super::Alpha;\npub fn beta() -> Alpha { Alpha }\n",
        ),
        (
            "c.rs",
            "// crate::a::Alpha in a comment\nconst S: &str = \"super::a::Alpha\";\n\
             pub fn gamma() { crate::beta(); }\n#[cfg(test)]\nmod tests { use crate::a::Alpha; }\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(src.join(name), text).expect("write");
    }
    let modules = scan::read_crate(&src.join("lib.rs"));
    let graph = module_graph(&modules);
    let edges: BTreeSet<(String, String)> = graph
        .iter()
        .flat_map(|(from, to)| to.keys().map(move |t| (module_name(from), module_name(t))))
        .collect();
    let expected: BTreeSet<(String, String)> = [("a", "b"), ("b", "a"), ("c", "b")]
        .into_iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    assert_eq!(edges, expected);
    let plain: BTreeMap<ModPath, BTreeSet<ModPath>> = graph
        .iter()
        .map(|(k, v)| (k.clone(), v.keys().cloned().collect()))
        .collect();
    assert_eq!(
        circles(&plain),
        vec![vec![vec!["a".to_string()], vec!["b".to_string()]]]
    );
}

//! A small Rust source scanner for `tests/architecture.rs`: enough of the lexer and the item
//! grammar to draw each crate's module graph from its own source, with no dependency.
//!
//! Why not `syn`: the questions asked here are lexical (which `mod` declarations, which `use`
//! trees and `crate::`/`super::`/`self::` paths, which literals, where `unsafe` is), and a
//! full parser would add a compile of `syn` with `full` to every test build for no better
//! answer. What the scanner understands:
//! - comments (nested block comments), string, raw string, byte and C string literals, char
//!   and byte literals, lifetimes and raw identifiers are told apart so nothing inside a
//!   comment or a string counts;
//! - `#[cfg(test)]` (any `cfg` naming `test` without `not`) removes the next item: tests may
//!   reach across modules, the structure is the one of the code that ships;
//! - `mod x;` (a file), `mod x { … }` (inline), each a node of the graph; `use` trees with
//!   groups, `self`, globs and `as`, and paths in code starting with `crate`, `$crate`, `super`,
//!   `self` or a name the module declared or imported;
//! - `pub(…)` visibilities are skipped (`pub(in crate::x)` is no dependency).
//!
//! Resolution follows re-exports to the module that defines the item, so a facade `mod.rs` or
//! `lib.rs` that only re-exports does not tie everything into one circle. A `pub use` is itself
//! taken as a re-export, not as a use by the module's own code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One token of Rust source, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier or keyword (raw identifiers without `r#`).
    Ident(String),
    /// The source text between the quotes of a string literal of any kind (escapes unprocessed).
    Str(String),
    /// `::`
    Sep,
    /// Any other single character.
    Punct(char),
}

/// A token and its 1-based line.
#[derive(Debug, Clone)]
pub struct Token {
    /// What the token is.
    pub tok: Tok,
    /// The line it starts on.
    pub line: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `source` into tokens, dropping comments, whitespace and numbers.
pub fn tokenize(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
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
            while i < chars.len() {
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
            let start_line = line;
            let (text, next) = quoted(&chars, i + 1, &mut line);
            tokens.push(Token {
                tok: Tok::Str(text),
                line: start_line,
            });
            i = next;
        } else if c == '\'' {
            i = char_or_lifetime(&chars, i);
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let start_line = line;
            match (word.as_str(), at(i)) {
                ("b" | "c", '"') => {
                    let (text, next) = quoted(&chars, i + 1, &mut line);
                    tokens.push(Token {
                        tok: Tok::Str(text),
                        line: start_line,
                    });
                    i = next;
                }
                ("b", '\'') => i = char_or_lifetime(&chars, i),
                ("r" | "br" | "cr", '"' | '#') => {
                    let mut hashes = 0;
                    let mut j = i;
                    while at(j) == '#' {
                        hashes += 1;
                        j += 1;
                    }
                    if at(j) == '"' {
                        let (text, next) = raw_quoted(&chars, j + 1, hashes, &mut line);
                        tokens.push(Token {
                            tok: Tok::Str(text),
                            line: start_line,
                        });
                        i = next;
                    } else {
                        // `r#name`: a raw identifier.
                        let start = j;
                        while j < chars.len() && is_ident_char(chars[j]) {
                            j += 1;
                        }
                        let name: String = chars[start..j].iter().collect();
                        tokens.push(Token {
                            tok: Tok::Ident(name),
                            line,
                        });
                        i = j;
                    }
                }
                _ => tokens.push(Token {
                    tok: Tok::Ident(word),
                    line,
                }),
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
        } else if c == ':' && at(i + 1) == ':' {
            tokens.push(Token {
                tok: Tok::Sep,
                line,
            });
            i += 2;
        } else {
            tokens.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    tokens
}

/// The text of a `"…"` literal whose content starts at `i`, and the index after its quote.
fn quoted(chars: &[char], mut i: usize, line: &mut usize) -> (String, usize) {
    let start = i;
    while i < chars.len() && chars[i] != '"' {
        if chars[i] == '\\' {
            i += 1;
        }
        if chars.get(i) == Some(&'\n') {
            *line += 1;
        }
        i += 1;
    }
    let end = i.min(chars.len());
    (chars[start..end].iter().collect(), i + 1)
}

/// The text of an `r#"…"#` literal whose content starts at `i`.
fn raw_quoted(chars: &[char], mut i: usize, hashes: usize, line: &mut usize) -> (String, usize) {
    let start = i;
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return (chars[start..i].iter().collect(), i + 1 + hashes);
        }
        if chars[i] == '\n' {
            *line += 1;
        }
        i += 1;
    }
    (chars[start..].iter().collect(), i)
}

/// Skips a char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime (`'a`) starting at the
/// quote at `i` (or at the `b` of a byte literal's quote at `i`).
fn char_or_lifetime(chars: &[char], i: usize) -> usize {
    let i = if chars[i] == '\'' { i } else { i + 1 };
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    if at(i + 1) == '\\' {
        let mut j = i + 2;
        while j < chars.len() && chars[j] != '\'' {
            j += 1;
        }
        j + 1
    } else if at(i + 2) == '\'' {
        i + 3
    } else {
        let mut j = i + 1;
        while j < chars.len() && is_ident_char(chars[j]) {
            j += 1;
        }
        j
    }
}

/// A module path inside its crate: `[]` is the crate root, `["erofs", "writer"]` is
/// `crate::erofs::writer`.
pub type ModPath = Vec<String>;

/// A `use` binding: `name` (or a glob) bound in `module` to the path `target` as written.
#[derive(Debug, Clone)]
pub struct UseBinding {
    /// The module the `use` is in.
    pub module: ModPath,
    /// The path as written, e.g. `["super", "format", "Inode"]`.
    pub target: Vec<String>,
    /// The bound name; `None` for a glob.
    pub name: Option<String>,
    /// Whether it is a `pub`/`pub(…)` re-export.
    pub public: bool,
    /// The line of the `use`.
    pub line: usize,
}

/// A path in code, e.g. `crate::erofs::format::Inode` or `super::Error`.
#[derive(Debug, Clone)]
pub struct CodePath {
    /// The module the path is in.
    pub module: ModPath,
    /// Its segments.
    pub segments: Vec<String>,
    /// Its line.
    pub line: usize,
}

/// What one file says, test-only items removed.
#[derive(Debug, Default)]
pub struct FileScan {
    /// `mod x;` declarations: the module they are in and the name.
    pub file_mods: Vec<(ModPath, String)>,
    /// Inline `mod x { … }` modules, as full paths.
    pub inline_mods: Vec<ModPath>,
    /// `use` bindings.
    pub uses: Vec<UseBinding>,
    /// Paths in code.
    pub paths: Vec<CodePath>,
    /// Items defined at module level: (module, name).
    pub items: Vec<(ModPath, String)>,
    /// `const`/`static` names defined anywhere, with their lines.
    pub consts: Vec<(String, usize)>,
    /// String literals with their lines.
    pub strings: Vec<(String, usize)>,
    /// Lines holding the `unsafe` keyword.
    pub unsafe_lines: Vec<usize>,
}

/// What a brace opened.
enum Frame {
    Module(String),
    Other,
}

/// Index just past the group opened at `i` (`(`, `[` or `{`), nesting counted.
fn skip_group(tokens: &[Token], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < tokens.len() {
        match tokens[j].tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// Index just past the item starting at `i`: its `;` at depth 0, or its closing `}`.
fn skip_item(tokens: &[Token], mut i: usize) -> usize {
    while i < tokens.len() {
        match tokens[i].tok {
            Tok::Punct(';') => return i + 1,
            Tok::Punct('{') => return skip_group(tokens, i),
            Tok::Punct('(' | '[') => i = skip_group(tokens, i),
            _ => i += 1,
        }
    }
    i
}

fn ident(tokens: &[Token], i: usize) -> Option<&str> {
    match tokens.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

fn punct(tokens: &[Token], i: usize, c: char) -> bool {
    matches!(tokens.get(i).map(|t| &t.tok), Some(Tok::Punct(p)) if *p == c)
}

fn sep(tokens: &[Token], i: usize) -> bool {
    matches!(tokens.get(i).map(|t| &t.tok), Some(Tok::Sep))
}

/// Scans one file whose module path is `module`.
pub fn scan_file(source: &str, module: &ModPath) -> FileScan {
    let tokens = tokenize(source);
    let mut scan = FileScan::default();
    let mut frames: Vec<Frame> = Vec::new();
    let mut public = false;
    let mut i = 0;
    let current = |frames: &[Frame]| -> ModPath {
        let mut path = module.clone();
        path.extend(frames.iter().filter_map(|f| match f {
            Frame::Module(name) => Some(name.clone()),
            Frame::Other => None,
        }));
        path
    };
    let at_module_level = |frames: &[Frame]| frames.iter().all(|f| matches!(f, Frame::Module(_)));
    while i < tokens.len() {
        let line = tokens[i].line;
        let was_public = std::mem::replace(&mut public, false);
        match &tokens[i].tok {
            Tok::Str(text) => {
                scan.strings.push((text.clone(), line));
                i += 1;
            }
            Tok::Punct('#') => {
                let open = if punct(&tokens, i + 1, '!') {
                    i + 2
                } else {
                    i + 1
                };
                if !punct(&tokens, open, '[') {
                    i += 1;
                    continue;
                }
                let end = skip_group(&tokens, open);
                let words: Vec<&str> = (open..end).filter_map(|k| ident(&tokens, k)).collect();
                let test_only = words.first() == Some(&"cfg")
                    && words.contains(&"test")
                    && !words.contains(&"not");
                let inner = open == i + 2;
                i = end;
                if test_only && !inner {
                    // Further attributes of the same item, then the item.
                    while punct(&tokens, i, '#') && punct(&tokens, i + 1, '[') {
                        i = skip_group(&tokens, i + 1);
                    }
                    i = skip_item(&tokens, i);
                }
            }
            Tok::Ident(word) => match word.as_str() {
                "pub" => {
                    public = true;
                    i += 1;
                    if punct(&tokens, i, '(') {
                        i = skip_group(&tokens, i);
                    }
                }
                "mod" => match (ident(&tokens, i + 1), tokens.get(i + 2).map(|t| &t.tok)) {
                    (Some(name), Some(Tok::Punct(';'))) => {
                        scan.file_mods.push((current(&frames), name.to_string()));
                        scan.items.push((current(&frames), name.to_string()));
                        i += 3;
                    }
                    (Some(name), Some(Tok::Punct('{'))) => {
                        let name = name.to_string();
                        scan.items.push((current(&frames), name.clone()));
                        frames.push(Frame::Module(name));
                        scan.inline_mods.push(current(&frames));
                        i += 3;
                    }
                    _ => i += 1,
                },
                "use" => {
                    let here = current(&frames);
                    let mut j = i + 1;
                    if sep(&tokens, j) {
                        j += 1;
                    }
                    let mut found = Vec::new();
                    j = use_tree(&tokens, j, Vec::new(), &mut found);
                    for (target, name) in found {
                        scan.uses.push(UseBinding {
                            module: here.clone(),
                            target,
                            name,
                            public: was_public,
                            line,
                        });
                    }
                    i = skip_item(&tokens, j);
                }
                "extern" if ident(&tokens, i + 1) == Some("crate") => i = skip_item(&tokens, i),
                "unsafe" => {
                    scan.unsafe_lines.push(line);
                    i += 1;
                }
                "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "union" => {
                    if let Some(name) = ident(&tokens, i + 1) {
                        if matches!(word.as_str(), "const" | "static") {
                            scan.consts.push((name.to_string(), line));
                        }
                        if at_module_level(&frames) {
                            scan.items.push((current(&frames), name.to_string()));
                        }
                    }
                    i += 1;
                }
                "macro_rules" if punct(&tokens, i + 1, '!') => {
                    if let Some(name) = ident(&tokens, i + 2) {
                        scan.items.push((current(&frames), name.to_string()));
                    }
                    i += 1;
                }
                _ => {
                    let starts_path = sep(&tokens, i + 1)
                        && !(i > 0 && sep(&tokens, i - 1))
                        && !(i > 0 && punct(&tokens, i - 1, '.'));
                    if starts_path {
                        let dollar = i > 0 && punct(&tokens, i - 1, '$');
                        let mut segments = vec![if dollar {
                            "crate".to_string()
                        } else {
                            word.clone()
                        }];
                        let mut j = i + 1;
                        while sep(&tokens, j) {
                            match ident(&tokens, j + 1) {
                                Some(next) => segments.push(next.to_string()),
                                None => break,
                            }
                            j += 2;
                        }
                        scan.paths.push(CodePath {
                            module: current(&frames),
                            segments,
                            line,
                        });
                        i = j;
                    } else {
                        i += 1;
                    }
                }
            },
            Tok::Punct('{') => {
                frames.push(Frame::Other);
                i += 1;
            }
            Tok::Punct('}') => {
                frames.pop();
                i += 1;
            }
            _ => i += 1,
        }
    }
    scan
}

/// Parses a use tree at `i` under `prefix`; pushes (path, bound name or None for a glob).
fn use_tree(
    tokens: &[Token],
    mut i: usize,
    mut prefix: Vec<String>,
    found: &mut Vec<(Vec<String>, Option<String>)>,
) -> usize {
    loop {
        if let Some(word) = ident(tokens, i) {
            prefix.push(word.to_string());
            i += 1;
            if sep(tokens, i) {
                i += 1;
                continue;
            }
            let mut name = if word == "self" {
                prefix.pop();
                prefix.last().cloned().unwrap_or_default()
            } else {
                word.to_string()
            };
            if ident(tokens, i) == Some("as") {
                if let Some(alias) = ident(tokens, i + 1) {
                    name = alias.to_string();
                }
                i += 2;
            }
            found.push((prefix, Some(name)));
            return i;
        } else if punct(tokens, i, '*') {
            found.push((prefix, None));
            return i + 1;
        } else if punct(tokens, i, '{') {
            i += 1;
            while i < tokens.len() && !punct(tokens, i, '}') {
                i = use_tree(tokens, i, prefix.clone(), found);
                // A `,` (or a token the grammar does not expect) ends this element.
                if !punct(tokens, i, '}') {
                    i += 1;
                }
            }
            return i + 1;
        } else {
            return i;
        }
    }
}

/// One module of a crate.
#[derive(Debug, Default)]
pub struct Module {
    /// The file the module's text is in (inline modules share their file's).
    pub file: PathBuf,
    /// Child modules' names.
    pub children: BTreeSet<String>,
    /// Names of items defined here.
    pub items: BTreeSet<String>,
    /// Names bound by `use`, to their written targets.
    pub imports: BTreeMap<String, Vec<String>>,
    /// Glob `use` targets as written.
    pub globs: Vec<Vec<String>>,
}

/// A crate's modules and the scans of its files.
#[derive(Debug, Default)]
pub struct CrateModules {
    /// Every module (file and inline) by path.
    pub modules: BTreeMap<ModPath, Module>,
    /// Each file's scan, by its node.
    pub files: BTreeMap<ModPath, FileScan>,
}

/// Reads the crate whose root file is `root` (`src/lib.rs` or `src/main.rs`), following
/// `mod` declarations that are not test-only.
pub fn read_crate(root: &Path) -> CrateModules {
    let mut krate = CrateModules::default();
    let mut pending: Vec<(PathBuf, ModPath)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((file, node)) = pending.pop() {
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let scan = scan_file(&source, &node);
        let mod_rs = matches!(
            file.file_name().and_then(|n| n.to_str()),
            Some("lib.rs" | "main.rs" | "mod.rs")
        );
        let dir = if mod_rs {
            file.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            file.with_extension("")
        };
        let mut paths = vec![node.clone()];
        paths.extend(scan.inline_mods.iter().cloned());
        for path in paths {
            let module = krate.modules.entry(path.clone()).or_default();
            module.file = file.clone();
            if let Some((last, parent)) = path.split_last() {
                if path.len() > node.len() {
                    krate
                        .modules
                        .entry(parent.to_vec())
                        .or_default()
                        .children
                        .insert(last.clone());
                }
            }
        }
        for (module, name) in &scan.file_mods {
            krate
                .modules
                .entry(module.clone())
                .or_default()
                .children
                .insert(name.clone());
            let mut sub_dir = dir.clone();
            for inline in &module[node.len()..] {
                sub_dir.push(inline);
            }
            let flat = sub_dir.join(format!("{name}.rs"));
            let nested = sub_dir.join(name).join("mod.rs");
            let child_file = if flat.exists() { flat } else { nested };
            let mut child = module.clone();
            child.push(name.clone());
            pending.push((child_file, child));
        }
        for (module, name) in &scan.items {
            krate
                .modules
                .entry(module.clone())
                .or_default()
                .items
                .insert(name.clone());
        }
        for binding in &scan.uses {
            let module = krate.modules.entry(binding.module.clone()).or_default();
            match &binding.name {
                Some(name) => {
                    module.imports.insert(name.clone(), binding.target.clone());
                }
                None => module.globs.push(binding.target.clone()),
            }
        }
        krate.files.insert(node, scan);
    }
    krate
}

/// How deep re-exports are followed before giving up (a guard against `use` loops).
const MAX_REEXPORT_DEPTH: usize = 16;

impl CrateModules {
    /// The module (not its node) a path written in `module` leads to: the module that
    /// defines the named item, following re-exports; `None` for paths outside the crate.
    pub fn resolve(&self, module: &ModPath, segments: &[String]) -> Option<ModPath> {
        self.resolve_at(module, segments, 0)
    }

    fn resolve_at(&self, module: &ModPath, segments: &[String], depth: usize) -> Option<ModPath> {
        if depth > MAX_REEXPORT_DEPTH {
            return None;
        }
        let (first, rest) = segments.split_first()?;
        let (mut base, mut rest): (ModPath, &[String]) = match first.as_str() {
            "crate" => (Vec::new(), rest),
            "self" => (module.clone(), rest),
            "super" => {
                let mut base = module.clone();
                base.pop();
                let mut rest = rest;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                (base, rest)
            }
            name => {
                let here = self.modules.get(module)?;
                if here.children.contains(name) {
                    (module.clone(), segments)
                } else if let Some(target) = here.imports.get(name) {
                    if target.first() == Some(first) && target.len() == 1 {
                        return None;
                    }
                    let mut full = target.clone();
                    full.extend_from_slice(rest);
                    return self.resolve_at(module, &full, depth + 1);
                } else {
                    return None;
                }
            }
        };
        while let Some((next, after)) = rest.split_first() {
            let info = self.modules.get(&base)?;
            if info.children.contains(next) {
                base.push(next.clone());
                rest = after;
                continue;
            }
            // An item of `base`, or a name it imports (a re-export or a private import
            // visible to descendants): follow the import to where it is defined.
            if info.items.contains(next) {
                return Some(base);
            }
            if let Some(target) = info.imports.get(next) {
                let mut full = target.clone();
                full.extend_from_slice(after);
                return self.resolve_at(&base, &full, depth + 1).or(Some(base));
            }
            for glob in &info.globs {
                let glob_module = self.resolve_at(&base, glob, depth + 1);
                let mut full = glob.clone();
                full.extend_from_slice(rest);
                if let Some(found) = self.resolve_at(&base, &full, depth + 1) {
                    if self.defines(&found, next) || Some(&found) != glob_module.as_ref() {
                        return Some(found);
                    }
                }
            }
            return Some(base);
        }
        Some(base)
    }

    fn defines(&self, module: &ModPath, name: &str) -> bool {
        self.modules
            .get(module)
            .is_some_and(|m| m.items.contains(name))
    }
}

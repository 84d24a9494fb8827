//! The shape of the code, held by tests: no import cycles among the library's modules, no
//! function longer than 120 lines, and no environment variable read below `main.rs` (the
//! command line passes what the environment says into the library).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest function allowed in `src/`, in lines (signature to closing brace).
const MAX_FUNCTION_LINES: usize = 120;

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

/// The file's code with test-only items (`#[cfg(test)]`: tests may reach anywhere) and
/// comment lines (docs may name any module) blanked, so line numbers stay the file's.
fn product_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut skipping: Option<i64> = None; // brace depth inside a test-only item
    let mut pending = false; // saw `#[cfg(test)]`, the item has not opened yet
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]" {
            pending = true;
            out.push("");
            continue;
        }
        if pending || skipping.is_some() {
            let depth = skipping.unwrap_or(0) + line.matches('{').count() as i64 - line.matches('}').count() as i64;
            let opened = skipping.is_some() || line.contains('{');
            pending = false;
            skipping = (opened && depth > 0).then_some(depth);
            out.push("");
            continue;
        }
        out.push(if trimmed.starts_with("//") { "" } else { line });
    }
    out.join("\n")
}

/// The top-level module a file belongs to (`src/models/cnn.rs` → `models`); `None` for the
/// crate root and the binary.
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).unwrap();
    let first = relative.components().next()?.as_os_str().to_string_lossy().to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (!["lib", "main"].contains(&name.as_str())).then_some(name)
}

/// Every `crate::<module>` a piece of code names.
fn crate_references(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .filter(|(i, _)| !code[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(i, m)| code[i + m.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn the_library_modules_import_each_other_without_cycles() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in sources() {
        let Some(module) = module_of(&path) else { continue };
        let refs = crate_references(&product_code(&path));
        graph.entry(module.clone()).or_default().extend(refs.into_iter().filter(|r| *r != module));
    }
    assert!(graph.len() > 20 && graph["runner"].contains("protocol"), "the scan sees the modules: {graph:?}");
    // The search finds a cycle when there is one.
    let toy: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a")].iter().map(|(x, y)| (x.to_string(), BTreeSet::from([y.to_string()]))).collect();
    assert_eq!(find_cycle(&toy), Some(vec!["a".to_string(), "b".into(), "c".into()]));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle among modules: {}", cycle.join(" -> "));
    }
}

/// A cycle of `graph`, if it has one (depth-first search: a node reached again while on the
/// stack closes a cycle).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &BTreeMap<String, BTreeSet<String>>, state: &mut BTreeMap<String, u8>, stack: &mut Vec<String>) -> Option<Vec<String>> {
        match state.get(node) {
            Some(1) => return Some(stack[stack.iter().position(|n| n == node).expect("on the stack")..].to_vec()),
            Some(2) => return None,
            _ => {}
        }
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    graph.keys().find_map(|node| visit(node, graph, &mut state, &mut Vec::new()))
}

/// The functions of a file longer than `limit` lines: (name, first line, lines).
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut rest = line.trim_start();
        for prefix in ["pub(crate) ", "pub(super) ", "pub ", "const ", "unsafe ", "async ", "extern \"C\" "] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        let Some(signature) = rest.strip_prefix("fn ") else { continue };
        let name: String = signature.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        // The body starts at the first `{` before any `;` (a declaration has none).
        let mut depth = 0i64;
        let mut opened = false;
        for (j, body_line) in lines.iter().enumerate().skip(i) {
            if !opened && body_line.contains(';') && !body_line.contains('{') {
                break;
            }
            depth += body_line.matches('{').count() as i64 - body_line.matches('}').count() as i64;
            opened |= body_line.contains('{');
            if opened && depth <= 0 {
                if j + 1 - i > limit {
                    out.push((name.clone(), i + 1, j + 1 - i));
                }
                break;
            }
        }
    }
    out
}

#[test]
fn no_function_in_src_is_longer_than_120_lines() {
    // The scanner finds a long function when there is one.
    let long = format!("fn long() {{\n{}}}\n", "    let _ = 1;\n".repeat(MAX_FUNCTION_LINES));
    assert_eq!(long_functions(&long, MAX_FUNCTION_LINES), vec![("long".to_string(), 1, MAX_FUNCTION_LINES + 2)]);
    let mut found = Vec::new();
    for path in sources() {
        for (name, line, n) in long_functions(&std::fs::read_to_string(&path).unwrap(), MAX_FUNCTION_LINES) {
            found.push(format!("{}:{line} `{name}` has {n} lines", path.display()));
        }
    }
    assert!(found.is_empty(), "split these functions:\n{}", found.join("\n"));
}

#[test]
fn only_main_reads_the_environment() {
    let mut found = Vec::new();
    for path in sources().into_iter().filter(|p| !p.ends_with("main.rs")) {
        for (i, line) in product_code(&path).lines().enumerate() {
            if ["env::var(", "env::var_os(", "env::vars(", "env::vars_os("].iter().any(|read| line.contains(read)) {
                found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "the library reads the environment; pass the value in from main.rs:\n{}", found.join("\n"));
}

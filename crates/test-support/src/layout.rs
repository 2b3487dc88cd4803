//! Checks of a crate's source tree that keep it readable: which top-level modules use which
//! (`crate::x` paths, test modules left out), import circles among them, and files too long to
//! read. Each crate's `tests/layout.rs` runs them on its own `src/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it names with `crate::`.
pub type ModuleGraph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The top-level module a file of `src` belongs to (`None` for the crate roots).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// The text of a file without its `#[cfg(test)]` module (tests may use anything).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The names `crate::NAME` that `text` mentions.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        // `rollcall_vision::…` or `some_crate::…` are other crates.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.insert(name);
        }
    }
    names
}

/// Which top-level module of `src` uses which.
pub fn module_graph(src: &Path) -> ModuleGraph {
    let mut graph = ModuleGraph::new();
    for file in rust_files(src) {
        let Some(module) = top_module(src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("source file");
        let uses = graph.entry(module.clone()).or_default();
        uses.extend(
            crate_paths(without_tests(&text))
                .into_iter()
                .filter(|m| *m != module),
        );
    }
    graph
}

/// Every module that can reach itself through the graph, with one circle through it
/// (`a → b → a`). Empty when the modules form layers.
pub fn circles(graph: &ModuleGraph) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for start in graph.keys() {
        // Breadth-first from `start`, remembering each module's predecessor.
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.as_str()]);
        let mut closing = None;
        while let Some(m) = queue.pop_front() {
            for next in graph.get(m).into_iter().flatten() {
                if next == start {
                    closing = Some(m);
                    break;
                }
                if !previous.contains_key(next.as_str()) {
                    previous.insert(next, m);
                    queue.push_back(next);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        if let Some(mut m) = closing {
            let mut path = vec![start.clone()];
            while m != start {
                path.push(m.to_owned());
                m = previous[m];
            }
            path.reverse();
            path.insert(0, start.clone());
            found.push(path);
        }
    }
    found
}

/// Files of `src` with more than `max` lines, with their length.
pub fn long_files(src: &Path, max: usize) -> Vec<(PathBuf, usize)> {
    rust_files(src)
        .into_iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(&f).ok()?.lines().count();
            (n > max).then_some((f, n))
        })
        .collect()
}

/// The source directory of the crate whose tests call this (`CARGO_MANIFEST_DIR/src`).
pub fn src_of(manifest_dir: &str) -> PathBuf {
    PathBuf::from(manifest_dir).join("src")
}

/// Panics, naming them, on import circles between `src`'s top-level modules.
pub fn assert_no_import_circles(src: &Path) {
    let graph = module_graph(src);
    assert!(graph.len() > 5, "no modules found in {}", src.display());
    let found = circles(&graph);
    assert!(found.is_empty(), "import circles: {found:?}\n{graph:#?}");
}

/// Panics, naming them, on files of `src` over `max` lines.
pub fn assert_no_file_over(src: &Path, max: usize) {
    assert_eq!(long_files(src, max), vec![], "files over {max} lines");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> ModuleGraph {
        let mut g = ModuleGraph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    }

    #[test]
    fn layers_have_no_circles_and_a_loop_is_found() {
        assert!(circles(&graph(&[("http", "service"), ("service", "store")])).is_empty());
        let loops = circles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]));
        assert_eq!(loops.len(), 3, "{loops:?}");
        assert!(loops.contains(&vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    }

    #[test]
    fn crate_paths_skip_other_crates_and_tests() {
        let text = "use crate::store::Store;\nuse some_crate::x;\nlet a = crate::domain::Day;\n\
                    #[cfg(test)]\nmod tests {\n use crate::http::app;\n}\n";
        let names = crate_paths(without_tests(text));
        assert_eq!(names, BTreeSet::from(["domain".into(), "store".into()]));
    }
}

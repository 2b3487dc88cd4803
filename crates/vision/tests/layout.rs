//! The source tree keeps the shape docs/architecture.md describes: its top-level modules form
//! layers (no module reaches back to one that uses it) and no file is too long to read.

use rollcall_test_support::layout::{circles, long_files, module_graph};
use std::path::PathBuf;

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn modules_form_layers_without_import_circles() {
    let graph = module_graph(&src());
    assert!(graph.len() > 5, "no modules found in {}", src().display());
    let found = circles(&graph);
    assert!(found.is_empty(), "import circles: {found:?}\n{graph:#?}");
}

#[test]
fn no_source_file_is_over_800_lines() {
    assert_eq!(long_files(&src(), 800), vec![]);
}

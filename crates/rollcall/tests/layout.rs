//! The source tree keeps the shape docs/architecture.md describes: its top-level modules form
//! layers (no module reaches back to one that uses it) and no file is too long to read.

use rollcall_test_support::layout::{assert_no_file_over, assert_no_import_circles, src_of};

#[test]
fn modules_form_layers_without_import_circles() {
    assert_no_import_circles(&src_of(env!("CARGO_MANIFEST_DIR")));
}

#[test]
fn no_source_file_is_over_800_lines() {
    assert_no_file_over(&src_of(env!("CARGO_MANIFEST_DIR")), 800);
}

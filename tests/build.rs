//! Generates one test per gallery entry (`examples/submissions/<chapter>/<name>/`), so
//! that an entry added is an entry tested, with no list to keep in step.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let gallery = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/submissions");
    println!("cargo::rerun-if-changed={}", gallery.display());
    let mut entries = Vec::new();
    for chapter in std::fs::read_dir(&gallery).into_iter().flatten().flatten() {
        for entry in std::fs::read_dir(chapter.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.path().join("submission.toml").is_file() {
                entries.push(format!(
                    "{}/{}",
                    chapter.file_name().to_string_lossy(),
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    entries.sort();
    let mut out = String::new();
    for entry in &entries {
        let name: String = entry
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let _ = writeln!(
            out,
            "#[test]\nfn {name}() {{\n    harness::testing::assert_gallery_entry({entry:?});\n}}\n"
        );
    }
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out_dir).join("gallery_tests.rs"), out).expect("write the tests");
}

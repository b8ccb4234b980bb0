//! The README's tutorial is this crate, word for word: each code block
//! the README marks with `<!-- file: examples/hello/PATH -->` must equal
//! that file, so what a newcomer copies is what CI compiles and runs. And
//! the binary does what the README says it prints, on both transports.

use std::path::Path;
use std::process::Command;

/// The README's blocks marked as files of this crate: (path, text).
fn marked_blocks(readme: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .trim()
            .strip_prefix("<!-- file: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "{path}: a fenced block must follow its marker"
        );
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        blocks.push((path.to_owned(), body.join("\n") + "\n"));
    }
    blocks
}

#[test]
fn the_readme_shows_this_crate_word_for_word() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let blocks = marked_blocks(&readme);
    let paths: Vec<&str> = blocks.iter().map(|(path, _)| path.as_str()).collect();
    for expected in [
        "examples/hello/proto/greeter/v1/greeter.proto",
        "examples/hello/build.rs",
        "examples/hello/src/lib.rs",
        "examples/hello/src/main.rs",
        "examples/hello/tests/under_faults.rs",
    ] {
        assert!(
            paths.contains(&expected),
            "the README shows {expected}: {paths:?}"
        );
    }
    for (path, shown) in &blocks {
        let file =
            std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(shown, &file, "the README's {path} differs from the file");
    }
}

/// The dependency sections of a manifest, comments dropped and each
/// framework path cut to `framework/...` (the README's paths point into a
/// clone beside the user's crate, this crate's into the workspace).
fn dependency_lines(manifest: &str) -> Vec<String> {
    let from = manifest.find("[dependencies]").expect("[dependencies]");
    manifest[from..]
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim_end())
        .filter(|line| !line.is_empty())
        .map(
            |line| match (line.find("path = \""), line.find("framework/")) {
                (Some(path), Some(framework)) => {
                    format!(
                        "{}{}",
                        &line[..path + "path = \"".len()],
                        &line[framework..]
                    )
                }
                _ => line.to_owned(),
            },
        )
        .collect()
}

#[test]
fn the_readme_dependencies_are_this_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let shown = readme
        .split("<!-- dependencies of examples/hello/Cargo.toml -->")
        .nth(1)
        .and_then(|rest| rest.split("```toml\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("the README shows the dependencies");
    let manifest =
        std::fs::read_to_string(root.join("examples/hello/Cargo.toml")).expect("Cargo.toml");
    assert_eq!(dependency_lines(shown), dependency_lines(&manifest));
}

#[test]
fn the_tutorial_prints_what_the_readme_says_on_both_transports() {
    for transport in ["tcp", "udp"] {
        let output = Command::new(env!("CARGO_BIN_EXE_hello"))
            .arg(transport)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{transport}: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            ["Hello, Ada!", "Hello, Grace!", "notice: welcome"],
            "{transport}"
        );
    }
}

#[test]
fn the_simulation_crate_docs_show_this_crates_fault_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs =
        std::fs::read_to_string(root.join("framework/protowright-sim/src/lib.rs")).expect("lib.rs");
    let test =
        std::fs::read_to_string(root.join("examples/hello/tests/under_faults.rs")).expect("test");
    let shown: String = test
        .lines()
        .map(|line| format!("{}\n", format!("//! {line}").trim_end()))
        .collect();
    assert!(
        docs.contains(&shown),
        "protowright-sim's crate docs show tests/under_faults.rs as it is"
    );
}

//! `silt test rules` against `promtool test rules` (Debian's Prometheus
//! 2.42) on the same test files (tests/data/rules_unittest): the same
//! verdict for each file, the same exit status for all files at once, and
//! for most failures the same report, word for word.
//!
//! File names say what each file must give: `pass_*` passes, `fail_*`
//! fails. Without promtool the test checks Silt's verdicts alone (and
//! fails in CI, where promtool must be installed).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rules_unittest")
}

/// The test files, sorted.
fn test_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data_dir())
        .expect("reading tests/data/rules_unittest")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.yml"))
        .collect();
    v.sort();
    v
}

/// Runs `bin <args> files` in the data directory (so reports name the
/// files the same way).
fn run(bin: &Path, args: &[&str], files: &[String]) -> Output {
    Command::new(bin)
        .args(args)
        .args(files)
        .current_dir(data_dir())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Failures whose report must match promtool's exactly. (The rule error's
/// message lists series in Go's map order, so it is left out.)
const SAME_REPORT: &[&str] = &[
    "fail_annotation.test.yml",
    "fail_extra_alert.test.yml",
    "fail_missing_alert.test.yml",
    "fail_nan.test.yml",
    "fail_unknown_field.test.yml",
    "fail_value.test.yml",
];

#[test]
fn test_rules_agrees_with_promtool() {
    let silt = PathBuf::from(env!("CARGO_BIN_EXE_silt"));
    let promtool = common::require_program("promtool");
    let files = test_files();
    assert!(
        files.iter().filter(|f| f.starts_with("pass_")).count() >= 4
            && files.iter().filter(|f| f.starts_with("fail_")).count() >= 4,
        "test data missing: {files:?}"
    );
    for f in &files {
        let expect_pass = f.starts_with("pass_");
        let s = run(&silt, &["test", "rules"], std::slice::from_ref(f));
        let (s_out, s_err) = text(&s);
        assert_eq!(
            s.status.code(),
            Some(if expect_pass { 0 } else { 1 }),
            "silt test rules {f}:\n{s_out}{s_err}"
        );
        assert!(
            s_out.starts_with(&format!("Unit Testing:  {f}\n")),
            "{f}: {s_out}"
        );
        if expect_pass {
            assert!(s_out.contains("  SUCCESS\n"), "{f}: {s_out}");
        } else {
            assert!(s_err.starts_with("  FAILED:\n"), "{f}: {s_err}");
        }
        let Some(promtool) = &promtool else {
            continue;
        };
        let p = run(promtool, &["test", "rules"], std::slice::from_ref(f));
        let (p_out, p_err) = text(&p);
        assert_eq!(
            p.status.code(),
            s.status.code(),
            "{f}: promtool says\n{p_out}{p_err}\nsilt says\n{s_out}{s_err}"
        );
        assert_eq!(s_out, p_out, "{f}: stdout differs");
        if SAME_REPORT.contains(&f.as_str()) {
            assert_eq!(s_err, p_err, "{f}: report differs");
        }
    }

    // All files at once: one failure fails the run; passing files alone pass.
    let s = run(&silt, &["test", "rules"], &files);
    assert_eq!(s.status.code(), Some(1));
    let (s_out, _) = text(&s);
    assert_eq!(
        s_out.matches("Unit Testing:  ").count(),
        files.len(),
        "{s_out}"
    );
    let passing: Vec<String> = files
        .iter()
        .filter(|f| f.starts_with("pass_"))
        .cloned()
        .collect();
    let s_ok = run(&silt, &["test", "rules"], &passing);
    assert_eq!(s_ok.status.code(), Some(0), "{:?}", text(&s_ok));
    if let Some(promtool) = &promtool {
        let p = run(promtool, &["test", "rules"], &files);
        assert_eq!(p.status.code(), s.status.code());
        let p_ok = run(promtool, &["test", "rules"], &passing);
        assert_eq!(p_ok.status.code(), s_ok.status.code());
        assert_eq!(text(&p_ok).0, text(&s_ok).0);
    }
}

/// A missing file fails, as in promtool, and the other files still run.
#[test]
fn missing_test_file_fails() {
    let silt = PathBuf::from(env!("CARGO_BIN_EXE_silt"));
    let files = [
        "nope.test.yml".to_string(),
        "pass_group_order.test.yml".to_string(),
    ];
    let s = run(&silt, &["test", "rules"], &files);
    let (out, err) = text(&s);
    assert_eq!(s.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("open nope.test.yml: no such file or directory"),
        "{err}"
    );
    assert!(
        out.contains("Unit Testing:  pass_group_order.test.yml\n  SUCCESS\n"),
        "{out}"
    );
}

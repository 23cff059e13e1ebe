//! A person reads these reports: render one of each kind in headless
//! Chromium (Debian's `chromium` package) and check that the charts and
//! tables are in the page, that it lays out (a screenshot shows the charts'
//! colours, not a blank page) and that the capacity report prints (a PDF).
//! Skipped when no Chromium is installed, unless `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::DateTime;
use common::*;
use reports::{Format, Sources, config};

fn chromium() -> Option<PathBuf> {
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs Chromium headless with `args` on `page`; returns stdout.
fn run(bin: &Path, profile: &Path, args: &[String], page: &Path) -> String {
    let out = Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Inked (not near-white) pixels, pixels of the charts' first colour
/// (#0072b2) and all pixels of a PNG screenshot.
fn inspect(png_path: &Path) -> (usize, usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.width, 1280);
    let channels = info.color_type.samples();
    assert!(channels >= 3);
    let (mut ink, mut blue, mut total) = (0usize, 0usize, 0usize);
    for px in buf[..info.buffer_size()].chunks(channels) {
        total += 1;
        let (r, g, b) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
        if r < 200 || g < 200 || b < 200 {
            ink += 1;
        }
        if r.abs() < 40 && (g - 0x72).abs() < 40 && (b - 0xb2).abs() < 40 {
            blue += 1;
        }
    }
    (ink, blue, total)
}

#[test]
fn reports_render_in_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is not installed (apt-get install chromium)");
        }
        eprintln!("skipping: chromium is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let end = end_ms();
    fill(&db, end);
    let sources = Sources {
        db,
        history: Some(history(&dir.path().join("history"), end)),
        query: Default::default(),
    };
    let profile = dir.path().join("profile");
    let yaml = "reports:
  - {name: cap, kind: capacity, period: 2d, filters: {selector: '{job=\"node\"}'}}
  - {name: sla, kind: sla, period: 2d}
  - {name: alerts, kind: alerts, period: 2d}
  - {name: trends, kind: trends, period: 2d, filters: {selector: '{job=\"node\"}'}}
";
    let mut kept = Vec::new();
    for def in config::parse(yaml, "t.yml").unwrap() {
        let end = DateTime::from_timestamp_millis(end).unwrap();
        let doc = reports::compute(&sources, &def, end).unwrap();
        let files = reports::render::render(&doc, &[Format::Html], "run-1").unwrap();
        let page = dir.path().join(format!("{}.html", def.name));
        std::fs::write(&page, &files[0].bytes).unwrap();

        // The DOM as Chromium parsed it: charts and tables are there.
        let dom = run(&bin, &profile, &["--dump-dom".into()], &page);
        let svgs = dom.matches("<svg").count();
        let min_svgs = if def.name == "cap" { 5 } else { 2 };
        assert!(
            svgs >= min_svgs,
            "{}: {svgs} charts in {dom:.2000}",
            def.name
        );
        assert!(dom.contains("<table"), "{}: no table", def.name);
        assert!(
            dom.contains("class=\"series\""),
            "{}: line charts have lines",
            def.name
        );
        if def.name == "cap" {
            assert!(dom.matches("<table").count() >= 4);
            assert!(dom.contains("<td>busy</td>"));
            assert!(dom.contains("class=\"bar\""), "bar charts have bars");
        }

        // It lays out: the screenshot is not blank and shows the charts' blue.
        let shot = dir.path().join(format!("{}.png", def.name));
        run(
            &bin,
            &profile,
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1280,2400".into(),
            ],
            &page,
        );
        let (ink, blue, total) = inspect(&shot);
        assert!(
            ink * 100 > total,
            "{}: screenshot is nearly blank: {ink} of {total} pixels inked",
            def.name
        );
        assert!(
            blue > 300,
            "{}: no chart colour in the screenshot ({blue} pixels)",
            def.name
        );
        kept.push(page);
        kept.push(shot);
    }
    let page = dir.path().join("cap.html");

    // It prints.
    let pdf = dir.path().join("report.pdf");
    run(
        &bin,
        &profile,
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
        ],
        &page,
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    assert!(bytes.len() > 10_000, "PDF of {} bytes", bytes.len());

    // For a person to look at: SILT_REPORT_SAMPLES=<dir> keeps the files.
    if let Ok(keep) = std::env::var("SILT_REPORT_SAMPLES") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).unwrap();
        kept.push(pdf);
        for f in &kept {
            std::fs::copy(f, keep.join(f.file_name().unwrap())).unwrap();
        }
    }
}

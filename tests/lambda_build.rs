//! Builds the four Lambda functions for real (cargo-zigbuild, x86_64, glibc 2.34) and checks their zips with tools other than ours.
//!
//! Needs target/zig from `scripts/setup-zig` (CI runs it); without it the
//! test fails saying so. Zips are read with Python's `zipfile`, binaries with
//! `readelf`, hashes with `sha256sum`, so nothing here trusts uniflow's own
//! zip writer or ELF reader.

#![allow(clippy::disallowed_methods)] // runs real processes and tools

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Run, root, run, uniflow_command};

const ROLES: [&str; 4] = ["ingest", "processor", "connector", "management"];

/// The pinned cargo-zigbuild of `scripts/setup-zig`.
fn zigbuild() -> PathBuf {
    let path = root().join("target/zig/bin/cargo-zigbuild");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup-zig (it installs the pinned cargo-zigbuild and zig)",
        path.display()
    );
    path
}

/// `uniflow __build-functions --out OUT [ARGS...]` with the pinned zigbuild.
fn build_functions(out: &Path, args: &[&str]) -> Run {
    run(uniflow_command()
        .env("UNIFLOW_ZIGBUILD", zigbuild())
        .arg("__build-functions")
        .arg("--out")
        .arg(out)
        .args(args))
}

/// The keys printed by a successful build, checked against the template's
/// `<Role>CodeKey` pattern and the file's `sha256sum`.
fn keys(result: &Run, out: &Path) -> Vec<String> {
    let start = result.stderr.len().saturating_sub(4000);
    let start = (start..result.stderr.len())
        .find(|&i| result.stderr.is_char_boundary(i))
        .unwrap_or(start);
    let tail = &result.stderr[start..];
    assert_eq!(
        result.code, 0,
        "the build failed; its stderr ends with:\n{tail}"
    );
    let keys: Vec<String> = result.stdout.lines().map(str::to_owned).collect();
    assert_eq!(keys.len(), 4, "{}", result.stdout);
    for (key, role) in keys.iter().zip(ROLES) {
        let hash = key
            .strip_prefix(&format!("lambda/{role}/"))
            .and_then(|rest| rest.strip_suffix(".zip"))
            .unwrap_or_else(|| panic!("{key} is not lambda/{role}/<sha256>.zip"));
        assert_eq!(hash.len(), 64, "{key}");
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{key}"
        );
        let sum = Command::new("sha256sum")
            .arg(out.join(key))
            .output()
            .unwrap();
        assert!(sum.status.success());
        let sum = String::from_utf8(sum.stdout).unwrap();
        assert_eq!(
            sum.split_whitespace().next(),
            Some(hash),
            "{key} is named by its hash"
        );
    }
    keys
}

/// What Python's zipfile sees in a zip: one line per entry
/// (`name mode compress_type date_time`), and the entry `bootstrap` written
/// to `extract_to`.
fn python_zip_listing(zip: &Path, extract_to: &Path) -> String {
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None, "a CRC does not match"
    for info in z.infolist():
        print(info.filename, oct(info.external_attr >> 16), info.compress_type, info.date_time)
    with open(sys.argv[2], "wb") as out:
        out.write(z.read("bootstrap"))
"#;
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .arg(extract_to)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "python's zipfile cannot read {}: {}",
        zip.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The newest `GLIBC_x.y` in `readelf --version-info`, and every one it lists.
fn readelf_glibc(binary: &Path) -> (Option<(u32, u32)>, Vec<String>) {
    let output = Command::new("readelf")
        .args(["--version-info", "--wide"])
        .arg(binary)
        .output()
        .expect("readelf runs");
    assert!(output.status.success(), "readelf {}", binary.display());
    let text = String::from_utf8(output.stdout).unwrap();
    let names: Vec<String> = text
        .split_whitespace()
        .filter(|word| word.starts_with("GLIBC_"))
        .map(str::to_owned)
        .collect();
    let newest = names
        .iter()
        .filter_map(|name| {
            let mut parts = name.strip_prefix("GLIBC_")?.split('.');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .max();
    (newest, names)
}

#[test]
fn the_functions_build_into_reproducible_x86_64_glibc_2_34_zips() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second, prebuilt) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("bin"),
    );
    std::fs::create_dir_all(&prebuilt).unwrap();

    let keys_first = keys(&build_functions(&first, &[]), &first);
    for (key, role) in keys_first.iter().zip(ROLES) {
        let binary = prebuilt.join(format!("uniflow-{role}"));
        let listing = python_zip_listing(&first.join(key), &binary);
        assert_eq!(
            listing, "bootstrap 0o100755 8 (1980, 1, 1, 0, 0, 0)\n",
            "{key}: exactly one entry, an executable bootstrap, deflated, dated 1980-01-01"
        );
        let bytes = std::fs::read(&binary).unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF", "{role} is an ELF");
        assert_eq!(bytes[4], 2, "{role} is 64-bit");
        assert_eq!(
            u16::from_le_bytes([bytes[18], bytes[19]]),
            62,
            "{role} is x86_64"
        );
        let (newest, names) = readelf_glibc(&binary);
        let newest = newest.unwrap_or_else(|| panic!("{role} links against glibc"));
        assert!(
            newest <= (2, 34),
            "{role} needs glibc {newest:?}: {names:?}"
        );
    }

    // A second build (cargo's artifacts now warm) gives the same bytes.
    let keys_second = keys(&build_functions(&second, &[]), &second);
    assert_eq!(keys_first, keys_second);
    for key in &keys_first {
        assert_eq!(
            std::fs::read(first.join(key)).unwrap(),
            std::fs::read(second.join(key)).unwrap(),
            "{key}"
        );
    }

    // The binaries alone, taken as prebuilt, zip to the same keys.
    let again = dir.path().join("c");
    let from_binaries = build_functions(&again, &["--functions-dir", prebuilt.to_str().unwrap()]);
    assert_eq!(keys(&from_binaries, &again), keys_first);
}

#[test]
fn a_prebuilt_binary_needing_a_newer_glibc_is_refused() {
    // Debian 12's python3.11 needs GLIBC_2.35, newer than provided.al2023's.
    let python = std::fs::canonicalize("/usr/bin/python3").unwrap();
    let (newest, names) = readelf_glibc(&python);
    assert!(
        newest > Some((2, 34)),
        "this test needs a binary needing glibc > 2.34; {} needs {names:?}",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    for role in ROLES {
        std::fs::copy(&python, dir.path().join(format!("uniflow-{role}"))).unwrap();
    }
    let (major, minor) = newest.unwrap();
    let result = run(uniflow_command()
        .arg("__build-functions")
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--functions-dir")
        .arg(dir.path()));
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert!(
        result.stderr.contains("the ingest function's binary")
            && result
                .stderr
                .contains(&format!("needs glibc {major}.{minor}"))
            && result.stderr.contains("provided.al2023 has glibc 2.34"),
        "{}",
        result.stderr
    );
    assert!(!dir.path().join("out").exists(), "nothing is written");
}

#[test]
fn a_missing_zigbuild_says_to_run_setup_zig() {
    let dir = tempfile::tempdir().unwrap();
    let result = run(uniflow_command()
        .env("UNIFLOW_ZIGBUILD", dir.path().join("cargo-zigbuild"))
        .arg("__build-functions")
        .arg("--out")
        .arg(dir.path()));
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert!(
        result
            .stderr
            .contains("run scripts/setup-zig, or pass --functions-dir"),
        "{}",
        result.stderr
    );
}

//! The Lambda functions' code: built for provided.al2023 (x86_64, glibc 2.34), zipped reproducibly and addressed by content.
//!
//! [`build`] runs `cargo zigbuild` (zig links against glibc 2.34's symbol
//! versions, whatever this machine's glibc is), checks each binary is an
//! x86_64 ELF needing no newer glibc than provided.al2023 ships, and wraps it
//! in a zip holding the single entry `bootstrap`. The zip's bytes depend on
//! the binary alone, so its SHA-256 names it in the artifacts bucket
//! (`lambda/<role>/<sha256>.zip`, the template's `<Role>CodeKey`): an
//! unchanged function keeps its key and CloudFormation leaves it alone.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use flate2::Compression;
use flate2::write::DeflateEncoder;
use object::elf::{EM_X86_64, FileHeader64};
use object::read::elf::FileHeader;
use sha2::{Digest, Sha256};

use crate::ExitStatus;

/// The functions: their role (the template's `<Role>CodeKey`) and the
/// binary of `uniflow-runtime-aws` that runs them.
pub const FUNCTIONS: [(&str, &str); 4] = [
    ("ingest", "uniflow-ingest"),
    ("processor", "uniflow-processor"),
    ("connector", "uniflow-connector"),
    ("management", "uniflow-management"),
];

/// The target cargo-zigbuild builds for: x86_64 Linux, linked against the
/// symbol versions of glibc 2.34.
const ZIG_TARGET: &str = "x86_64-unknown-linux-gnu.2.34";

/// The newest glibc a binary may need: provided.al2023 ships glibc 2.34.
pub const MAX_GLIBC: (u32, u32) = (2, 34);

/// One function's deployable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionZip {
    /// `ingest`, `processor`, `connector` or `management`.
    pub role: &'static str,
    /// The zip: one entry, `bootstrap`.
    pub bytes: Vec<u8>,
    /// Lowercase hex SHA-256 of [`FunctionZip::bytes`].
    pub sha256: String,
    /// Its key in the artifacts bucket: `lambda/<role>/<sha256>.zip`.
    pub key: String,
}

/// Where the functions' binaries come from.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The uniflow workspace that is built.
    pub source: PathBuf,
    /// A directory already holding the four binaries (`uniflow-ingest`, ...):
    /// nothing is built.
    pub prebuilt: Option<PathBuf>,
    /// The cargo-zigbuild executable. Its directory is put first on `PATH`
    /// for the build, so zig is found through that venv's `python -m ziglang`.
    pub zigbuild: PathBuf,
}

impl BuildOptions {
    /// Builds this binary's own source (the CLI crate's workspace) with
    /// `$UNIFLOW_ZIGBUILD`, or else `target/zig/bin/cargo-zigbuild` there
    /// (made by `scripts/setup-zig`); with `prebuilt`, builds nothing.
    pub fn new(prebuilt: Option<PathBuf>) -> Self {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let zigbuild = std::env::var_os("UNIFLOW_ZIGBUILD")
            .filter(|v| !v.is_empty())
            .map_or_else(
                || source.join("target/zig/bin/cargo-zigbuild"),
                PathBuf::from,
            );
        Self {
            source,
            prebuilt,
            zigbuild,
        }
    }
}

/// Builds (or takes from [`BuildOptions::prebuilt`]) the four binaries,
/// checks them and zips each, in [`FUNCTIONS`] order.
pub fn build(options: &BuildOptions) -> anyhow::Result<Vec<FunctionZip>> {
    let binaries = match &options.prebuilt {
        Some(dir) => FUNCTIONS
            .iter()
            .map(|(role, binary)| (*role, dir.join(binary)))
            .collect(),
        None => compile(options)?,
    };
    binaries
        .into_iter()
        .map(|(role, path)| {
            let binary = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read the {role} function's binary {}",
                    path.display()
                )
            })?;
            check_binary(&binary)
                .with_context(|| format!("the {role} function's binary {}", path.display()))?;
            let bytes = zip_bootstrap(&binary)?;
            let sha256 = hex(&Sha256::digest(&bytes));
            Ok(FunctionZip {
                role,
                key: format!("lambda/{role}/{sha256}.zip"),
                sha256,
                bytes,
            })
        })
        .collect()
}

/// `uniflow __build-functions`: writes each zip to `OUT/<key>` and prints
/// the keys, one a line.
pub fn run(out: &Path, prebuilt: Option<PathBuf>) -> anyhow::Result<ExitStatus> {
    let zips = build(&BuildOptions::new(prebuilt))?;
    let mut stdout = std::io::stdout().lock();
    for zip in &zips {
        let path = out.join(&zip.key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &zip.bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(stdout, "{}", zip.key)?;
    }
    Ok(ExitStatus::Success)
}

/// Runs `cargo zigbuild` on the source and returns each role's binary, as
/// cargo reports them (so wherever its target directory is).
fn compile(options: &BuildOptions) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let zigbuild = &options.zigbuild;
    if !zigbuild.is_file() {
        bail!(
            "cargo-zigbuild is not at {}: run scripts/setup-zig, or pass --functions-dir with \
             prebuilt binaries",
            zigbuild.display()
        );
    }
    let mut path: Vec<PathBuf> = zigbuild
        .parent()
        .map(Path::to_path_buf)
        .into_iter()
        .collect();
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path: OsString = std::env::join_paths(path).context("cannot put cargo-zigbuild on PATH")?;
    // Cargo's own diagnostics and progress go to the user's stderr as they
    // come; stdout carries its JSON messages, which name each binary built.
    let mut command = Command::new(zigbuild);
    // Under `cargo run` or `cargo test`, cargo sets these for this process;
    // build scripts (ring's) track some of them, so passing them on would
    // rebuild half the dependencies on every call.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo) {
            command.env_remove(name);
        }
    }
    let mut child = command
        .arg("zigbuild")
        .args(["--release", "--locked", "--target", ZIG_TARGET])
        .args(["-p", "uniflow-runtime-aws", "--bins"])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(options.source.join("Cargo.toml"))
        .current_dir(&options.source)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", zigbuild.display()))?;
    let stdout = child.stdout.take().context("cargo's stdout is not piped")?;
    let mut built: Vec<(&'static str, PathBuf)> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read cargo's messages")?;
        if let Some((role, executable)) = built_binary(&line) {
            built.retain(|(r, _)| *r != role);
            built.push((role, executable));
        }
    }
    let status = child.wait().context("cargo zigbuild did not finish")?;
    if !status.success() {
        bail!("building the Lambda functions failed: cargo zigbuild exited with {status}");
    }
    FUNCTIONS
        .iter()
        .map(|(role, binary)| {
            built
                .iter()
                .find(|(r, _)| r == role)
                .map(|(_, path)| (*role, path.clone()))
                .with_context(|| format!("cargo zigbuild succeeded but built no {binary} binary"))
        })
        .collect()
}

/// Whether cargo sets the variable `name` for the processes it runs
/// (binaries, tests, build scripts), rather than a user configuring cargo.
fn set_by_cargo(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "OUT_DIR",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    const PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_BIN_EXE_", "CARGO_CFG_"];
    NAMES.contains(&name) || PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// The role and executable of a cargo `compiler-artifact` message for one of
/// the functions' binaries.
fn built_binary(line: &str) -> Option<(&'static str, PathBuf)> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let name = message["target"]["name"].as_str()?;
    let (role, _) = FUNCTIONS.iter().find(|(_, binary)| *binary == name)?;
    let executable = message["executable"].as_str()?;
    Some((role, PathBuf::from(executable)))
}

/// Refuses anything but an x86_64 ELF needing glibc [`MAX_GLIBC`] at most.
fn check_binary(binary: &[u8]) -> anyhow::Result<()> {
    let machine = elf_machine(binary)?;
    if machine != EM_X86_64 {
        bail!("it is not an x86_64 binary (ELF machine {machine}, x86_64 is {EM_X86_64})");
    }
    require_glibc(check_glibc(binary)?)
}

/// An error unless `needed` is at most [`MAX_GLIBC`].
fn require_glibc(needed: Option<(u32, u32)>) -> anyhow::Result<()> {
    match needed {
        Some((major, minor)) if (major, minor) > MAX_GLIBC => bail!(
            "it needs glibc {major}.{minor}, but provided.al2023 has glibc {}.{}: build it with \
             cargo zigbuild --target {ZIG_TARGET}",
            MAX_GLIBC.0,
            MAX_GLIBC.1
        ),
        _ => Ok(()),
    }
}

/// The parsed header and endianness of a 64-bit ELF.
fn elf64(binary: &[u8]) -> anyhow::Result<(&FileHeader64<object::Endianness>, object::Endianness)> {
    let header = FileHeader64::<object::Endianness>::parse(binary)
        .map_err(|e| anyhow::anyhow!("it is not a 64-bit ELF binary: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| anyhow::anyhow!("it is not a 64-bit ELF binary: {e}"))?;
    Ok((header, endian))
}

/// The ELF `e_machine` of a 64-bit ELF binary.
pub fn elf_machine(binary: &[u8]) -> anyhow::Result<u16> {
    let (header, endian) = elf64(binary)?;
    Ok(header.e_machine(endian))
}

/// The newest glibc version a 64-bit ELF binary needs, from its `GLIBC_x.y`
/// symbol version requirements (`.gnu.version_r`); `None` when it needs none
/// (a static binary, or one not linked against glibc).
pub fn check_glibc(binary: &[u8]) -> anyhow::Result<Option<(u32, u32)>> {
    let (header, endian) = elf64(binary)?;
    let invalid = |e: object::Error| anyhow::anyhow!("its version requirements are invalid: {e}");
    let sections = header.sections(endian, binary).map_err(invalid)?;
    let Some((mut needs, strings_index)) = sections.gnu_verneed(endian, binary).map_err(invalid)?
    else {
        return Ok(None);
    };
    let strings = sections
        .strings(endian, binary, strings_index)
        .map_err(invalid)?;
    let mut newest = None;
    while let Some((_, mut aux)) = needs.next().map_err(invalid)? {
        while let Some(vernaux) = aux.next().map_err(invalid)? {
            let name = vernaux.name(endian, strings).map_err(invalid)?;
            let Some(version) = name.strip_prefix(b"GLIBC_") else {
                continue;
            };
            let version = std::str::from_utf8(version).ok().and_then(parse_version);
            let Some(version) = version else {
                bail!(
                    "it needs the glibc symbol version {}, which no glibc release promises",
                    String::from_utf8_lossy(name)
                );
            };
            newest = newest.max(Some(version));
        }
    }
    Ok(newest)
}

/// `2.34` -> `(2, 34)`; `2.2.5` -> `(2, 2)` (the patch level never raises the
/// glibc a binary needs above the minor release it belongs to).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    parts
        .all(|p| p.parse::<u32>().is_ok())
        .then_some((major, minor))
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The entry Lambda runs on provided.al2023.
const ENTRY: &[u8] = b"bootstrap";
/// MS-DOS date of 1980-01-01 (the zip format's epoch) and time 00:00:00:
/// a fixed timestamp, so the zip depends on the binary alone.
const DOS_DATE: u16 = 1 << 5 | 1;
const DOS_TIME: u16 = 0;
/// Version 2.0 (deflate), made by Unix (3), so readers honour the mode.
const VERSION_NEEDED: u16 = 20;
const VERSION_MADE_BY: u16 = 3 << 8 | 20;
/// Compression method: deflate.
const DEFLATE: u16 = 8;
/// A regular file, mode 0755, in the high half of the external attributes.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_755 << 16;

/// A zip holding `binary` as its one entry `bootstrap` (mode 0755, dated
/// 1980-01-01, deflated): the same binary always gives the same bytes.
///
/// Written here rather than with the `zip` crate: one stored-size entry is
/// three fixed records (local header, central directory entry, end record,
/// APPNOTE 4.3.7, 4.3.12, 4.3.16) around flate2's deflate and CRC-32, which
/// the CLI already has, while the crate's writer brings its own dependency
/// tree and timestamps to pin down. No data descriptor, no extra fields, no
/// Zip64 (Lambda takes 250 MB unzipped at most, far below 4 GiB).
pub fn zip_bootstrap(binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    let size = u32::try_from(binary.len())
        .ok()
        .filter(|&size| size < u32::MAX)
        .context("the binary is 4 GiB or larger, past what a zip without Zip64 holds")?;
    let mut crc = flate2::Crc::new();
    crc.update(binary);
    let crc = crc.sum();
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(binary)
        .context("cannot deflate the binary")?;
    let data = encoder.finish().context("cannot deflate the binary")?;
    let compressed = u32::try_from(data.len())
        .ok()
        .filter(|&size| size < u32::MAX)
        .context("the deflated binary is 4 GiB or larger")?;
    let name_len = ENTRY.len() as u16;

    let mut zip = Vec::with_capacity(data.len() + 2 * ENTRY.len() + 98);
    // Local file header.
    put32(&mut zip, 0x0403_4b50);
    put16(&mut zip, VERSION_NEEDED);
    put16(&mut zip, 0); // flags
    put16(&mut zip, DEFLATE);
    put16(&mut zip, DOS_TIME);
    put16(&mut zip, DOS_DATE);
    put32(&mut zip, crc);
    put32(&mut zip, compressed);
    put32(&mut zip, size);
    put16(&mut zip, name_len);
    put16(&mut zip, 0); // extra field length
    zip.extend_from_slice(ENTRY);
    zip.extend_from_slice(&data);
    // Central directory: one entry, pointing at the local header at 0.
    let directory_offset = u32::try_from(zip.len()).context("the zip is 4 GiB or larger")?;
    put32(&mut zip, 0x0201_4b50);
    put16(&mut zip, VERSION_MADE_BY);
    put16(&mut zip, VERSION_NEEDED);
    put16(&mut zip, 0); // flags
    put16(&mut zip, DEFLATE);
    put16(&mut zip, DOS_TIME);
    put16(&mut zip, DOS_DATE);
    put32(&mut zip, crc);
    put32(&mut zip, compressed);
    put32(&mut zip, size);
    put16(&mut zip, name_len);
    put16(&mut zip, 0); // extra field length
    put16(&mut zip, 0); // comment length
    put16(&mut zip, 0); // disk number
    put16(&mut zip, 0); // internal attributes
    put32(&mut zip, EXTERNAL_ATTRIBUTES);
    put32(&mut zip, 0); // local header offset
    zip.extend_from_slice(ENTRY);
    let directory_size =
        u32::try_from(zip.len()).context("the zip is 4 GiB or larger")? - directory_offset;
    // End of central directory.
    put32(&mut zip, 0x0605_4b50);
    put16(&mut zip, 0); // this disk
    put16(&mut zip, 0); // the directory's disk
    put16(&mut zip, 1); // entries on this disk
    put16(&mut zip, 1); // entries in all
    put32(&mut zip, directory_size);
    put32(&mut zip, directory_offset);
    put16(&mut zip, 0); // comment length
    Ok(zip)
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::DeflateDecoder;

    use super::*;

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([bytes[at], bytes[at + 1]])
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    /// One entry of a zip, as its central directory and local header say.
    #[derive(Debug)]
    struct Entry {
        name: Vec<u8>,
        attributes: u32,
        date: u16,
        time: u16,
        method: u16,
        content: Vec<u8>,
    }

    /// Reads a zip back through its end record and central directory,
    /// inflating each entry and checking its size and CRC-32.
    fn read_zip(zip: &[u8]) -> Vec<Entry> {
        let end = zip.len() - 22;
        assert_eq!(u32_at(zip, end), 0x0605_4b50, "end record");
        let count = usize::from(u16_at(zip, end + 10));
        let mut at = u32_at(zip, end + 16) as usize;
        let mut entries = Vec::new();
        for _ in 0..count {
            assert_eq!(u32_at(zip, at), 0x0201_4b50, "central directory entry");
            let method = u16_at(zip, at + 10);
            let (time, date) = (u16_at(zip, at + 12), u16_at(zip, at + 14));
            let crc = u32_at(zip, at + 16);
            let compressed = u32_at(zip, at + 20) as usize;
            let size = u32_at(zip, at + 24) as usize;
            let name_len = usize::from(u16_at(zip, at + 28));
            let skip =
                name_len + usize::from(u16_at(zip, at + 30)) + usize::from(u16_at(zip, at + 32));
            let attributes = u32_at(zip, at + 38);
            let local = u32_at(zip, at + 42) as usize;
            let name = zip[at + 46..at + 46 + name_len].to_vec();
            assert_eq!(u32_at(zip, local), 0x0403_4b50, "local header");
            assert_eq!(&zip[local + 30..local + 30 + name_len], &name[..]);
            let data_at = local + 30 + name_len + usize::from(u16_at(zip, local + 28));
            let mut content = Vec::new();
            DeflateDecoder::new(&zip[data_at..data_at + compressed])
                .read_to_end(&mut content)
                .unwrap();
            assert_eq!(content.len(), size);
            let mut check = flate2::Crc::new();
            check.update(&content);
            assert_eq!(check.sum(), crc, "CRC-32 of {name:?}");
            entries.push(Entry {
                name,
                attributes,
                date,
                time,
                method,
                content,
            });
            at += 46 + skip;
        }
        entries
    }

    #[test]
    fn the_zip_holds_one_executable_bootstrap() {
        let binary: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let zip = zip_bootstrap(&binary).unwrap();
        let entries = read_zip(&zip);
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry.name, b"bootstrap");
        assert_eq!(
            entry.attributes >> 16,
            0o100_755,
            "a regular file, mode 0755"
        );
        assert_eq!((entry.date, entry.time), (0x0021, 0), "1980-01-01 00:00:00");
        assert_eq!(entry.method, 8, "deflate");
        assert_eq!(entry.content, binary);
        assert!(
            zip.len() < binary.len() / 2,
            "deflated: {} bytes",
            zip.len()
        );
    }

    #[test]
    fn the_same_binary_gives_the_same_zip_and_another_binary_another() {
        let binary = std::fs::read("/bin/ls").unwrap();
        let first = zip_bootstrap(&binary).unwrap();
        assert_eq!(first, zip_bootstrap(&binary.clone()).unwrap());
        let mut other = binary;
        other[1000] ^= 1;
        assert_ne!(first, zip_bootstrap(&other).unwrap());
    }

    #[test]
    fn an_empty_binary_still_makes_a_valid_zip() {
        let entries = read_zip(&zip_bootstrap(&[]).unwrap());
        assert_eq!(entries.len(), 1);
        assert!(entries[0].content.is_empty());
    }

    /// The newest `GLIBC_x.y` that `readelf --version-info` lists.
    fn readelf_newest_glibc(path: &str) -> Option<(u32, u32)> {
        let output = Command::new("readelf")
            .args(["--version-info", "--wide", path])
            .output()
            .expect("readelf runs");
        assert!(output.status.success(), "readelf {path} failed");
        let text = String::from_utf8(output.stdout).unwrap();
        text.split_whitespace()
            .filter_map(|word| word.strip_prefix("GLIBC_"))
            .filter_map(parse_version)
            .max()
    }

    #[test]
    fn check_glibc_agrees_with_readelf_on_real_binaries() {
        let this_test = std::env::current_exe().unwrap();
        for path in ["/bin/ls", "/usr/bin/readelf", this_test.to_str().unwrap()] {
            let binary = std::fs::read(path).unwrap();
            let ours = check_glibc(&binary).unwrap();
            assert!(ours.is_some(), "{path} is dynamically linked against glibc");
            assert_eq!(ours, readelf_newest_glibc(path), "{path}");
            assert_eq!(elf_machine(&binary).unwrap(), EM_X86_64);
        }
    }

    #[test]
    fn what_is_not_an_elf_is_refused_without_panicking() {
        let binary = std::fs::read("/bin/ls").unwrap();
        for bytes in [
            &b""[..],
            b"#!/bin/sh\necho hi\n",
            &binary[..40],
            &binary[..100],
        ] {
            let error = check_binary(bytes).unwrap_err();
            assert!(format!("{error:#}").contains("ELF"), "{error:#}");
        }
    }

    #[test]
    fn glibc_newer_than_provided_al2023_is_refused() {
        require_glibc(None).unwrap();
        require_glibc(Some((2, 17))).unwrap();
        require_glibc(Some((2, 34))).unwrap();
        let error = require_glibc(Some((2, 35))).unwrap_err().to_string();
        assert!(error.contains("needs glibc 2.35"), "{error}");
        assert!(error.contains("provided.al2023 has glibc 2.34"), "{error}");
        require_glibc(Some((3, 0))).unwrap_err();
    }

    #[test]
    fn glibc_versions_parse() {
        assert_eq!(parse_version("2.34"), Some((2, 34)));
        assert_eq!(parse_version("2.2.5"), Some((2, 2)));
        assert_eq!(parse_version("PRIVATE"), None);
        assert_eq!(parse_version("2"), None);
        assert_eq!(parse_version("2.x"), None);
    }

    #[test]
    fn cargo_artifact_messages_name_the_binaries() {
        let line = r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"uniflow-processor"},"executable":"/t/release/uniflow-processor"}"#;
        assert_eq!(
            built_binary(line),
            Some(("processor", PathBuf::from("/t/release/uniflow-processor")))
        );
        let library = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"uniflow_runtime_aws"},"executable":null}"#;
        assert_eq!(built_binary(library), None);
        assert_eq!(
            built_binary(r#"{"reason":"build-finished","success":true}"#),
            None
        );
        assert_eq!(built_binary("not json"), None);
    }

    #[test]
    fn what_cargo_sets_for_its_processes_is_not_passed_on() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_BIN_EXE_uniflow",
            "OUT_DIR",
        ] {
            assert!(set_by_cargo(name), "{name}");
        }
        for name in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO",
            "PATH",
            "RUSTFLAGS",
        ] {
            assert!(!set_by_cargo(name), "{name}");
        }
    }

    #[test]
    fn a_missing_zigbuild_says_how_to_get_one() {
        let options = BuildOptions {
            source: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            prebuilt: None,
            zigbuild: PathBuf::from("/nonexistent/cargo-zigbuild"),
        };
        let error = build(&options).unwrap_err().to_string();
        assert!(error.contains("run scripts/setup-zig"), "{error}");
        assert!(error.contains("--functions-dir"), "{error}");
    }

    #[test]
    fn a_missing_prebuilt_binary_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let options = BuildOptions {
            prebuilt: Some(dir.path().to_path_buf()),
            ..BuildOptions::new(None)
        };
        let error = format!("{:#}", build(&options).unwrap_err());
        assert!(error.contains("the ingest function's binary"), "{error}");
        assert!(error.contains("uniflow-ingest"), "{error}");
    }
}

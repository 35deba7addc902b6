//! Bytes-to-verdict throughput of the validator, against parsing the same
//! bytes with sonic-rs alone, on the corpus `bench/validate.sh` writes.
//!
//! `BENCH_CORPUS` (NDJSON) and `BENCH_BUNDLE` (bundle.json) say what to run;
//! it prints `key=value` lines the script turns into the report.

#![allow(clippy::print_stdout, clippy::disallowed_methods)] // a benchmark reports on stdout and reads its settings

use std::hint::black_box;
use std::time::{Duration, Instant};

use uniflow_schemas::bundle::Bundle;
use uniflow_schemas::validate::Validator;

fn main() {
    let corpus_path =
        std::env::var("BENCH_CORPUS").unwrap_or_else(|_| "bench/out/corpus.ndjson".into());
    let bundle_path =
        std::env::var("BENCH_BUNDLE").unwrap_or_else(|_| "bench/out/shop/bundle.json".into());
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let corpus =
        std::fs::read(&corpus_path).unwrap_or_else(|e| panic!("cannot read {corpus_path}: {e}"));
    let bundle_text = std::fs::read_to_string(&bundle_path)
        .unwrap_or_else(|e| panic!("cannot read {bundle_path}: {e}"));
    let bundle = Bundle::from_json(&bundle_text).expect("a valid bundle");
    let validator = Validator::new(&bundle);
    let lines: Vec<&[u8]> = corpus
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let invalid = lines
        .iter()
        .filter(|l| !validator.validate(l).is_valid())
        .count();

    let (mut ours, mut parse) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let mut valid = 0usize;
        for l in &lines {
            valid += usize::from(black_box(validator.validate(black_box(l))).is_valid());
        }
        black_box(valid);
        ours.push(t.elapsed());
        let t = Instant::now();
        for l in &lines {
            let v: sonic_rs::Value =
                sonic_rs::from_slice(black_box(l)).expect("corpus lines are JSON");
            black_box(v);
        }
        parse.push(t.elapsed());
    }
    let per_msg = |d: Duration| d.as_secs_f64() * 1e9 / lines.len() as f64;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (o, p) = (median(ours), median(parse));
    println!("messages={}", lines.len());
    println!("mean_bytes={:.0}", bytes as f64 / lines.len() as f64);
    println!("invalid={invalid}");
    println!("uniflow_ns={:.1}", per_msg(o));
    println!("sonic_parse_ns={:.1}", per_msg(p));
}

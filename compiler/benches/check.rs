//! `uniflow check` against the KDL parse alone, on a generated large project
//! (1,000 events of 10 properties, 200 segments, 50 destinations).
//!
//! Run with `cargo bench -p uniflow-compiler --bench check`. It prints the
//! median time of each and their ratio; the goal is `check` <= 3x the parse.
//! Both run in this one process, interleaved, so the ratio is stable even on a
//! busy machine.

#![allow(clippy::print_stdout, clippy::disallowed_methods)] // a benchmark reports on stdout and reads BENCH_ROUNDS

use std::fmt::Write;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn project() -> String {
    let mut s = String::new();
    s.push_str("project \"bench\" {\n    region \"eu-west-1\"\n    stage \"prod\"\n    traffic events-per-month=500_000_000 mean-event-bytes=900 monthly-tracked-users=2_000_000\n}\n");
    s.push_str(
        "source \"web\" kind=\"browser\" {\n    allow-origin \"https://shop.example.com\"\n}\n",
    );
    s.push_str("identity {\n    identifier \"user_id\" priority=1 limit=1\n    identifier \"email\" priority=2 limit=5 normalize=\"trim lowercase\"\n    identifier \"anonymous_id\" priority=3 limit=100\n}\n");
    s.push_str("trait \"email\" type=\"string\" format=\"email\" pii=#true\n");
    for e in 0..1000 {
        writeln!(s, "event \"Event {e}\" version=2 {{").unwrap();
        writeln!(s, "    description \"Generated event number {e}\"").unwrap();
        let props = [
            "property \"id\" type=\"string\" required=#true min-length=1 max-length=64",
            "property \"amount\" type=\"number\" min=0 max=1000000",
            "property \"count\" type=\"integer\" min=1",
            "property \"flag\" type=\"boolean\" nullable=#true",
            "property \"at\" type=\"timestamp\"",
            "property \"currency\" type=\"enum\" values=\"USD EUR GBP\"",
            "property \"email\" type=\"string\" format=\"email\" pii=#true",
            "property \"sku\" type=\"string\" pattern=#\"^[A-Z]{3}-\\d+$\"#",
            "property \"tags\" type=\"array\" max-length=10 {\n        item type=\"string\"\n    }",
            "property \"address\" type=\"object\" unknown-keys=\"strict\" {\n        property \"city\" type=\"string\"\n    }",
        ];
        for p in props {
            writeln!(s, "    {p}").unwrap();
        }
        s.push_str("}\n");
    }
    for d in 0..50 {
        writeln!(s, "destination \"dest-{d}\" kind=\"webhook\" {{").unwrap();
        writeln!(s, "    url \"https://hooks.example.com/{d}\"").unwrap();
        writeln!(s, "    secret from=\"ssm:/bench/dest-{d}\"").unwrap();
        s.push_str("    events");
        for e in 0..20 {
            write!(s, " \"Event {}\"", d * 20 + e).unwrap();
        }
        s.push('\n');
        s.push_str("    retry attempts=10 backoff=\"exponential\" max-age=\"24h\"\n");
        s.push_str("    batch max-events=100 max-wait=\"5s\"\n}\n");
    }
    for g in 0..200 {
        writeln!(s, "segment \"segment-{g}\" {{").unwrap();
        writeln!(
            s,
            "    from \"Event {}\" \"Event {}\" within=\"30d\"",
            g * 5,
            g * 5 + 1
        )
        .unwrap();
        s.push_str("    having \"sum(properties.amount) > 500\"\n");
        writeln!(
            s,
            "    sync-to \"dest-{}\" identifier=\"email\"\n}}",
            g % 50
        )
        .unwrap();
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let text = project();
    let checked = uniflow_compiler::check(&text);
    assert!(
        !checked.has_errors(),
        "the generated project must be valid: {:#?}",
        &checked.diagnostics[..checked.diagnostics.len().min(3)]
    );
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let (mut parse, mut check) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(kdl::KdlDocument::parse_v2(black_box(&text)).unwrap());
        parse.push(t.elapsed());
        let t = Instant::now();
        black_box(uniflow_compiler::check(black_box(&text)));
        check.push(t.elapsed());
    }
    let (p, c) = (median(parse), median(check));
    println!(
        "input: {} bytes, {} lines (1000 events x 10 properties, 50 destinations, 200 segments)",
        text.len(),
        text.lines().count()
    );
    println!(
        "kdl parse alone:  {:>8.2} ms (median of {rounds})",
        p.as_secs_f64() * 1e3
    );
    println!(
        "uniflow check:    {:>8.2} ms (median of {rounds})",
        c.as_secs_f64() * 1e3
    );
    println!(
        "ratio check/parse: {:.2} (goal <= 3.00)",
        c.as_secs_f64() / p.as_secs_f64()
    );
}

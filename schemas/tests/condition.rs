//! The condition language as tables: what parses (and how it prints), what
//! does not (with the error's message and span), how conditions evaluate on
//! events, and a bounded fuzz that nothing panics.

use serde_json::{Value, json};
use uniflow_schemas::condition::{Condition, MAX_DEPTH, Truth, like};

/// `(input, canonical form)`.
const VALID: &[(&str, &str)] = &[
    ("properties.revenue > 100", "properties.revenue > 100"),
    ("properties.currency = 'EUR'", "properties.currency = 'EUR'"),
    (
        "properties.revenue>0 or event<>'Order Completed'",
        "properties.revenue > 0 OR event != 'Order Completed'",
    ),
    (
        "traits.plan in ('a','b' , 'c')",
        "traits.plan IN ('a', 'b', 'c')",
    ),
    (
        "traits.plan not in (1, 2.5, -3)",
        "traits.plan NOT IN (1, 2.5, -3)",
    ),
    ("userId is null", "userId IS NULL"),
    ("userId Is Not Null", "userId IS NOT NULL"),
    ("properties.sku like 'A%_'", "properties.sku LIKE 'A%_'"),
    (
        "properties.sku not like 'it''s'",
        "properties.sku NOT LIKE 'it''s'",
    ),
    (
        "properties.n between 1 and 10",
        "properties.n BETWEEN 1 AND 10",
    ),
    (
        "properties.n not between -1.5 and properties.max",
        "properties.n NOT BETWEEN -1.5 AND properties.max",
    ),
    ("properties.is_gift", "properties.is_gift"),
    ("not properties.is_gift", "NOT properties.is_gift"),
    ("NOT NOT TRUE", "NOT NOT TRUE"),
    (
        "(properties.a = 1 or properties.b = 2) and properties.c = 3",
        "(properties.a = 1 OR properties.b = 2) AND properties.c = 3",
    ),
    (
        "properties.a = 1 and properties.b = 2 or properties.c = 3",
        "properties.a = 1 AND properties.b = 2 OR properties.c = 3",
    ),
    (
        "(properties.a = 1 and properties.b = 2) and properties.c = 3",
        "(properties.a = 1 AND properties.b = 2) AND properties.c = 3",
    ),
    (
        "not (properties.a = 1 or properties.b = 2)",
        "NOT (properties.a = 1 OR properties.b = 2)",
    ),
    (
        "properties.\"gift wrap\".\"x\"\"y\" = true",
        "properties.\"gift wrap\".\"x\"\"y\" = TRUE",
    ),
    ("properties.and = FALSE", "properties.\"and\" = FALSE"),
    ("context.page.url != NULL", "context.page.url != NULL"),
    ("1 = 1", "1 = 1"),
    ("properties.x <= 0.25", "properties.x <= 0.25"),
    ("properties.x >= -0", "properties.x >= -0"),
];

/// `(input, message, span)`.
const INVALID: &[(&str, &str, (usize, usize))] = &[
    ("", "the condition is empty", (0, 0)),
    ("   ", "the condition is empty", (0, 3)),
    (
        "properties.revenue >",
        "expected a value after `>`",
        (19, 20),
    ),
    (
        "properties.revenue > AND",
        "expected a value after `>`, found the keyword AND",
        (21, 24),
    ),
    (
        "properties.currency = 'EUR",
        "unclosed string: add `'` at the end",
        (22, 26),
    ),
    (
        "properties.\"a b = 1",
        "unclosed quoted identifier: add `\"` at the end",
        (11, 19),
    ),
    (
        "properties.a == 1",
        "unknown operator `==`: use `=`",
        (13, 15),
    ),
    (
        "properties.a = 1 && properties.b = 2",
        "unknown operator `&&`: use AND",
        (17, 19),
    ),
    (
        "properties.a = 1 || properties.b = 2",
        "unknown operator `||`: use OR",
        (17, 19),
    ),
    (
        "!properties.a",
        "unknown operator `!`: use `!=` or NOT",
        (0, 1),
    ),
    ("properties.a = 1 ;", "unexpected character `;`", (17, 18)),
    ("properties.a = é", "unexpected character `é`", (15, 17)),
    (
        "propertes.a = 1",
        "`propertes` is not a field of an event: a path starts with one of: event, type, userId, anonymousId, groupId, properties, traits, context, name, category, sourceId",
        (0, 9),
    ),
    (
        "userid = 'x'",
        "`userid` is not a field of an event: did you mean `userId`?",
        (0, 6),
    ),
    (
        "count(properties.x) > 1",
        "`count(...)`: conditions have no functions (aggregates belong in a segment's `having`)",
        (0, 5),
    ),
    (
        "traits.ends_at > current_timestamp",
        "`current_timestamp` is not a field of an event: a path starts with one of: event, type, userId, anonymousId, groupId, properties, traits, context, name, category, sourceId",
        (17, 34),
    ),
    (
        "properties.",
        "expected a field name after `.`, found the end of the condition",
        (10, 11),
    ),
    (
        "properties.a = 1 properties.b",
        "unexpected `properties` after the condition",
        (17, 27),
    ),
    (
        "(properties.a = 1",
        "expected `)` to close the `(` at offset 0, found the end of the condition",
        (17, 17),
    ),
    (
        "properties.a is 1",
        "expected NULL after IS, found `1`",
        (16, 17),
    ),
    (
        "properties.a is not",
        "expected NULL after IS NOT, found the end of the condition",
        (19, 19),
    ),
    (
        "properties.a not = 1",
        "expected IN, LIKE or BETWEEN after NOT, found `=`",
        (17, 18),
    ),
    (
        "properties.a in 'x'",
        "expected `(` after IN, found the string 'x'",
        (16, 19),
    ),
    (
        "properties.a in ()",
        "expected a value in the IN list, found `)`",
        (17, 18),
    ),
    (
        "properties.a in ('x' 'y')",
        "expected `,` or `)` in the IN list, found the string 'y'",
        (21, 24),
    ),
    (
        "properties.a in (properties.b)",
        "an IN list holds literals, not paths",
        (17, 29),
    ),
    (
        "properties.a like 5",
        "expected a 'quoted pattern' after LIKE, found `5`",
        (18, 19),
    ),
    (
        "properties.a between 1 or 2",
        "expected AND in BETWEEN ... AND ..., found `or`",
        (23, 25),
    ),
    (
        "'EUR'",
        "`'EUR'` alone is not a condition: compare it, e.g. `properties.x = 'EUR'`",
        (0, 5),
    ),
    ("properties.a = - 1", "expected a digit after `-`", (15, 16)),
    ("AND", "expected a condition, found the keyword AND", (0, 3)),
    (")", "expected a condition, found `)`", (0, 1)),
];

fn parse(input: &str) -> Condition {
    Condition::parse(input)
        .unwrap_or_else(|e| panic!("{input:?} should parse: {e} at {:?}", e.span))
}

#[test]
fn valid_conditions_parse_and_print_canonically() {
    for (input, canonical) in VALID {
        let c = parse(input);
        let printed = c.to_string();
        assert_eq!(&printed, canonical, "canonical form of {input:?}");
        assert_eq!(parse(&printed), c, "re-parsing {printed:?}");
        // The bundle form reads back to the same condition.
        let json = serde_json::to_string(&c).unwrap();
        let back: Condition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c, "serde round trip of {input:?}: {json}");
    }
}

#[test]
fn invalid_conditions_report_message_and_span() {
    for (input, message, (start, end)) in INVALID {
        match Condition::parse(input) {
            Ok(c) => panic!("{input:?} should not parse, got {c}"),
            Err(e) => {
                assert_eq!(&e.message, message, "message for {input:?}");
                assert_eq!(e.span, *start..*end, "span for {input:?}");
                assert!(
                    input.get(e.span.clone()).is_some(),
                    "span on char boundaries"
                );
            }
        }
    }
}

#[test]
fn the_bundle_form_is_compact_and_readable() {
    let c = parse("properties.revenue > 100 AND userId IS NOT NULL");
    assert_eq!(
        serde_json::to_string(&c).unwrap(),
        r#"{"and":[{"compare":{"left":{"path":["properties","revenue"]},"op":">","right":{"number":100.0}}},{"is_null":{"operand":{"path":["userId"]},"negated":true}}]}"#
    );
    let unknown = r#"{"is_null":{"operand":{"path":["userId"]},"negate":true}}"#;
    assert!(serde_json::from_str::<Condition>(unknown).is_err());
}

#[test]
fn nesting_is_bounded() {
    let ok = format!("{}TRUE{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(Condition::parse(&ok).is_ok());
    let deep = format!(
        "{}TRUE{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let e = Condition::parse(&deep).unwrap_err();
    assert_eq!(e.message, "the condition nests deeper than 64 levels");
    assert_eq!(e.span, MAX_DEPTH..MAX_DEPTH + 1);
    let nots = format!("{}TRUE", "NOT ".repeat(100_000));
    assert!(Condition::parse(&nots).is_err());
    let parens = "(".repeat(100_000);
    assert!(Condition::parse(&parens).is_err());
}

const T: Option<bool> = Some(true);
const F: Option<bool> = Some(false);
const U: Option<bool> = None;

fn event() -> Value {
    json!({
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "properties": {
            "revenue": 120.5,
            "count": 3,
            "currency": "EUR",
            "sku": "AB-12",
            "is_gift": true,
            "wrapped": false,
            "coupon": null,
            "gift wrap": "yes",
            "items": [1, 2],
            "address": {"city": "Zürich"}
        }
    })
}

/// `(condition, expected on [`event`]: TRUE, FALSE or UNKNOWN)`.
const EVAL: &[(&str, Option<bool>)] = &[
    ("properties.revenue > 100", T),
    ("properties.revenue > 200", F),
    ("properties.revenue = 120.5", T),
    ("properties.count = 3.0", T),
    ("properties.count != 3", F),
    ("properties.count <> 4", T),
    ("properties.count <= 3 AND properties.count >= 3", T),
    ("properties.currency = 'EUR'", T),
    ("properties.currency = 'eur'", F),
    ("properties.currency < 'USD'", T),
    ("properties.address.city > 'Z'", T),
    ("properties.address.city = 'Zürich'", T),
    // No coercion: a string compared with a number is UNKNOWN.
    ("properties.currency = 5", U),
    ("properties.revenue = '120.5'", U),
    // Missing and null values.
    ("properties.missing = 1", U),
    ("properties.coupon = 'X'", U),
    ("properties.coupon = NULL", U),
    ("properties.coupon IS NULL", T),
    ("properties.missing IS NULL", T),
    ("properties.revenue IS NULL", F),
    ("properties.revenue IS NOT NULL", T),
    ("properties.missing IS NOT NULL", F),
    // NOT UNKNOWN is UNKNOWN; AND and OR are Kleene's.
    ("NOT properties.missing = 1", U),
    ("NOT properties.revenue > 200", T),
    ("properties.missing = 1 AND properties.revenue > 200", F),
    ("properties.missing = 1 AND properties.revenue > 100", U),
    ("properties.missing = 1 OR properties.revenue > 100", T),
    ("properties.missing = 1 OR properties.revenue > 200", U),
    // Objects and arrays compare as UNKNOWN.
    ("properties.items = 1", U),
    ("properties.address = 'x'", U),
    // IN.
    ("properties.currency IN ('USD', 'EUR')", T),
    ("properties.currency IN ('USD', 'GBP')", F),
    ("properties.currency NOT IN ('USD', 'GBP')", T),
    ("properties.currency IN ('USD', NULL)", U),
    ("properties.currency NOT IN ('USD', NULL)", U),
    ("properties.currency IN ('EUR', NULL)", T),
    ("properties.missing IN ('EUR')", U),
    ("properties.count IN (1, 2, 3)", T),
    ("properties.count IN ('3')", U),
    // LIKE.
    ("properties.sku LIKE 'AB%'", T),
    ("properties.sku LIKE 'ab%'", F),
    ("properties.sku LIKE 'AB-__'", T),
    ("properties.sku LIKE 'AB-_'", F),
    ("properties.sku LIKE '%'", T),
    ("properties.sku NOT LIKE '%12'", F),
    ("properties.count LIKE '3'", U),
    ("properties.missing LIKE '%'", U),
    // BETWEEN.
    ("properties.count BETWEEN 1 AND 3", T),
    ("properties.count BETWEEN 4 AND 9", F),
    ("properties.count NOT BETWEEN 4 AND 9", T),
    ("properties.count BETWEEN 1 AND properties.missing", U),
    ("properties.count BETWEEN 4 AND properties.missing", F),
    // A bare operand: JSON true.
    ("properties.is_gift", T),
    ("properties.wrapped", F),
    ("NOT properties.wrapped", T),
    ("properties.missing", U),
    ("properties.currency", U),
    ("properties.is_gift = TRUE", T),
    ("TRUE", T),
    ("FALSE OR properties.\"gift wrap\" = 'yes'", T),
    // Top-level fields.
    ("event = 'Order Completed'", T),
    (
        "type = 'track' AND userId = 'u1' AND anonymousId IS NULL",
        T,
    ),
    ("properties.revenue > 0 OR event <> 'Order Completed'", T),
];

#[test]
fn evaluation_is_three_valued() {
    let e = event();
    for (input, expected) in EVAL {
        let c = parse(input);
        let expected = match expected {
            Some(true) => Truth::True,
            Some(false) => Truth::False,
            None => Truth::Unknown,
        };
        assert_eq!(c.eval(&e), expected, "{input}");
        assert_eq!(c.matches(&e), expected == Truth::True, "{input}");
    }
}

#[test]
fn like_patterns() {
    let cases: &[(&str, &str, bool)] = &[
        ("", "", true),
        ("", "%", true),
        ("", "_", false),
        ("abc", "a%c", true),
        ("abc", "%b%", true),
        ("abc", "%%%", true),
        ("abc", "a_c", true),
        ("abc", "a_", false),
        ("aXbXc", "a%b%c", true),
        ("mississippi", "m%iss%ppi", true),
        ("mississippi", "m%iss%ppx", false),
        ("é!", "_!", true),
        ("100%", "100%", true),
    ];
    for (text, pattern, expected) in cases {
        assert_eq!(like(text, pattern), *expected, "{text:?} LIKE {pattern:?}");
    }
}

/// A small deterministic generator (xorshift), so the fuzz needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check_no_panic(input: &str, e: &Value) {
    match Condition::parse(input) {
        Ok(c) => {
            let printed = c.to_string();
            assert_eq!(
                Condition::parse(&printed).as_ref(),
                Ok(&c),
                "{input:?} -> {printed:?}"
            );
            let _ = c.eval(e);
        }
        Err(err) => {
            assert!(
                err.span.start <= err.span.end && err.span.end <= input.len(),
                "{input:?}: {err:?}"
            );
            assert!(input.get(err.span.clone()).is_some(), "{input:?}: {err:?}");
        }
    }
}

#[test]
fn fuzz_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let e = event();
    let alphabet: Vec<char> =
        " ()'\",.=!<>-_%0123456789abcANDORNOTISNULLINLIKEBETWEENproperties\u{e9}\u{1F600}"
            .chars()
            .collect();
    for _ in 0..3000 {
        let len = rng.below(40);
        let s: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        check_no_panic(&s, &e);
    }
    let seeds: Vec<&str> = VALID
        .iter()
        .map(|(i, _)| *i)
        .chain(EVAL.iter().map(|(i, _)| *i))
        .collect();
    let pieces = [
        " ",
        "(",
        ")",
        "'",
        "\"",
        ".",
        ",",
        "=",
        "<>",
        "NOT ",
        " AND ",
        " OR ",
        " IS ",
        " NULL",
        " IN (",
        " LIKE ",
        " BETWEEN ",
        "-",
        "1.5",
        "properties.x",
        "\u{e9}",
    ];
    for _ in 0..5000 {
        let mut s: String = seeds[rng.below(seeds.len())].to_owned();
        for _ in 0..1 + rng.below(3) {
            let mut at = rng.below(s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => s.insert_str(at, pieces[rng.below(pieces.len())]),
                1 => {
                    let mut end = (at + 1 + rng.below(4)).min(s.len());
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    s.replace_range(at..end, "");
                }
                _ => s.truncate(at),
            }
        }
        check_no_panic(&s, &e);
    }
    // Random bytes, read lossily.
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..rng.below(30)).map(|_| rng.next() as u8).collect();
        check_no_panic(&String::from_utf8_lossy(&bytes), &e);
    }
}

#[test]
fn a_destination_accepts_listed_events_of_its_types_its_filter_holds_for() {
    use uniflow_schemas::bundle::{BatchPolicy, ConnectorSettings, DestinationInfo, RetryPolicy};
    let d = DestinationInfo {
        kind: "webhook".to_owned(),
        events: Some(vec!["Order Completed".to_owned()]),
        types: None,
        filter: Some("properties.revenue > 100".to_owned()),
        condition: Some(parse("properties.revenue > 100")),
        transforms: Vec::new(),
        template: None,
        connector: ConnectorSettings::Lambda {
            function: "f".to_owned(),
        },
        retry: RetryPolicy {
            attempts: 3,
            exponential: true,
            delay_ms: 1000,
            max_age_secs: 60,
        },
        batch: BatchPolicy {
            max_events: 1,
            max_bytes: 1024,
            max_wait_secs: 0,
        },
    };
    let order = |revenue: Value| json!({"type": "track", "event": "Order Completed", "properties": {"revenue": revenue}});
    assert!(d.accepts(&order(json!(500))));
    assert!(!d.accepts(&order(json!(5))));
    // UNKNOWN (no revenue) does not pass.
    assert!(!d.accepts(&json!({"type": "track", "event": "Order Completed"})));
    assert!(
        !d.accepts(&json!({"type": "track", "event": "Signed Up", "properties": {"revenue": 500}}))
    );
    // A list of events admits track calls only.
    assert!(!d.accepts(
        &json!({"type": "page", "event": "Order Completed", "properties": {"revenue": 500}})
    ));
    let all = DestinationInfo {
        events: None,
        condition: None,
        filter: None,
        ..d.clone()
    };
    assert!(all.accepts(&json!({"type": "identify", "userId": "u1"})));
    let identifies = DestinationInfo {
        types: Some(vec!["identify".to_owned()]),
        ..all
    };
    assert!(identifies.accepts(&json!({"type": "identify", "userId": "u1"})));
    assert!(!identifies.accepts(&order(json!(500))));
    assert!(!identifies.accepts(&json!({"userId": "u1"})));
}

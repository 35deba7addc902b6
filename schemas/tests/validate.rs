//! The validator on hand-written messages: each case is a schema (in the
//! bundle's JSON form), a message, and the exact issues Zod 4 reports for it
//! through the generated `validateMessage` (recorded from Zod 4.6.7).

use uniflow_schemas::bundle::Bundle;
use uniflow_schemas::validate::Validator;

/// A bundle with one event, `E`, whose `properties` schema is `props` (JSON).
fn bundle(props: &str) -> Bundle {
    let text = format!(
        r#"{{"version":{version},"config_digest":"x","project":{{"name":"p","region":"eu-west-1","stage":"dev"}},
        "sources":{{}},"events":{{"E":{{"version":1,"properties":{props}}}}},
        "traits":{{"user":{{"type":"object","properties":{{"email":{{"type":"string","optional":true,"format":"email"}}}}}},"group":{{"type":"object"}}}},
        "identity":{{"identifiers":[],"blocked":[]}},"destinations":{{}},"segments":{{}}}}"#,
        version = uniflow_schemas::BUNDLE_VERSION
    );
    Bundle::from_json(&text).unwrap()
}

/// Validates `message` and compares `code path message` lines.
fn check(props: &str, message: &str, expected: &[&str]) {
    let v = Validator::new(&bundle(props));
    let verdict = v.validate(message.as_bytes());
    let got: Vec<String> = verdict
        .issues
        .iter()
        .map(|i| {
            let path: Vec<String> = i.path.iter().map(ToString::to_string).collect();
            format!("{} {} {}", i.code, path.join("."), i.message)
        })
        .collect();
    assert_eq!(got, expected, "message: {message}");
}

fn track(props: &str) -> String {
    format!(r#"{{"type":"track","event":"E","userId":"u","properties":{props}}}"#)
}

const S: &str = r#"{"type":"object","properties":{
    "s":{"type":"string","optional":true,"min-length":2,"max-length":3},
    "n":{"type":"number","optional":true,"min":0,"max":10,"multiple-of":0.01},
    "i":{"type":"integer","optional":true,"max":10},
    "e":{"type":"enum","optional":true,"values":["USD","EUR"]},
    "b":{"type":"boolean","optional":true},
    "r":{"type":"string"},
    "z":{"type":"string","optional":true,"nullable":true},
    "a":{"type":"array","optional":true,"max-length":1,"items":{"type":"integer"}},
    "o":{"type":"object","optional":true,"unknown-keys":"strict","properties":{"x":{"type":"string"}}}
}}"#;

#[test]
fn valid_message_has_no_issues() {
    check(
        S,
        &track(
            r#"{"r":"x","s":"ab","n":0.07,"i":-0,"e":"EUR","b":true,"z":null,"a":[1],"o":{"x":"y"}}"#,
        ),
        &[],
    );
}

#[test]
fn wrong_types_and_missing_keys_in_schema_order() {
    check(
        S,
        &track(r#"{"z":5,"n":"1","b":1}"#),
        &[
            "invalid_type properties.b Invalid input: expected boolean, received number",
            "invalid_type properties.n Invalid input: expected number, received string",
            "invalid_type properties.r Invalid input: expected string, received undefined",
            "invalid_type properties.z Invalid input: expected string, received number",
        ],
    );
}

#[test]
fn numbers() {
    check(
        S,
        &track(r#"{"r":"x","n":1e400}"#),
        &["invalid_type properties.n Invalid input: expected number, received Infinity"],
    );
    check(
        S,
        &track(r#"{"r":"x","n":-1e400}"#),
        &["invalid_type properties.n Invalid input: expected number, received -Infinity"],
    );
    check(
        S,
        &track(r#"{"r":"x","n":10.005}"#),
        &[
            "too_big properties.n Too big: expected number to be <=10",
            "not_multiple_of properties.n Invalid number: must be a multiple of 0.01",
        ],
    );
    check(
        S,
        &track(r#"{"r":"x","i":1.5}"#),
        &["invalid_type properties.i Invalid input: expected int, received number"],
    );
    check(S, &track(r#"{"r":"x","i":1.0}"#), &[]);
    check(
        S,
        &track(r#"{"r":"x","i":9007199254740992}"#),
        &[
            "too_big properties.i Too big: expected int to be <=9007199254740991",
            "too_big properties.i Too big: expected number to be <=10",
        ],
    );
}

#[test]
fn strings_count_code_points() {
    check(S, &track(r#"{"r":"x","s":"😀😀"}"#), &[]);
    check(
        S,
        &track(r#"{"r":"x","s":"\ud83d\ude00"}"#),
        &["too_small properties.s Too small: expected string to have >=2 characters"],
    );
    check(
        S,
        &track(r#"{"r":"x","s":"abcd"}"#),
        &["too_big properties.s Too big: expected string to have <=3 characters"],
    );
    check(S, &track(r#"{"r":"x","s":"\ud800x"}"#), &[]);
}

#[test]
fn length_checks_run_on_the_wrong_type() {
    check(
        S,
        &track(r#"{"r":"x","s":[1,2,3,4]}"#),
        &[
            "invalid_type properties.s Invalid input: expected string, received array",
            "too_big properties.s Too big: expected array to have <=3 items",
        ],
    );
    check(
        S,
        &track(r#"{"r":"x","a":"ab"}"#),
        &[
            "invalid_type properties.a Invalid input: expected array, received string",
            "too_big properties.a Too big: expected string to have <=1 characters",
        ],
    );
    // An array over its maximum reports only that; its items are not read.
    check(
        S,
        &track(r#"{"r":"x","a":[1.5,2]}"#),
        &["too_big properties.a Too big: expected array to have <=1 items"],
    );
    check(
        S,
        &track(r#"{"r":"x","a":[1.5]}"#),
        &["invalid_type properties.a.0 Invalid input: expected int, received number"],
    );
    // An object with a `length` key gets length checks too, as in Zod.
    check(
        S,
        &track(r#"{"r":"x","s":{"length":"x"}}"#),
        &[
            "invalid_type properties.s Invalid input: expected string, received object",
            "too_small properties.s Too small: expected unknown to be >=2",
            "too_big properties.s Too big: expected unknown to be <=3",
        ],
    );
}

#[test]
fn enums_nulls_and_strict_objects() {
    check(
        S,
        &track(r#"{"r":"x","e":"GBP"}"#),
        &["invalid_value properties.e Invalid option: expected one of \"USD\"|\"EUR\""],
    );
    check(
        S,
        &track(r#"{"r":"x","e":null}"#),
        &["invalid_value properties.e Invalid option: expected one of \"USD\"|\"EUR\""],
    );
    check(
        S,
        &track(r#"{"r":null}"#),
        &["invalid_type properties.r Invalid input: expected string, received null"],
    );
    check(
        S,
        &track(r#"{"r":"x","o":{"b":1,"x":2,"10":3,"2":4,"b":5}}"#),
        &[
            "invalid_type properties.o.x Invalid input: expected string, received number",
            "unrecognized_keys properties.o Unrecognized keys: \"2\", \"10\", \"b\"",
        ],
    );
}

#[test]
fn duplicate_keys_keep_the_last_value() {
    check(S, &track(r#"{"r":1,"r":"x"}"#), &[]);
    check(
        S,
        &track(r#"{"r":"x","r":1}"#),
        &["invalid_type properties.r Invalid input: expected string, received number"],
    );
}

#[test]
fn envelope() {
    check(
        S,
        r#"{"type":"track","event":"E","properties":{"r":"x"}}"#,
        &["custom  Invalid input: a message needs a userId or an anonymousId"],
    );
    check(
        S,
        r#"{"type":"track","userId":"u","messageId":"","timestamp":"2024-01-01T00:00Z"}"#,
        &[
            "invalid_type event Invalid input: expected string, received undefined",
            "too_small messageId Too small: expected string to have >=1 characters",
            "invalid_format timestamp Invalid ISO datetime",
        ],
    );
    check(
        S,
        r#"{"type":"track","event":"Other","anonymousId":"a","properties":{"anything":1}}"#,
        &[],
    );
    check(
        S,
        r#"{"type":"track","event":"E","anonymousId":"a"}"#,
        &["invalid_type properties.r Invalid input: expected string, received undefined"],
    );
    check(
        S,
        r#"{"type":"identify","userId":"u","traits":{"email":"x"}}"#,
        &["invalid_format traits.email Invalid email address"],
    );
    check(
        S,
        r#"{"type":"alias","previousId":""}"#,
        &[
            "too_small previousId Too small: expected string to have >=1 characters",
            "invalid_type userId Invalid input: expected string, received undefined",
            "custom  Invalid input: a message needs a userId or an anonymousId",
        ],
    );
    check(
        S,
        r#"{"type":"fly"}"#,
        &[
            "invalid_value type Invalid option: expected one of \"track\"|\"identify\"|\"page\"|\"screen\"|\"group\"|\"alias\"",
        ],
    );
    check(
        S,
        r#""hello""#,
        &["invalid_type  Invalid input: expected object, received string"],
    );
}

#[test]
fn malformed_input_is_an_issue_never_a_panic() {
    let v = Validator::new(&bundle(S));
    let full = track(r#"{"r":"x","s":"ab","a":[1],"o":{"x":"\u00e9"}}"#);
    // Every truncation of a valid message.
    for end in 0..full.len() {
        let verdict = v.validate(&full.as_bytes()[..end]);
        assert_eq!(verdict.issues.len(), 1, "{}", &full[..end]);
        assert_eq!(verdict.issues[0].code.as_str(), "invalid_json");
    }
    // Invalid UTF-8.
    let mut bad = full.clone().into_bytes();
    bad[30] = 0xff;
    assert_eq!(v.validate(&bad).issues[0].code.as_str(), "invalid_json");
    // 10,000 levels of nesting, inside and outside the schema.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(
        v.validate(deep.as_bytes()).issues[0]
            .message
            .contains("received array")
    );
    let deep_prop = track(&format!(
        r#"{{"r":"x","extra":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    ));
    assert!(v.validate(deep_prop.as_bytes()).is_valid());
    let deep_wrong = track(&format!(
        r#"{{"r":{}{}}}"#,
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    ));
    assert_eq!(v.validate(deep_wrong.as_bytes()).issues.len(), 1);
    // A 10 MB string.
    let huge = track(&format!(r#"{{"r":"{}"}}"#, "x".repeat(10 * 1024 * 1024)));
    assert!(v.validate(huge.as_bytes()).is_valid());
    // Garbage after the value, bad escapes, control characters, bad numbers.
    for text in [
        format!("{full} x"),
        track(r#"{"r":"\q"}"#),
        track("{\"r\":\"a\u{1}b\"}"),
        track(r#"{"r":"x","n":01}"#),
        track(r#"{"r":"x","n":1.}"#),
        track(r#"{"r":"x","n":-}"#),
        track(r#"{"r":"x",}"#),
        String::new(),
    ] {
        let verdict = v.validate(text.as_bytes());
        assert_eq!(verdict.issues[0].code.as_str(), "invalid_json", "{text}");
    }
}

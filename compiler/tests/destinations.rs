//! A destination's settings as the runtime receives them in the bundle:
//! message types, transforms in file order, the template and retry delays.

use uniflow_schemas::bundle::{Bundle, Transform};

const PROJECT: &str = r#"
project "acme" {
    region "eu-west-1"
}
trait "email" type="string" pii=#true
event "Order Completed" {
    property "revenue" type="number"
    property "phone" type="string" pii=#true
    property "note" type="string"
}
"#;

fn bundle(destinations: &str) -> Bundle {
    let source = format!("{PROJECT}{destinations}");
    let (checked, artifacts) = uniflow_compiler::build(&source);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    Bundle::from_json(&artifacts.unwrap().files["bundle.json"]).unwrap()
}

#[test]
fn types_transforms_and_template_reach_the_bundle_in_file_order() {
    let b = bundle(
        r##"
destination "crm" kind="webhook" {
    url "https://hooks.example.com/uniflow"
    types "identify" "track" "identify"
    hash "traits.email" "properties.phone"
    rename "properties.revenue" to="properties.value"
    drop "properties.note" "context"
    template #"{"value": {{ properties.value | json_encode() }}, "email": {{ traits.email | default(value="") | json_encode() }}}"#
    retry delay="500ms"
}
"##,
    );
    let d = &b.destinations["crm"];
    assert_eq!(
        d.types.as_deref(),
        Some(&["identify".to_owned(), "track".to_owned()][..])
    );
    let path = |p: &str| p.to_owned();
    assert_eq!(
        d.transforms,
        [
            Transform::Hash {
                path: path("traits.email")
            },
            Transform::Hash {
                path: path("properties.phone")
            },
            Transform::Rename {
                from: path("properties.revenue"),
                to: path("properties.value")
            },
            Transform::Drop {
                path: path("properties.note")
            },
            Transform::Drop {
                path: path("context")
            },
        ]
    );
    assert_eq!(
        d.template.as_deref(),
        Some(
            r#"{"value": {{ properties.value | json_encode() }}, "email": {{ traits.email | default(value="") | json_encode() }}}"#
        )
    );
    assert!(d.retry.exponential);
    assert_eq!(d.retry.delay_ms, 500);
}

#[test]
fn retry_delays_default_by_backoff() {
    let b = bundle(
        r#"
destination "a" kind="lambda" {
    function "a"
    allow-pii "properties.phone"
}
destination "b" kind="lambda" {
    function "b"
    drop "properties.phone"
    retry backoff="fixed"
}
destination "c" kind="s3-export" {
    bucket "acme-exports"
    retry backoff="fixed" delay="1m30s"
}
"#,
    );
    let delay = |d: &str| b.destinations[d].retry.delay_ms;
    assert_eq!((delay("a"), delay("b"), delay("c")), (1000, 30_000, 90_000));
    assert_eq!(b.destinations["a"].types, None);
    assert!(b.destinations["a"].transforms.is_empty());
    assert_eq!(b.destinations["a"].template, None);
}

#[test]
fn a_multi_line_template_is_dedented_and_its_errors_point_into_it() {
    let source = format!(
        "{PROJECT}{}",
        r##"
destination "crm" kind="webhook" {
    url "https://hooks.example.com/uniflow"
    template #"""
        {
          "value": {{ properties.revnue }}
        }
        """#
}
"##
    );
    let checked = uniflow_compiler::check(&source);
    let d = checked
        .diagnostics
        .iter()
        .find(|d| d.code.as_str() == "unknown-event-property")
        .expect("the misspelt property is reported");
    let span = d.primary.span;
    assert_eq!(&source[span.start..span.end], "properties.revnue");
    assert_eq!(
        d.help.as_deref(),
        Some("did you mean `properties.revenue`?")
    );
}

#[test]
fn a_template_reads_renamed_fields_where_they_came_from() {
    let b = bundle(
        r##"
destination "crm" kind="webhook" {
    url "https://hooks.example.com/uniflow"
    rename "properties.revenue" to="properties.value"
    hash "properties.phone"
    template #"{"v": {{ properties.value }}, "p": {{ properties.phone | json_encode() }}}"#
}
"##,
    );
    assert_eq!(b.destinations["crm"].transforms.len(), 2);
}

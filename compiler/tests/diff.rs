//! The config diff `uniflow plan` shows: domain changes, breaking changes of
//! event schemas with what they break, version notes and new pii flows.

use uniflow_compiler::Config;
use uniflow_compiler::diff::{
    Action, BreakingChange, ConfigDiff, Direction, PiiFlow, Rule, Subject, diff,
};

const HEAD: &str = r#"
project "acme" {
    region "eu-west-1"
}
"#;

fn config(body: &str) -> Config {
    let source = format!("{HEAD}{body}");
    let checked = uniflow_compiler::check(&source);
    assert!(
        !checked.has_errors(),
        "{source}\n{:#?}",
        checked.diagnostics
    );
    checked.config.unwrap()
}

fn plan(old: &str, new: &str) -> ConfigDiff {
    diff(&config(old), &config(new))
}

/// An event named `Order Completed` with these property lines.
fn order(properties: &str) -> String {
    format!("event \"Order Completed\" {{\n{properties}\n}}\n")
}

fn order_plan(old: &str, new: &str) -> ConfigDiff {
    plan(&order(old), &order(new))
}

/// The (rule, property) pairs of a diff's breaking changes, in order.
fn rules(d: &ConfigDiff) -> Vec<(Rule, Option<&str>)> {
    d.breaking
        .iter()
        .map(|b| (b.rule, b.property.as_deref()))
        .collect()
}

fn only(d: &ConfigDiff, rule: Rule) -> &BreakingChange {
    assert_eq!(d.breaking.len(), 1, "{:#?}", d.breaking);
    let b = &d.breaking[0];
    assert_eq!(b.rule, rule, "{b:#?}");
    assert_eq!(b.direction, rule.direction());
    b
}

const GLUE_REVENUE: &str =
    "the archive's Glue table `acme_dev.raw_events` column `properties` (`$.revenue`)";

#[test]
fn diff_of_a_config_with_itself_is_empty() {
    for source in [
        include_str!("../../examples/shop/uniflow.kdl"),
        include_str!("../../examples/saas/uniflow.kdl"),
    ] {
        let checked = uniflow_compiler::check(source);
        let config = checked.config.unwrap();
        let d = diff(&config, &config);
        assert!(d.is_empty(), "{d:#?}");
    }
}

// ---------------------------------------------------------------------------
// Sender rules
// ---------------------------------------------------------------------------

#[test]
fn new_required_property() {
    let d = order_plan(
        r#"property "revenue" type="number""#,
        r#"property "revenue" type="number"
           property "coupon" type="string" required=#true"#,
    );
    let b = only(&d, Rule::NewRequiredProperty);
    assert_eq!(b.property.as_deref(), Some("coupon"));
    assert_eq!(b.detail, "`coupon` is new and required");
    assert_eq!(
        b.breaks,
        ["app builds that send `Order Completed` without `coupon`"]
    );
}

#[test]
fn optional_to_required() {
    let d = order_plan(
        r#"property "coupon" type="string""#,
        r#"property "coupon" type="string" required=#true"#,
    );
    let b = only(&d, Rule::OptionalToRequired);
    assert_eq!(b.detail, "`coupon` was optional and is now required");
    assert_eq!(
        b.breaks,
        ["app builds that send `Order Completed` without `coupon`"]
    );
}

#[test]
fn narrowed_type_number_to_integer_is_a_sender_break_only() {
    let d = order_plan(
        r#"property "quantity" type="number""#,
        r#"property "quantity" type="integer""#,
    );
    let b = only(&d, Rule::NarrowedType);
    assert_eq!(b.direction, Direction::Senders);
    assert_eq!(
        b.breaks,
        ["app builds that send `Order Completed` with `quantity` as a number"]
    );
}

#[test]
fn narrowed_type_nullable_to_not_nullable() {
    let d = order_plan(
        r#"property "coupon" type="string" nullable=#true"#,
        r#"property "coupon" type="string""#,
    );
    let b = only(&d, Rule::NarrowedType);
    assert_eq!(b.detail, "`coupon` was nullable and no longer is");
    assert_eq!(
        b.breaks,
        ["app builds that send `Order Completed` with `coupon` null"]
    );
}

#[test]
fn removed_enum_value_and_added_value_is_not_a_break() {
    let d = order_plan(
        r#"property "status" type="enum" values="paid stale""#,
        r#"property "status" type="enum" values="paid refunded""#,
    );
    let b = only(&d, Rule::RemovedEnumValue);
    assert_eq!(b.property.as_deref(), Some("status"));
    assert_eq!(
        b.breaks,
        ["app builds that send `Order Completed` with `status` = `stale`"]
    );
    let change = d
        .changes
        .iter()
        .find(|c| c.name == "Order Completed.status")
        .unwrap();
    assert_eq!(change.details, ["values: +refunded -stale"]);

    let widened = order_plan(
        r#"property "status" type="enum" values="paid""#,
        r#"property "status" type="enum" values="paid refunded""#,
    );
    assert!(widened.breaking.is_empty(), "{:#?}", widened.breaking);
}

#[test]
fn tighter_bounds_one_each() {
    let d = order_plan(
        r#"property "quantity" type="integer" max=20
           property "name" type="string" min-length=1"#,
        r#"property "quantity" type="integer" min=1 max=10
           property "name" type="string" min-length=2 max-length=50"#,
    );
    assert_eq!(
        rules(&d),
        [
            (Rule::TighterBound, Some("quantity")),
            (Rule::TighterBound, Some("quantity")),
            (Rule::TighterBound, Some("name")),
            (Rule::TighterBound, Some("name")),
        ]
    );
    assert_eq!(d.breaking[0].detail, "`quantity` has `min` 1 (was none)");
    assert_eq!(
        d.breaking[1].breaks,
        ["app builds that send `Order Completed` with `quantity` above 10"]
    );
}

#[test]
fn multiple_of_tightens_unless_the_old_one_is_a_multiple() {
    let tighter = order_plan(
        r#"property "revenue" type="number" multiple-of=0.01"#,
        r#"property "revenue" type="number" multiple-of=0.05"#,
    );
    only(&tighter, Rule::TighterBound);
    let looser = order_plan(
        r#"property "revenue" type="number" multiple-of=0.05"#,
        r#"property "revenue" type="number" multiple-of=0.01"#,
    );
    assert!(looser.breaking.is_empty(), "{:#?}", looser.breaking);
}

#[test]
fn loosened_or_removed_bounds_are_not_breaks() {
    let d = order_plan(
        r#"property "quantity" type="integer" min=1 max=20
           property "sku" type="string" pattern="^A" format="uuid" max-length=10"#,
        r#"property "quantity" type="integer" max=30
           property "sku" type="string" max-length=20"#,
    );
    assert!(d.breaking.is_empty(), "{:#?}", d.breaking);
    let quantity = d
        .changes
        .iter()
        .find(|c| c.name == "Order Completed.quantity")
        .unwrap();
    assert_eq!(quantity.details, ["min: 1 -> none", "max: 20 -> 30"]);
}

#[test]
fn tighter_format() {
    let d = order_plan(
        r#"property "email" type="string""#,
        r#"property "email" type="string" format="email""#,
    );
    let b = only(&d, Rule::TighterFormat);
    assert_eq!(b.detail, "`email` has format `email` (was none)");
}

#[test]
fn tighter_pattern() {
    let d = order_plan(
        r#"property "sku" type="string" pattern="^[A-Z]+$""#,
        r#"property "sku" type="string" pattern="^[A-Z]{3}$""#,
    );
    let b = only(&d, Rule::TighterPattern);
    assert_eq!(
        b.breaks,
        ["app builds that send `Order Completed` with a `sku` that does not match `^[A-Z]{3}$`"]
    );
}

#[test]
fn strip_to_strict_on_the_event_and_on_a_nested_object() {
    let d = order_plan(
        r#"property "address" type="object" {
               property "city" type="string"
           }"#,
        r#"unknown-keys "strict"
           property "address" type="object" unknown-keys="strict" {
               property "city" type="string"
           }"#,
    );
    assert_eq!(
        rules(&d),
        [
            (Rule::StripToStrict, None),
            (Rule::StripToStrict, Some("address")),
        ]
    );
    let change = d
        .changes
        .iter()
        .find(|c| c.subject == Subject::Event)
        .unwrap();
    assert_eq!(change.details, ["unknown-keys: strip -> strict"]);
}

#[test]
fn nested_and_item_properties_are_named_with_paths() {
    let d = order_plan(
        r#"property "items" type="array" {
               item type="object" {
                   property "sku" type="string"
               }
           }"#,
        r#"property "items" type="array" {
               item type="object" {
                   property "sku" type="string" required=#true
               }
           }"#,
    );
    let b = only(&d, Rule::OptionalToRequired);
    assert_eq!(b.property.as_deref(), Some("items[].sku"));
    assert_eq!(d.changes.len(), 1);
    assert_eq!(d.changes[0].name, "Order Completed.items[].sku");
    assert_eq!(d.changes[0].subject, Subject::Property);
    assert_eq!(d.changes[0].details, ["optional -> required"]);
}

// ---------------------------------------------------------------------------
// Consumer rules and their readers
// ---------------------------------------------------------------------------

const READERS: &str = r##"
destination "crm" kind="webhook" {
    url "https://hooks.example.com/crm"
    events "Order Completed"
    rename "properties.revenue" to="properties.value"
}
destination "hook" kind="webhook" {
    url "https://hooks.example.com/hook"
    events "Order Completed"
    template #"{"v": {{ properties.revenue | json_encode() }}}"#
}
destination "other" kind="webhook" {
    url "https://hooks.example.com/other"
    events "Signed Up"
}
segment "big-spenders" {
    from "Order Completed" within="90d"
    having "sum(revenue) > 500"
}
"##;

const SIGNED_UP: &str = "event \"Signed Up\"\n";

#[test]
fn removed_property_names_segment_destination_and_glue_table() {
    let old = format!(
        "{}{SIGNED_UP}{READERS}",
        order(r#"property "revenue" type="number""#)
    );
    let new = format!(
        "{}{SIGNED_UP}{}",
        order(r#"property "total" type="string""#),
        READERS.replace("properties.revenue", "properties.total")
    );
    let d = plan(&old, &new);
    let b = d
        .breaking
        .iter()
        .find(|b| b.rule == Rule::RemovedProperty)
        .unwrap();
    assert_eq!(b.property.as_deref(), Some("revenue"));
    assert_eq!(b.detail, "`revenue` was removed");
    assert_eq!(
        b.breaks,
        ["segment `big-spenders` reads `revenue`", GLUE_REVENUE]
    );
}

#[test]
fn readers_are_named_for_a_changed_type() {
    let old = format!(
        "{}{SIGNED_UP}{READERS}",
        order(r#"property "revenue" type="number""#)
    );
    let new = format!(
        "{}{SIGNED_UP}{READERS}",
        order(r#"property "revenue" type="string""#)
    );
    let d = plan(&old, &new);
    assert_eq!(
        rules(&d),
        [
            (Rule::NarrowedType, Some("revenue")),
            (Rule::ChangedType, Some("revenue")),
        ]
    );
    let b = &d.breaking[1];
    assert_eq!(b.direction, Direction::Consumers);
    assert_eq!(b.detail, "`revenue` changed type: number -> string");
    assert_eq!(
        b.breaks,
        [
            "segment `big-spenders` reads `revenue`",
            "destination `crm` renames `properties.revenue`",
            "destination `hook`'s template reads `properties.revenue`",
            GLUE_REVENUE,
        ]
    );
    let change = d
        .changes
        .iter()
        .find(|c| c.subject == Subject::Property)
        .unwrap();
    assert_eq!(change.details, ["type: number -> string"]);
}

#[test]
fn segment_where_and_destination_filter_are_readers() {
    let readers = r#"
destination "eur" kind="webhook" {
    url "https://hooks.example.com/eur"
    filter "properties.currency = 'EUR'"
}
segment "eu" {
    from "Order Completed"
    where "properties.currency = 'EUR' AND properties.revenue > 1"
}
"#;
    let old = format!(
        "{}{readers}",
        order(
            r#"property "currency" type="string" required=#true
               property "revenue" type="number""#
        )
    );
    let new = format!(
        "{}{readers}",
        order(
            r#"property "currency" type="string"
               property "revenue" type="number""#
        )
    );
    let d = plan(&old, &new);
    let b = only(&d, Rule::RequiredToOptional);
    assert_eq!(
        b.breaks,
        [
            "segment `eu` reads `currency`",
            "destination `eur` filters on `properties.currency`",
            "the archive's Glue table `acme_dev.raw_events` column `properties` (`$.currency`)",
        ]
    );
}

#[test]
fn required_to_optional_is_a_consumer_break_only() {
    let d = order_plan(
        r#"property "revenue" type="number" required=#true"#,
        r#"property "revenue" type="number""#,
    );
    let b = only(&d, Rule::RequiredToOptional);
    assert_eq!(b.direction, Direction::Consumers);
    assert!(
        d.breaking
            .iter()
            .all(|b| b.direction == Direction::Consumers)
    );
}

#[test]
fn a_renamed_property_is_reported_once_as_a_rename() {
    let d = order_plan(
        r#"property "revenue" type="number" min=0 description="old""#,
        r#"property "amount" type="number" min=0 description="new""#,
    );
    let b = only(&d, Rule::RenamedProperty);
    assert_eq!(b.property.as_deref(), Some("amount"));
    assert_eq!(b.detail, "`revenue` was renamed to `amount`");
    assert_eq!(b.breaks, [GLUE_REVENUE]);
}

#[test]
fn a_different_schema_is_not_a_rename() {
    let d = order_plan(
        r#"property "revenue" type="number""#,
        r#"property "amount" type="integer""#,
    );
    assert_eq!(rules(&d), [(Rule::RemovedProperty, Some("revenue"))]);
}

#[test]
fn a_removed_event_breaks_what_read_it() {
    let old = format!(
        "{}{SIGNED_UP}{READERS}",
        order(r#"property "revenue" type="number""#)
    );
    let new = format!("{}{READERS}", order(r#"property "revenue" type="number""#))
        .replace("events \"Signed Up\"", "events \"Order Completed\"");
    let d = plan(&old, &new);
    assert_eq!(rules(&d), [(Rule::RemovedProperty, None)]);
    assert_eq!(
        d.breaking[0].breaks,
        ["destination `other` receives `Signed Up`"]
    );
    assert!(d.changes.iter().any(|c| c.subject == Subject::Event
        && c.action == Action::Remove
        && c.name == "Signed Up"));
}

#[test]
fn a_removed_event_nothing_reads_is_not_a_break() {
    let d = plan(&format!("{}{SIGNED_UP}", order("")), &order(""));
    assert!(d.breaking.is_empty(), "{:#?}", d.breaking);
    assert_eq!(d.changes.len(), 1);
}

// ---------------------------------------------------------------------------
// Widening
// ---------------------------------------------------------------------------

#[test]
fn widening_changes_are_not_breaks() {
    let d = order_plan(
        r#"property "quantity" type="integer"
           property "kind" type="enum" values="a b"
           property "coupon" type="string""#,
        r#"property "quantity" type="number"
           property "kind" type="string"
           property "coupon" type="string" nullable=#true
           property "note" type="string""#,
    );
    assert!(d.breaking.is_empty(), "{:#?}", d.breaking);
    assert!(d.versions.is_empty());
    let added = d.changes.last().unwrap();
    assert_eq!(
        (added.action, added.name.as_str()),
        (Action::Add, "Order Completed.note")
    );
    assert!(added.details.is_empty());
}

// ---------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------

#[test]
fn version_notes_both_ways() {
    let bumped = plan(
        "event \"Order Completed\" version=1\n",
        "event \"Order Completed\" version=2\n",
    );
    assert_eq!(bumped.versions.len(), 1);
    assert_eq!(
        bumped.versions[0].message,
        "version 1 -> 2 without a breaking change"
    );
    assert!(!bumped.versions[0].breaking);

    let unbumped = order_plan(
        r#"property "coupon" type="string""#,
        r#"property "coupon" type="string" required=#true"#,
    );
    assert_eq!(unbumped.versions.len(), 1);
    let note = &unbumped.versions[0];
    assert_eq!(
        note.message,
        "breaking change without a version change: bump `version` to 2"
    );
    assert!(note.breaking);
    assert_eq!((note.from, note.to), (1, 1));

    let ok = plan(
        &order(r#"property "coupon" type="string""#),
        "event \"Order Completed\" version=2 {\n property \"coupon\" type=\"string\" required=#true\n}\n",
    );
    assert!(ok.versions.is_empty(), "{:#?}", ok.versions);
    assert_eq!(ok.breaking.len(), 1);
}

// ---------------------------------------------------------------------------
// Personal data
// ---------------------------------------------------------------------------

fn flow(destination: &str, event: &str, property: &str, form: &str) -> PiiFlow {
    PiiFlow {
        destination: destination.to_owned(),
        event: event.to_owned(),
        property: property.to_owned(),
        form: form.to_owned(),
    }
}

const PII_EVENTS: &str = r#"
trait "email" type="string" pii=#true
trait "plan" type="string"
event "Order Completed" {
    property "phone" type="string" pii=#true
    property "address" type="object" pii=#true {
        property "street" type="string"
        property "city" type="string"
    }
    property "revenue" type="number"
}
"#;

#[test]
fn a_new_destination_counts_everything_it_receives() {
    let new = format!(
        r#"{PII_EVENTS}
destination "lake" kind="s3-export" {{
    bucket "acme-lake"
}}
destination "crm" kind="webhook" {{
    url "https://hooks.example.com/crm"
    types "identify"
}}
"#
    );
    let d = plan(PII_EVENTS, &new);
    assert_eq!(
        d.pii_flows,
        [
            flow("crm", "identify", "email", "unhashed"),
            flow("lake", "Order Completed", "address", "unhashed"),
            flow("lake", "Order Completed", "phone", "unhashed"),
            flow("lake", "identify", "email", "unhashed"),
        ]
    );
}

#[test]
fn hashed_dropped_and_allowed_values() {
    let destination = r#"
destination "ads" kind="lambda" {
    function "ads-forwarder"
    events "Order Completed"
    hash "properties.phone" "properties.address.street" "properties.address.city"
}
destination "mail" kind="webhook" {
    url "https://hooks.example.com/mail"
    events "Order Completed"
    drop "properties.address"
    allow-pii "properties.phone"
}
"#;
    let d = plan(PII_EVENTS, &format!("{PII_EVENTS}{destination}"));
    assert_eq!(
        d.pii_flows,
        [
            flow("ads", "Order Completed", "address", "hashed"),
            flow("ads", "Order Completed", "phone", "hashed"),
            flow("mail", "Order Completed", "phone", "unhashed"),
        ]
    );
}

#[test]
fn a_property_newly_marked_pii_is_a_new_flow() {
    let destination = r#"
destination "lake" kind="s3-export" {
    bucket "acme-lake"
    types "track"
}
"#;
    let old = format!(
        "{}{destination}",
        order(r#"property "email" type="string""#)
    );
    let new = format!(
        "{}{destination}",
        order(r#"property "email" type="string" pii=#true"#)
    );
    let d = plan(&old, &new);
    assert_eq!(
        d.pii_flows,
        [flow("lake", "Order Completed", "email", "unhashed")]
    );
    assert_eq!(d.changes[0].details, ["pii: no -> yes"]);
    // Already flowing: nothing new.
    assert!(diff(&config(&new), &config(&new)).pii_flows.is_empty());
}

// ---------------------------------------------------------------------------
// Domain changes
// ---------------------------------------------------------------------------

#[test]
fn changes_keep_file_order_and_removed_things_where_they_stood() {
    let d = plan(
        "event \"A\"\nevent \"B\"\nevent \"C\"\n",
        "event \"A\"\nevent \"C\"\nevent \"D\"\n",
    );
    let names: Vec<(Action, &str)> = d
        .changes
        .iter()
        .map(|c| (c.action, c.name.as_str()))
        .collect();
    assert_eq!(names, [(Action::Remove, "B"), (Action::Add, "D")]);
    let d = plan("event \"B\"\nevent \"A\"\n", "event \"A\"\nevent \"Z\"\n");
    let names: Vec<(Action, &str)> = d
        .changes
        .iter()
        .map(|c| (c.action, c.name.as_str()))
        .collect();
    assert_eq!(names, [(Action::Remove, "B"), (Action::Add, "Z")]);
}

#[test]
fn settings_of_every_kind_of_thing_are_compared() {
    let old = r#"
source "web" kind="browser" {
    allow-origin "https://a.example"
}
event "Signed Up" {
    description "old"
}
trait "email" type="string"
identity {
    identifier "user_id" priority=1 limit=1
    identifier "email" priority=2 limit=3
}
destination "crm" kind="webhook" {
    url "https://a.example/hook"
    events "Signed Up"
}
segment "all" {
    from "Signed Up"
    refresh "1h"
}
"#;
    let new = r#"
source "web" kind="browser" {
    allow-origin "https://a.example" "https://b.example"
    on-violation "reject"
}
event "Signed Up" version=2 {
    description "new"
}
trait "email" type="string" pii=#true
identity {
    identifier "user_id" priority=1 limit=1
    identifier "email" priority=2 limit=5 normalize="lowercase"
    blocked "nobody"
}
destination "crm" kind="webhook" {
    url "https://b.example/hook"
    retry attempts=3
}
segment "all" {
    from "Signed Up"
    refresh "6h"
}
"#;
    let d = plan(old, new);
    let got: Vec<(Subject, &str, Vec<&str>)> = d
        .changes
        .iter()
        .map(|c| {
            (
                c.subject,
                c.name.as_str(),
                c.details.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Subject::Source,
                "web",
                vec![
                    "allow-origin: +https://b.example",
                    "on-violation: quarantine -> reject"
                ]
            ),
            (
                Subject::Event,
                "Signed Up",
                vec!["description: \"old\" -> \"new\"", "version: 1 -> 2"]
            ),
            (Subject::Trait, "user.email", vec!["pii: no -> yes"]),
            (
                Subject::Identifier,
                "email",
                vec!["limit: 3 -> 5", "normalize: none -> lowercase"]
            ),
            (Subject::Identifier, "blocked", vec!["blocked: +nobody"]),
            (
                Subject::Destination,
                "crm",
                vec![
                    "url: https://a.example/hook -> https://b.example/hook",
                    "events: Signed Up -> all",
                    "retry attempts: 10 -> 3"
                ]
            ),
            (Subject::Segment, "all", vec!["refresh: 1h -> 6h"]),
        ]
    );
    assert_eq!(
        d.versions[0].message,
        "version 1 -> 2 without a breaking change"
    );
}

#[test]
fn having_reads_paths_but_not_literals_functions_or_message_fields() {
    let segment = |having: &str| {
        format!("segment \"s\" {{\n    from \"Order Completed\"\n    having \"{having}\"\n}}\n")
    };
    let props = r#"property "revenue" type="number" required=#true"#;
    let loose = r#"property "revenue" type="number""#;
    for (having, reads) in [
        ("sum(revenue) > 500", true),
        ("sum(properties.revenue) > 500", true),
        ("count_if(event = 'revenue') > 0", false),
        (
            "max(timestamp) < current_timestamp - interval '60' day",
            false,
        ),
        ("revenue(1) > 0", false),
    ] {
        let old = format!("{}{}", order(props), segment(having));
        let new = format!("{}{}", order(loose), segment(having));
        let d = plan(&old, &new);
        let b = only(&d, Rule::RequiredToOptional);
        let named = b.breaks.iter().any(|r| r == "segment `s` reads `revenue`");
        assert_eq!(named, reads, "{having}: {:#?}", b.breaks);
    }
}

#[test]
fn a_template_sends_only_what_it_reads() {
    let destination = r##"
destination "hook" kind="webhook" {
    url "https://hooks.example.com/hook"
    events "Order Completed"
    rename "properties.phone" to="properties.tel"
    template #"{"tel": {{ properties.tel | json_encode() }}}"#
}
"##;
    let d = plan(PII_EVENTS, &format!("{PII_EVENTS}{destination}"));
    assert_eq!(
        d.pii_flows,
        [flow("hook", "Order Completed", "phone", "unhashed")]
    );
}

#[test]
fn diff_between_the_examples_is_deterministic() {
    let shop = uniflow_compiler::check(include_str!("../../examples/shop/uniflow.kdl"))
        .config
        .unwrap();
    let saas = uniflow_compiler::check(include_str!("../../examples/saas/uniflow.kdl"))
        .config
        .unwrap();
    for (a, b) in [(&shop, &saas), (&saas, &shop)] {
        let first = diff(a, b);
        assert!(!first.changes.is_empty());
        assert_eq!(first, diff(a, b));
        let mut sorted = first.pii_flows.clone();
        sorted.sort();
        assert_eq!(first.pii_flows, sorted);
        let senders_first = first
            .breaking
            .windows(2)
            .all(|w| w[0].direction <= w[1].direction);
        assert!(senders_first);
    }
}

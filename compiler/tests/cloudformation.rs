//! The generated stack's security and stability properties, checked on every
//! example and on configs made to probe one property each.

#![allow(clippy::disallowed_methods)] // the test reads the examples

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .join("uniflow.kdl");
    std::fs::read_to_string(path).unwrap()
}

fn build(source: &str) -> BTreeMap<String, String> {
    let (checked, artifacts) = uniflow_compiler::build(source);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    artifacts.unwrap().files
}

fn template(source: &str) -> Value {
    serde_json::from_str(&build(source)["cloudformation.json"]).unwrap()
}

/// Logical ids a value refers to: `Ref`, `Fn::GetAtt` and `${Id}` / `${Id.Attr}` in `Fn::Sub`.
fn references(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("Ref", Value::String(id)) => {
                        out.insert(id.clone());
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        out.insert(parts[0].as_str().unwrap().to_owned());
                    }
                    ("Fn::Sub", Value::String(text)) => {
                        for part in text.split("${").skip(1) {
                            let name = part.split('}').next().unwrap();
                            if !name.starts_with("AWS::") && !name.starts_with('!') {
                                out.insert(name.split('.').next().unwrap().to_owned());
                            }
                        }
                    }
                    _ => references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn role_statements<'a>(t: &'a Value, role: &str) -> &'a Vec<Value> {
    t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
}

const EXAMPLES: &[&str] = &["shop", "saas"];

#[test]
fn no_role_is_allowed_anything_on_every_resource() {
    for name in EXAMPLES {
        let t = template(&example(name));
        for (id, resource) in t["Resources"].as_object().unwrap() {
            if resource["Type"] != "AWS::IAM::Role" {
                continue;
            }
            for statement in role_statements(&t, id) {
                assert_eq!(statement["Effect"], "Allow");
                let resources = statement["Resource"].as_array().unwrap();
                assert!(!resources.is_empty(), "{name} {id}: {statement}");
                for r in resources {
                    assert_ne!(r, "*", "{name} {id} grants {} on *", statement["Action"]);
                    if let Some(s) = r.as_str() {
                        assert!(s.starts_with("arn:"), "{name} {id}: {s}");
                    }
                }
                for action in statement["Action"].as_array().unwrap() {
                    let action = action.as_str().unwrap();
                    assert!(
                        !action.contains('*'),
                        "{name} {id}: wildcard action {action}"
                    );
                }
            }
            assert!(resource["Properties"].get("ManagedPolicyArns").is_none());
        }
    }
}

/// Each function's role names only what the function is configured to use:
/// what its environment names, what its mappings read, its own log group and
/// the data key, plus the queues it sends to or drains by name.
#[test]
fn each_function_role_reaches_only_its_own_resources() {
    for name in EXAMPLES {
        let source = example(name);
        let files = build(&source);
        let t: Value = serde_json::from_str(&files["cloudformation.json"]).unwrap();
        let destinations: Vec<String> = t["Resources"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("Destination") && k.ends_with("Queue"))
            .map(|k| k.trim_end_matches("Queue").to_owned())
            .collect();
        assert!(!destinations.is_empty());
        for role in ["ingest", "processor", "connector", "management"] {
            let config: Value =
                serde_json::from_str(&files[&format!("lambda/{role}.json")]).unwrap();
            let id = format!("{}{}", role[..1].to_uppercase(), &role[1..]);
            let mut told = BTreeSet::new();
            for value in config["environment"].as_object().unwrap().values() {
                references(&serde_json::json!({ "Fn::Sub": value }), &mut told);
            }
            for source in config["event_sources"].as_array().into_iter().flatten() {
                told.insert(source["reads"].as_str().unwrap().to_owned());
            }
            told.insert("DataKey".into());
            told.insert(format!("{id}LogGroup"));
            // Names the function derives from UNIFLOW_QUEUE_URL_PREFIX.
            match role {
                "processor" => {
                    told.insert("ProcessorFailuresQueue".into());
                    told.extend(destinations.iter().map(|d| format!("{d}Queue")));
                }
                "connector" => told.extend(destinations.iter().map(|d| format!("{d}Dlq"))),
                // The destinations API reports each queue's and DLQ's depth.
                "management" => told.extend(
                    destinations
                        .iter()
                        .flat_map(|d| [format!("{d}Queue"), format!("{d}Dlq")]),
                ),
                _ => {}
            }
            let mut granted = BTreeSet::new();
            for statement in role_statements(&t, &format!("{id}Role")) {
                references(&statement["Resource"], &mut granted);
            }
            let beyond: Vec<_> = granted.difference(&told).collect();
            assert!(
                beyond.is_empty(),
                "{name}: {role} reaches {beyond:?} it is not configured to use"
            );
            // And it can reach everything it is told about.
            let unreachable: Vec<_> = told
                .iter()
                .filter(|r| !granted.contains(*r) && !r.ends_with("Function"))
                .collect();
            assert!(
                unreachable.is_empty(),
                "{name}: {role} cannot reach {unreachable:?}"
            );
        }
    }
}

#[test]
fn renaming_one_destination_touches_only_its_resources() {
    let source = example("shop");
    let before = template(&source);
    let renamed = source.replace("destination \"finance-ledger\"", "destination \"ledger\"");
    assert_ne!(renamed, source);
    let after = template(&renamed);
    let ids = |t: &Value| -> BTreeSet<String> {
        t["Resources"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let (before_ids, after_ids) = (ids(&before), ids(&after));
    let removed: Vec<_> = before_ids.difference(&after_ids).collect();
    let added: Vec<_> = after_ids.difference(&before_ids).collect();
    assert!(
        !removed.is_empty()
            && removed
                .iter()
                .all(|id| id.starts_with("DestinationFinanceLedger")),
        "{removed:?}"
    );
    assert!(
        !added.is_empty() && added.iter().all(|id| id.starts_with("DestinationLedger")),
        "{added:?}"
    );
    assert_eq!(removed.len(), added.len());
    // Every other resource is unchanged except those listing all queues. (Any
    // edit gives a new bundle, so each function's UNIFLOW_BUNDLE changes too.)
    let without_bundle = |t: &Value, id: &str| {
        let mut r = t["Resources"][id].clone();
        if let Some(env) = r.pointer_mut("/Properties/Environment/Variables") {
            env.as_object_mut().unwrap().remove("UNIFLOW_BUNDLE");
        }
        r
    };
    let changed: BTreeSet<&str> = before_ids
        .intersection(&after_ids)
        .filter(|id| without_bundle(&before, id) != without_bundle(&after, id))
        .map(String::as_str)
        .collect();
    assert_eq!(
        changed,
        BTreeSet::from(["ConnectorRole", "ManagementRole", "ProcessorRole"]),
    );
}

#[test]
fn outputs_avoid_get_att() {
    for name in EXAMPLES {
        let t = template(&example(name));
        for (id, output) in t["Outputs"].as_object().unwrap() {
            assert!(
                !output["Value"].to_string().contains("Fn::GetAtt"),
                "{name}: output {id} uses Fn::GetAtt"
            );
        }
    }
}

const PROBE: &str = r#"
project "probe" {
    region "us-east-1"
    traffic events-per-month=20_000_000_000 mean-event-bytes=100 monthly-tracked-users=1_000_000
}
source "web" kind="browser" {
    allow-origin "https://b.example.com" "https://a.example.com"
}
source "app" kind="browser" {
    allow-origin "https://a.example.com"
}
event "Signed Up" {}
destination "crm" kind="webhook" {
    url "https://crm.example.com/hook"
    secret from="env:CRM_SIGNING_SECRET"
    header "Authorization" from="secretsmanager:probe/crm-token"
    header "X-Key" from="ssm:/probe/crm-key"
    timeout "120s"
}
destination "lake" kind="s3-export" {
    bucket "probe-lake"
    prefix "events/"
}
destination "enrich" kind="lambda" {
    function "arn:aws:lambda:us-east-1:111122223333:function:enrich"
}
"#;

#[test]
fn secrets_are_references_and_env_secrets_are_no_echo_parameters() {
    let files = build(PROBE);
    let text = &files["cloudformation.json"];
    let t: Value = serde_json::from_str(text).unwrap();
    let parameter = &t["Parameters"]["EnvSecretCrmSigningSecret"];
    assert_eq!(parameter["NoEcho"], true);
    assert_eq!(
        t["Resources"]["ConnectorFunction"]["Properties"]["Environment"]["Variables"]["CRM_SIGNING_SECRET"],
        serde_json::json!({ "Fn::Sub": "${EnvSecretCrmSigningSecret}" })
    );
    let grants: BTreeMap<String, String> = role_statements(&t, "ConnectorRole")
        .iter()
        .map(|s| {
            (
                s["Sid"].as_str().unwrap().to_owned(),
                s["Resource"].to_string(),
            )
        })
        .collect();
    assert!(grants["ReadSsmSecrets"].contains(":parameter/probe/crm-key"));
    assert!(grants["ReadSecretsManagerSecrets"].contains(":secret:probe/crm-token-??????"));
    assert!(grants["WriteExports"].contains("arn:${AWS::Partition}:s3:::probe-lake/events/*"));
    assert!(
        grants["InvokeDestinationFunctions"]
            .contains("arn:aws:lambda:us-east-1:111122223333:function:enrich")
    );
    // A 120 s request needs a 360 s connector and 36 min of queue visibility.
    assert_eq!(
        t["Resources"]["ConnectorFunction"]["Properties"]["Timeout"],
        360
    );
    assert_eq!(
        t["Resources"]["DestinationCrmQueue"]["Properties"]["VisibilityTimeout"],
        2160
    );
}

#[test]
fn the_traffic_envelope_sizes_the_stream_and_throttling() {
    // 20B small events a month: record-bound shards cost more than on-demand.
    let t = template(PROBE);
    let stream = &t["Resources"]["EventStream"]["Properties"];
    assert_eq!(stream["StreamModeDetails"]["StreamMode"], "ON_DEMAND");
    assert!(stream.get("ShardCount").is_none());
    assert!(
        t["Resources"]["ProcessorFunction"]["Properties"]
            .get("ReservedConcurrentExecutions")
            .is_none()
    );
    // The shop's 40M events fit one provisioned shard.
    let shop = template(&example("shop"));
    let stream = &shop["Resources"]["EventStream"]["Properties"];
    assert_eq!(stream["StreamModeDetails"]["StreamMode"], "PROVISIONED");
    assert_eq!(stream["ShardCount"], 1);
    let throttle = &shop["Resources"]["IngestApiStage"]["Properties"]["DefaultRouteSettings"];
    assert!(
        throttle["ThrottlingRateLimit"].as_u64().unwrap() <= 1000,
        "{throttle}"
    );
}

#[test]
fn cors_allows_exactly_the_browser_sources_origins() {
    let t = template(PROBE);
    assert_eq!(
        t["Resources"]["IngestApi"]["Properties"]["CorsConfiguration"]["AllowOrigins"],
        serde_json::json!(["https://a.example.com", "https://b.example.com"])
    );
    let routes: BTreeSet<String> = t["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::ApiGatewayV2::Route")
        .map(|r| r["Properties"]["RouteKey"].as_str().unwrap().to_owned())
        .collect();
    for call in [
        "track", "identify", "page", "screen", "group", "alias", "batch",
    ] {
        assert!(routes.contains(&format!("POST /v1/{call}")), "{routes:?}");
    }
    assert!(routes.contains("ANY /api/v1/{proxy+}"));
}

#[test]
fn lambda_configs_and_template_agree() {
    for name in EXAMPLES {
        let files = build(&example(name));
        let t: Value = serde_json::from_str(&files["cloudformation.json"]).unwrap();
        for role in ["ingest", "processor", "connector", "management"] {
            let config: Value =
                serde_json::from_str(&files[&format!("lambda/{role}.json")]).unwrap();
            let id = format!("{}{}Function", role[..1].to_uppercase(), &role[1..]);
            let p = &t["Resources"][&id]["Properties"];
            assert_eq!(p["MemorySize"], config["memory_mb"]);
            assert_eq!(p["Timeout"], config["timeout_secs"]);
            assert_eq!(p["FunctionName"], config["function_name"]);
            assert_eq!(
                p.get("ReservedConcurrentExecutions"),
                config.get("reserved_concurrency")
            );
            for source in config["event_sources"].as_array().into_iter().flatten() {
                let mapping = &t["Resources"][source["id"].as_str().unwrap()]["Properties"];
                assert_eq!(mapping["BatchSize"], source["batch_size"]);
                assert_eq!(
                    mapping["MaximumBatchingWindowInSeconds"],
                    source["batching_window_secs"]
                );
            }
        }
    }
}

/// What operations on a deployed stack find its resources by is what the
/// template names them: the queues, the state table, the raw archive.
#[test]
fn deployed_names_are_the_templates() {
    use uniflow_compiler::generate::cloudformation::deployed;
    for name in EXAMPLES {
        let source = example(name);
        let config = uniflow_compiler::check(&source).config.unwrap();
        let d = deployed(&config).unwrap();
        let t = template(&source);
        let r = &t["Resources"];
        assert_eq!(r["StateTable"]["Properties"]["TableName"], d.state_table);
        for destination in &config.destinations {
            let id =
                uniflow_compiler::generate::cloudformation::destination_id(&destination.name.value);
            let queue = format!("{}-{}", d.resource_prefix, destination.name.value);
            assert_eq!(r[format!("{id}Queue")]["Properties"]["QueueName"], queue);
            assert_eq!(
                r[format!("{id}Dlq")]["Properties"]["QueueName"],
                format!("{queue}-dlq")
            );
        }
        let prefix =
            r["RawDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]["Prefix"]
                .as_str()
                .unwrap();
        assert!(
            prefix.starts_with(&format!("{}year=", d.raw_archive_prefix)),
            "{prefix}"
        );
        let raw_bucket = uniflow_compiler::generate::cloudformation::RAW_BUCKET;
        assert_eq!(r[raw_bucket]["Type"], "AWS::S3::Bucket");
        assert_eq!(d.raw_bucket_name_contains, raw_bucket.to_lowercase());
        // No name is given: CloudFormation names it after its logical id.
        assert!(r[raw_bucket]["Properties"].get("BucketName").is_none());
        let stack_tags = &t["Metadata"]["Uniflow"]["StackTags"];
        assert_eq!(
            stack_tags["uniflow:project"],
            d.raw_bucket_tags["uniflow:project"]
        );
        assert_eq!(
            stack_tags["uniflow:stage"],
            d.raw_bucket_tags["uniflow:stage"]
        );
        // Ingest reads its write keys from the path apply puts them under,
        // and its role may read that path and nothing else of the state.
        let ingest = &r["IngestFunction"]["Properties"];
        assert_eq!(
            ingest["Environment"]["Variables"]["UNIFLOW_WRITE_KEYS_PATH"],
            d.write_keys_path
        );
        assert!(ingest["Environment"]["Variables"]["UNIFLOW_STATE_TABLE"].is_null());
        let statements =
            r["IngestRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap();
        let read_keys = statements
            .iter()
            .find(|s| s["Sid"] == "ReadWriteKeys")
            .unwrap();
        assert_eq!(
            read_keys["Action"],
            serde_json::json!(["ssm:GetParametersByPath"])
        );
        assert_eq!(
            read_keys["Resource"][0]["Fn::Sub"],
            format!(
                "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{}",
                d.write_keys_path.trim_end_matches('/')
            )
        );
        let state_table = serde_json::json!({ "Fn::GetAtt": ["StateTable", "Arn"] });
        assert!(
            statements
                .iter()
                .all(|s| !s["Resource"].as_array().unwrap().contains(&state_table)),
            "{statements:#?}"
        );
    }
}

//! What a template change does to resources and IAM permissions, read from the two templates.
//!
//! Everything here works on the generated `cloudformation.json` as a
//! [`Value`], with no AWS access: [`resource_changes`] is the change set
//! when CloudFormation cannot be asked (`--against FILE`), [`iam_widening`]
//! and [`retained_removals`] feed the plan's risk callouts in every mode.
//! Malformed or missing parts of a template count as empty, never as an
//! error: a template the compiler wrote is well formed, and a plan must not
//! fail on a hand-edited one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::model::{ResourceAction, ResourceChange};

/// The resources of `old` (none when `None`) and `new`, compared by logical
/// id: added, modified (naming the top-level keys and `Properties.<Name>`
/// that differ) and removed, sorted by action then logical id.
///
/// Replacements cannot be told from the templates alone (only
/// CloudFormation knows which property changes replace a resource), so a
/// changed resource is always [`ResourceAction::Modify`] here.
pub fn resource_changes(old: Option<&Value>, new: &Value) -> Vec<ResourceChange> {
    let empty = Map::new();
    let old = old.map_or(&empty, resources);
    let new = resources(new);
    let mut changes = Vec::new();
    for (id, resource) in new {
        match old.get(id) {
            None => changes.push(ResourceChange {
                action: ResourceAction::Add,
                logical_id: id.clone(),
                resource_type: resource_type(resource),
                details: Vec::new(),
            }),
            Some(before) if before != resource => changes.push(ResourceChange {
                action: ResourceAction::Modify,
                logical_id: id.clone(),
                resource_type: resource_type(resource),
                details: differing_keys(before, resource),
            }),
            Some(_) => {}
        }
    }
    for (id, resource) in old {
        if !new.contains_key(id) {
            changes.push(ResourceChange {
                action: ResourceAction::Remove,
                logical_id: id.clone(),
                resource_type: resource_type(resource),
                details: Vec::new(),
            });
        }
    }
    changes.sort_by(|a, b| (a.action, &a.logical_id).cmp(&(b.action, &b.logical_id)));
    changes
}

/// One sentence per IAM role of `new` that gains permissions over `old`:
/// "role `ConnectorRole` gains sqs:SendMessage on DestinationCrmDlq.Arn".
///
/// A role's grants are the (action, resource) pairs of the `Allow`
/// statements of its inline `Policies`, of `AWS::IAM::Policy` and
/// `AWS::IAM::ManagedPolicy` resources naming it in `Roles`, and of the
/// managed policies in its `ManagedPolicyArns` (expanded when declared in
/// the same template, else named as a whole). A grant is new when no grant
/// of the same role in `old` covers it (`*` and `?` wildcards in old
/// actions and resources are honoured). A role that is new counts entirely.
/// Roles are in logical id order, actions sorted within a role.
pub fn iam_widening(old: Option<&Value>, new: &Value) -> Vec<String> {
    let before = old.map(grants).unwrap_or_default();
    let after = grants(new);
    let mut sentences = Vec::new();
    for (role, granted) in &after {
        let previous = before.get(role);
        let gained: Vec<&Grant> = granted
            .iter()
            .filter(|g| previous.is_none_or(|p| !p.iter().any(|old| old.covers(g))))
            .collect();
        if gained.is_empty() {
            continue;
        }
        let who = if previous.is_none() {
            format!("new role `{role}`")
        } else {
            format!("role `{role}`")
        };
        sentences.push(format!("{who} gains {}", describe(&gained)));
    }
    sentences
}

/// One sentence per resource of `old` that is gone from `new` and has
/// `DeletionPolicy: Retain` (the data stores): CloudFormation removes it
/// from the stack and keeps it, with its data, in the account. In logical
/// id order.
pub fn retained_removals(old: Option<&Value>, new: &Value) -> Vec<String> {
    let Some(old) = old else {
        return Vec::new();
    };
    let new = resources(new);
    resources(old)
        .iter()
        .filter(|(id, _)| !new.contains_key(*id) && is_retained(Some(old), id))
        .map(|(id, resource)| retained_sentence(id, &resource_type(resource)))
        .collect()
}

/// Whether the resource `id` of `template` has `DeletionPolicy: Retain`.
pub fn is_retained(template: Option<&Value>, id: &str) -> bool {
    template
        .and_then(|t| resources(t).get(id))
        .and_then(|r| r.get("DeletionPolicy"))
        .and_then(Value::as_str)
        == Some("Retain")
}

/// "`RawBucket` (AWS::S3::Bucket) leaves the stack but is kept
/// (DeletionPolicy Retain)".
fn retained_sentence(id: &str, kind: &str) -> String {
    format!("`{id}` ({kind}) leaves the stack but is kept (DeletionPolicy Retain)")
}

/// Renders a template value compactly: `Ref X` as `X`, `Fn::GetAtt` as
/// `X.Arn`, `Fn::Sub` as its text, `Fn::Join` joined, other objects as
/// compact JSON.
pub fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) if map.len() == 1 => {
            let (key, arg) = map
                .iter()
                .next()
                .map_or(("", &Value::Null), |(k, v)| (k.as_str(), v));
            match (key, arg) {
                ("Ref", Value::String(name)) => name.clone(),
                ("Fn::GetAtt", Value::String(path)) => path.clone(),
                ("Fn::GetAtt", Value::Array(parts)) => {
                    parts.iter().map(compact).collect::<Vec<_>>().join(".")
                }
                ("Fn::Sub", Value::String(text)) => text.clone(),
                ("Fn::Sub", Value::Array(parts)) => parts.first().map(compact).unwrap_or_default(),
                ("Fn::Join", Value::Array(parts)) if parts.len() == 2 => {
                    let sep = parts[0].as_str().unwrap_or_default();
                    match &parts[1] {
                        Value::Array(items) => {
                            items.iter().map(compact).collect::<Vec<_>>().join(sep)
                        }
                        other => compact(other),
                    }
                }
                ("Fn::ImportValue", arg) => format!("import {}", compact(arg)),
                _ => value.to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// The `Resources` object of a template (empty when absent).
fn resources(template: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    template
        .get("Resources")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

fn resource_type(resource: &Value) -> String {
    resource
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or("unknown type")
        .to_owned()
}

/// The top-level keys of two versions of a resource that differ, with
/// `Properties` broken down by property: `Properties.VisibilityTimeout`,
/// `DeletionPolicy`.
fn differing_keys(before: &Value, after: &Value) -> Vec<String> {
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut details = Vec::new();
    for key in keys {
        let (b, a) = (before.get(key), after.get(key));
        if b == a {
            continue;
        }
        match (
            key.as_str(),
            b.and_then(Value::as_object),
            a.and_then(Value::as_object),
        ) {
            ("Properties", Some(b), Some(a)) => {
                let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
                details.extend(
                    names
                        .into_iter()
                        .filter(|name| b.get(*name) != a.get(*name))
                        .map(|name| format!("Properties.{name}")),
                );
            }
            _ => details.push(key.clone()),
        }
    }
    details
}

/// One permission: an action (or `managed policy`) on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    action: String,
    resource: String,
}

/// The action of a managed policy attached whole, when its statements are
/// not in the template.
const MANAGED_POLICY: &str = "managed policy";

impl Grant {
    /// Whether this (old) grant allows everything `other` allows.
    fn covers(&self, other: &Grant) -> bool {
        if self.action == MANAGED_POLICY || other.action == MANAGED_POLICY {
            return self == other;
        }
        glob(
            &self.action.to_ascii_lowercase(),
            &other.action.to_ascii_lowercase(),
        ) && glob(&self.resource, &other.resource)
    }
}

/// IAM wildcard matching: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Every role's grants in a template, by the role's logical id (or name,
/// for a role outside the template).
fn grants(template: &Value) -> BTreeMap<String, BTreeSet<Grant>> {
    let resources = resources(template);
    let mut out: BTreeMap<String, BTreeSet<Grant>> = BTreeMap::new();
    for (id, resource) in resources {
        let props = resource.get("Properties").unwrap_or(&Value::Null);
        match resource.get("Type").and_then(Value::as_str) {
            Some("AWS::IAM::Role") => {
                let role = out.entry(id.clone()).or_default();
                for policy in list(props.get("Policies")) {
                    statements_grants(policy.get("PolicyDocument"), role);
                }
                for arn in list(props.get("ManagedPolicyArns")) {
                    let declared = arn
                        .get("Ref")
                        .and_then(Value::as_str)
                        .and_then(|name| resources.get(name))
                        .filter(|r| {
                            r.get("Type").and_then(Value::as_str) == Some("AWS::IAM::ManagedPolicy")
                        });
                    match declared {
                        Some(managed) => statements_grants(
                            managed
                                .get("Properties")
                                .and_then(|p| p.get("PolicyDocument")),
                            role,
                        ),
                        None => {
                            role.insert(Grant {
                                action: MANAGED_POLICY.into(),
                                resource: compact(arn),
                            });
                        }
                    }
                }
            }
            Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy") => {
                let mut granted = BTreeSet::new();
                statements_grants(props.get("PolicyDocument"), &mut granted);
                for role in list(props.get("Roles")) {
                    out.entry(compact(role))
                        .or_default()
                        .extend(granted.iter().cloned());
                }
            }
            _ => {}
        }
    }
    out
}

/// Adds the grants of a policy document's `Allow` statements.
fn statements_grants(document: Option<&Value>, into: &mut BTreeSet<Grant>) {
    let Some(document) = document else {
        return;
    };
    for statement in list(document.get("Statement")) {
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let actions: Vec<String> = match (statement.get("Action"), statement.get("NotAction")) {
            (Some(actions), _) => list(Some(actions)).map(compact).collect(),
            (None, Some(not)) => vec![format!(
                "every action but {}",
                list(Some(not)).map(compact).collect::<Vec<_>>().join(", ")
            )],
            (None, None) => Vec::new(),
        };
        let resources: Vec<String> = match (statement.get("Resource"), statement.get("NotResource"))
        {
            (Some(resources), _) => list(Some(resources)).map(compact).collect(),
            (None, Some(not)) => vec![format!(
                "every resource but {}",
                list(Some(not)).map(compact).collect::<Vec<_>>().join(", ")
            )],
            (None, None) => vec!["*".to_owned()],
        };
        for action in &actions {
            for resource in &resources {
                into.insert(Grant {
                    action: action.clone(),
                    resource: resource.clone(),
                });
            }
        }
    }
}

/// A value that may be one item or a list of them, as IAM allows.
fn list(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let items: &[Value] = match value {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(one) => std::slice::from_ref(one),
    };
    items.iter()
}

/// "sqs:DeleteMessage, sqs:ReceiveMessage on A, B; s3:PutObject on C":
/// actions with the same resources grouped, groups in action order.
fn describe(gained: &[&Grant]) -> String {
    let mut by_action: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for grant in gained {
        by_action
            .entry(&grant.action)
            .or_default()
            .push(&grant.resource);
    }
    let mut managed = Vec::new();
    let mut groups: Vec<(Vec<&str>, Vec<&str>)> = Vec::new();
    for (action, resources) in by_action {
        if action == MANAGED_POLICY {
            managed = resources;
            continue;
        }
        match groups.iter_mut().find(|(_, r)| *r == resources) {
            Some((actions, _)) => actions.push(action),
            None => groups.push((vec![action], resources)),
        }
    }
    let mut parts: Vec<String> = groups
        .into_iter()
        .map(|(actions, resources)| format!("{} on {}", actions.join(", "), resources.join(", ")))
        .collect();
    if !managed.is_empty() {
        let noun = if managed.len() == 1 {
            "managed policy"
        } else {
            "managed policies"
        };
        parts.push(format!("{noun} {}", managed.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn role(statements: Value) -> Value {
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Policies": [{
                    "PolicyName": "least-privilege",
                    "PolicyDocument": { "Version": "2012-10-17", "Statement": statements },
                }],
            },
        })
    }

    fn template(resources: Value) -> Value {
        json!({ "Resources": resources })
    }

    fn rows(changes: &[ResourceChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                format!(
                    "{:?} {} {} [{}]",
                    c.action,
                    c.logical_id,
                    c.resource_type,
                    c.details.join(", ")
                )
            })
            .collect()
    }

    #[test]
    fn new_stack_adds_every_resource_in_id_order() {
        let new = template(json!({
            "Queue": { "Type": "AWS::SQS::Queue", "Properties": {} },
            "Bucket": { "Type": "AWS::S3::Bucket" },
        }));
        assert_eq!(
            rows(&resource_changes(None, &new)),
            [
                "Add Bucket AWS::S3::Bucket []",
                "Add Queue AWS::SQS::Queue []"
            ]
        );
    }

    #[test]
    fn changes_sorted_by_action_with_differing_keys() {
        let old = template(json!({
            "Gone": { "Type": "AWS::SQS::Queue" },
            "Same": { "Type": "AWS::SNS::Topic", "Properties": { "A": 1 } },
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": { "VisibilityTimeout": 30, "Tags": [], "Kept": "x" },
            },
        }));
        let new = template(json!({
            "Same": { "Type": "AWS::SNS::Topic", "Properties": { "A": 1 } },
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": { "VisibilityTimeout": 60, "Kept": "x", "DelaySeconds": 1 },
                "DeletionPolicy": "Delete",
            },
            "Added": { "Type": "AWS::SQS::Queue" },
        }));
        assert_eq!(
            rows(&resource_changes(Some(&old), &new)),
            [
                "Add Added AWS::SQS::Queue []",
                "Modify Queue AWS::SQS::Queue [DeletionPolicy, Properties.DelaySeconds, Properties.Tags, Properties.VisibilityTimeout]",
                "Remove Gone AWS::SQS::Queue []",
            ]
        );
    }

    #[test]
    fn identical_or_malformed_templates_change_nothing() {
        let t = template(json!({ "A": { "Type": "AWS::SQS::Queue" } }));
        assert!(resource_changes(Some(&t), &t).is_empty());
        assert!(resource_changes(Some(&json!(42)), &json!("not a template")).is_empty());
        assert!(iam_widening(Some(&json!([])), &json!(null)).is_empty());
        assert!(retained_removals(Some(&json!({"Resources": 3})), &json!({})).is_empty());
    }

    #[test]
    fn intrinsics_render_compactly() {
        assert_eq!(compact(&json!({ "Ref": "Queue" })), "Queue");
        assert_eq!(
            compact(&json!({ "Fn::GetAtt": ["Queue", "Arn"] })),
            "Queue.Arn"
        );
        assert_eq!(compact(&json!({ "Fn::GetAtt": "Queue.Arn" })), "Queue.Arn");
        assert_eq!(
            compact(&json!({ "Fn::Sub": "arn:${AWS::Partition}:s3:::${B}/x/*" })),
            "arn:${AWS::Partition}:s3:::${B}/x/*"
        );
        assert_eq!(
            compact(&json!({ "Fn::Sub": ["${X}/y", { "X": "z" }] })),
            "${X}/y"
        );
        assert_eq!(
            compact(&json!({ "Fn::Join": ["/", [{ "Ref": "A" }, "b"]] })),
            "A/b"
        );
        assert_eq!(
            compact(&json!({ "Fn::If": ["C", 1, 2] })),
            r#"{"Fn::If":["C",1,2]}"#
        );
        assert_eq!(compact(&json!("*")), "*");
    }

    #[test]
    fn a_role_gaining_actions_and_resources_is_reported_once() {
        let old = template(json!({
            "ConnectorRole": role(json!([
                { "Effect": "Allow", "Action": ["sqs:ReceiveMessage"], "Resource": [{ "Fn::GetAtt": ["CrmQueue", "Arn"] }] },
            ])),
        }));
        let new = template(json!({
            "ConnectorRole": role(json!([
                { "Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"], "Resource": [
                    { "Fn::GetAtt": ["CrmQueue", "Arn"] }, { "Fn::GetAtt": ["LakeQueue", "Arn"] },
                ] },
                { "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": { "Fn::GetAtt": ["CrmDlq", "Arn"] } },
                { "Effect": "Deny", "Action": "*", "Resource": "*" },
            ])),
        }));
        assert_eq!(
            iam_widening(Some(&old), &new),
            [
                "role `ConnectorRole` gains sqs:DeleteMessage on CrmQueue.Arn, LakeQueue.Arn; \
              sqs:ReceiveMessage on LakeQueue.Arn; sqs:SendMessage on CrmDlq.Arn"
            ]
        );
        assert!(
            iam_widening(Some(&new), &old).is_empty(),
            "narrowing is not widening"
        );
        assert!(iam_widening(Some(&new), &new).is_empty());
    }

    #[test]
    fn wildcards_in_the_old_grant_cover_the_new_one() {
        let old = template(json!({
            "R": role(json!([{ "Effect": "Allow", "Action": "S3:*", "Resource": "arn:aws:s3:::b/*" }])),
        }));
        let new = template(json!({
            "R": role(json!([{ "Effect": "Allow", "Action": "s3:PutObject", "Resource": [
                "arn:aws:s3:::b/x/y", "arn:aws:s3:::c/x",
            ] }])),
        }));
        assert_eq!(
            iam_widening(Some(&old), &new),
            ["role `R` gains s3:PutObject on arn:aws:s3:::c/x"]
        );
        assert!(glob("a?c*", "abcdef"));
        assert!(!glob("a?c", "abcd"));
        assert!(glob("*", ""));
    }

    #[test]
    fn new_roles_separate_policies_and_managed_policies_count() {
        let old = template(json!({}));
        let new = template(json!({
            "Fn": {
                "Type": "AWS::IAM::Role",
                "Properties": { "ManagedPolicyArns": [
                    "arn:aws:iam::aws:policy/ReadOnlyAccess",
                    { "Ref": "Extra" },
                ] },
            },
            "Extra": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": { "PolicyDocument": { "Statement": [
                    { "Effect": "Allow", "Action": "kms:Decrypt", "Resource": { "Ref": "Key" } },
                ] } },
            },
            "Inline": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{ "Ref": "Fn" }, "outside-role"],
                    "PolicyDocument": { "Statement": [
                        { "Effect": "Allow", "NotAction": "iam:*", "Resource": "*" },
                    ] },
                },
            },
        }));
        assert_eq!(
            iam_widening(Some(&old), &new),
            [
                "new role `Fn` gains every action but iam:* on *; kms:Decrypt on Key; \
                 managed policy arn:aws:iam::aws:policy/ReadOnlyAccess",
                "new role `outside-role` gains every action but iam:* on *",
            ]
        );
        assert_eq!(iam_widening(None, &new).len(), 2);
    }

    #[test]
    fn removed_retained_resources_are_named() {
        let old = template(json!({
            "RawBucket": { "Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain" },
            "Queue": { "Type": "AWS::SQS::Queue", "DeletionPolicy": "Delete" },
            "Table": { "Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain" },
        }));
        let new = template(json!({
            "Table": { "Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain" },
        }));
        assert_eq!(
            retained_removals(Some(&old), &new),
            ["`RawBucket` (AWS::S3::Bucket) leaves the stack but is kept (DeletionPolicy Retain)"]
        );
        assert!(retained_removals(None, &new).is_empty());
        assert!(is_retained(Some(&old), "RawBucket"));
        assert!(!is_retained(Some(&old), "Queue"));
        assert!(!is_retained(None, "RawBucket"));
    }
}

//! Builds the [`Plan`] from the two configs, their build files and a change set: the pure step both the offline and the AWS paths share.

use std::collections::BTreeMap;

use serde_json::Value;
use uniflow_compiler::Config;
use uniflow_compiler::diff::{Action, BreakingChange, ConfigDiff, PiiFlow};

use super::model::{
    ApplyInput, Base, ChangeSet, FORMAT_VERSION, Header, Plan, ResourceAction, ResourceChange,
    Risk, RiskKind, Summary,
};
use super::{files, template};

/// The build file holding the main stack's template.
pub const TEMPLATE_FILE: &str = "cloudformation.json";

/// One compiled config, borrowed: its model and its build/ files (path ->
/// contents).
#[derive(Debug, Clone, Copy)]
pub struct Built<'a> {
    /// The checked model.
    pub config: &'a Config,
    /// `uniflow_compiler::build`'s files, `cloudformation.json` among them.
    pub files: &'a BTreeMap<String, String>,
}

/// Everything [`assemble`] needs; the caller reads files or AWS.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// Where, against what, by whom.
    pub header: Header,
    /// The deployed (or `--against`) config; `None` when nothing is
    /// deployed, so everything is added.
    pub old: Option<Built<'a>>,
    /// The planned config.
    pub new: Built<'a>,
    /// The CloudFormation changes (from CloudFormation, or from
    /// [`template::resource_changes`]).
    pub change_set: ChangeSet,
    /// The planned `uniflow.kdl`, verbatim.
    pub source: String,
    /// The path it was read from, as given.
    pub path: String,
    /// The deployed state the plan is made against.
    pub base: Base,
}

/// The plan for `input`: the config diff (against an empty config when
/// nothing is deployed, so everything shows as added), file diffs, costs
/// before and after, the risk callouts and the summary counts.
pub fn assemble(input: Input<'_>) -> Plan {
    let empty_config = Config::default();
    let empty_files = BTreeMap::new();
    let old = input.old.unwrap_or(Built {
        config: &empty_config,
        files: &empty_files,
    });
    let config = uniflow_compiler::diff::diff(old.config, input.new.config);
    let file_diffs = files::diff_files(old.files, input.new.files);
    let old_template = input.old.map(|o| parse_template(o.files));
    let new_template = parse_template(input.new.files);
    let risks = risks(
        &input.change_set.changes,
        old_template.as_ref(),
        &new_template,
        &config,
    );
    let summary = summary(&config, file_diffs.len(), &input.change_set.changes);
    Plan {
        format_version: FORMAT_VERSION,
        uniflow_version: env!("CARGO_PKG_VERSION").to_owned(),
        header: input.header,
        summary,
        risks,
        config,
        files: file_diffs,
        change_set: input.change_set,
        cost: uniflow_compiler::cost::estimate(input.new.config),
        cost_before: input
            .old
            .and_then(|o| uniflow_compiler::cost::estimate(o.config)),
        apply: ApplyInput {
            source: input.source,
            path: input.path,
            base: input.base,
        },
    }
}

/// The main template of a build, `Null` when absent or unreadable (no
/// `project` node: nothing is deployed).
fn parse_template(files: &BTreeMap<String, String>) -> Value {
    files
        .get(TEMPLATE_FILE)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

/// The risk callouts, in the order a reviewer should read them: destroyed,
/// replaced, IAM widened, breaking, personal data.
fn risks(
    changes: &[ResourceChange],
    old_template: Option<&Value>,
    new_template: &Value,
    config: &ConfigDiff,
) -> Vec<Risk> {
    let mut risks: Vec<Risk> = changes
        .iter()
        .filter(|c| {
            c.action == ResourceAction::Remove
                && !template::is_retained(old_template, &c.logical_id)
        })
        .map(|c| Risk {
            kind: RiskKind::Destroyed,
            message: format!("`{}` ({}) is deleted", c.logical_id, c.resource_type),
        })
        .collect();
    risks.extend(
        template::retained_removals(old_template, new_template)
            .into_iter()
            .map(|message| Risk {
                kind: RiskKind::Destroyed,
                message,
            }),
    );
    for change in changes {
        let what = match change.action {
            ResourceAction::Replace => "is replaced: deleted and created again",
            ResourceAction::MaybeReplace => {
                "may be replaced (deleted and created again), depending on values known at deploy time"
            }
            _ => continue,
        };
        let because = if change.details.is_empty() {
            String::new()
        } else {
            format!(" ({})", change.details.join(", "))
        };
        risks.push(Risk {
            kind: RiskKind::Replaced,
            message: format!(
                "`{}` ({}) {what}{because}",
                change.logical_id, change.resource_type
            ),
        });
    }
    risks.extend(
        template::iam_widening(old_template, new_template)
            .into_iter()
            .map(|message| Risk {
                kind: RiskKind::IamWidened,
                message,
            }),
    );
    risks.extend(config.breaking.iter().map(|b| Risk {
        kind: RiskKind::Breaking,
        message: breaking_sentence(b),
    }));
    risks.extend(config.pii_flows.iter().map(|p| Risk {
        kind: RiskKind::Pii,
        message: pii_sentence(p),
    }));
    risks
}

/// "`Order Completed`.coupon: `coupon` was optional and is now required;
/// breaks app builds that send `Order Completed` without `coupon`".
pub fn breaking_sentence(b: &BreakingChange) -> String {
    let property = b
        .property
        .as_deref()
        .map_or_else(String::new, |p| format!(".{p}"));
    let breaks = if b.breaks.is_empty() {
        match b.direction {
            uniflow_compiler::diff::Direction::Senders => "senders".to_owned(),
            uniflow_compiler::diff::Direction::Consumers => "consumers".to_owned(),
        }
    } else {
        b.breaks.join("; ")
    };
    format!("`{}`{property}: {}; breaks {breaks}", b.event, b.detail)
}

/// "`Signed Up`.email now reaches destination `crm` unhashed".
pub fn pii_sentence(p: &PiiFlow) -> String {
    format!(
        "personal data `{}`.{} now reaches destination `{}` {}",
        p.event, p.property, p.destination, p.form
    )
}

fn summary(config: &ConfigDiff, files_changed: usize, changes: &[ResourceChange]) -> Summary {
    let count_config =
        |action: Action| config.changes.iter().filter(|c| c.action == action).count();
    let count_rows = |action: ResourceAction| changes.iter().filter(|c| c.action == action).count();
    Summary {
        config_added: count_config(Action::Add),
        config_changed: count_config(Action::Change),
        config_removed: count_config(Action::Remove),
        breaking: config.breaking.len(),
        files_changed,
        resources_added: count_rows(ResourceAction::Add),
        resources_modified: count_rows(ResourceAction::Modify),
        resources_replaced: count_rows(ResourceAction::Replace)
            + count_rows(ResourceAction::MaybeReplace),
        resources_removed: count_rows(ResourceAction::Remove),
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::ChangeSetSource;
    use super::*;

    fn compile(source: &str) -> (Config, BTreeMap<String, String>) {
        let (checked, artifacts) = uniflow_compiler::build(source);
        let artifacts = artifacts.expect("the fixture compiles");
        (checked.config.expect("a model"), artifacts.files)
    }

    fn header() -> Header {
        Header {
            stack: "s-dev".into(),
            account: None,
            region: "eu-west-1".into(),
            config_digest: "d".into(),
            deployed_digest: None,
            against: "nothing".into(),
            lock: None,
        }
    }

    const SOURCE: &str = r#"project "s" {
    region "eu-west-1"
}
source "web" kind="browser"
event "Signed Up" {
    property "email" type="string" pii=#true
}
"#;

    #[test]
    fn a_new_stack_adds_everything_and_risks_follow_the_rows() {
        let (config, files) = compile(SOURCE);
        let new_template: Value = serde_json::from_str(&files[TEMPLATE_FILE]).unwrap();
        let changes = template::resource_changes(None, &new_template);
        let mut rows = changes.clone();
        rows.push(ResourceChange {
            action: ResourceAction::Replace,
            logical_id: "Old".into(),
            resource_type: "AWS::SQS::Queue".into(),
            details: vec!["Properties.FifoQueue".into()],
        });
        rows.push(ResourceChange {
            action: ResourceAction::Remove,
            logical_id: "Gone".into(),
            resource_type: "AWS::SQS::Queue".into(),
            details: Vec::new(),
        });
        let plan = assemble(Input {
            header: header(),
            old: None,
            new: Built {
                config: &config,
                files: &files,
            },
            change_set: ChangeSet {
                source: ChangeSetSource::NewStack,
                changes: rows,
                notes: Vec::new(),
            },
            source: SOURCE.into(),
            path: "uniflow.kdl".into(),
            base: Base::default(),
        });
        assert_eq!(plan.format_version, FORMAT_VERSION);
        assert_eq!(plan.summary.resources_added, changes.len());
        assert_eq!(plan.summary.resources_replaced, 1);
        assert_eq!(plan.summary.resources_removed, 1);
        assert_eq!(plan.summary.files_changed, files.len());
        assert!(plan.summary.has_changes());
        let kinds: Vec<RiskKind> = plan.risks.iter().map(|r| r.kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        assert_eq!(kinds, sorted, "risks in reading order");
        assert_eq!(plan.risks[0].message, "`Gone` (AWS::SQS::Queue) is deleted");
        assert_eq!(
            plan.risks[1].message,
            "`Old` (AWS::SQS::Queue) is replaced: deleted and created again (Properties.FifoQueue)"
        );
        assert!(
            kinds.contains(&RiskKind::IamWidened),
            "every role of a new stack is new"
        );
        assert_eq!(plan.apply.source, SOURCE);
    }

    #[test]
    fn the_same_config_plans_no_changes() {
        let (config, files) = compile(SOURCE);
        let compiled = Built {
            config: &config,
            files: &files,
        };
        let plan = assemble(Input {
            header: header(),
            old: Some(compiled),
            new: compiled,
            change_set: ChangeSet {
                source: ChangeSetSource::TemplateDiff,
                changes: Vec::new(),
                notes: Vec::new(),
            },
            source: SOURCE.into(),
            path: "uniflow.kdl".into(),
            base: Base::default(),
        });
        assert!(!plan.summary.has_changes());
        assert!(plan.risks.is_empty(), "{:?}", plan.risks);
        assert!(plan.files.is_empty());
        assert_eq!(plan.cost, plan.cost_before);
    }
}

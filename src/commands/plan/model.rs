//! The plan `uniflow plan` shows and `--out` saves: one document, rendered
//! as text, markdown or JSON, and read back by `uniflow apply PLANFILE`.

use serde::{Deserialize, Serialize};
use uniflow_compiler::cost::Estimate;
use uniflow_compiler::diff::ConfigDiff;

/// The version of the JSON plan format. Bumped when a field changes
/// meaning or disappears; new fields do not bump it.
pub const FORMAT_VERSION: u32 = 1;

/// Everything a reviewer needs before anything is touched.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The `uniflow` that made the plan.
    pub uniflow_version: String,
    /// Where, against what, by whom.
    pub header: Header,
    /// Counts.
    pub summary: Summary,
    /// What a reviewer must look at first.
    pub risks: Vec<Risk>,
    /// The config change in the user's terms.
    pub config: ConfigDiff,
    /// The generated files that change.
    pub files: Vec<FileDiff>,
    /// The CloudFormation changes.
    pub change_set: ChangeSet,
    /// The monthly cost estimate of the new config (`None` without a
    /// `project` node).
    pub cost: Option<Estimate>,
    /// The cost estimate of the deployed config, for the difference.
    pub cost_before: Option<Estimate>,
    /// What `apply PLANFILE` deploys and checks the stack against.
    pub apply: ApplyInput,
}

/// The plan's header.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// The main stack's name (`<project>-<stage>`).
    pub stack: String,
    /// The AWS account, when planned against one.
    pub account: Option<String>,
    /// The region.
    pub region: String,
    /// The new config's digest.
    pub config_digest: String,
    /// The deployed config's digest (`None`: nothing deployed).
    pub deployed_digest: Option<String>,
    /// What the config was compared with: `stack acme-shop-prod` or
    /// `file old/uniflow.kdl`.
    pub against: String,
    /// Who holds the deploy lock, if anyone.
    pub lock: Option<LockInfo>,
}

/// The holder of the deploy lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockInfo {
    /// The id `uniflow force-unlock` takes.
    pub id: String,
    /// `user@host`.
    pub who: String,
    /// `apply` or `destroy`.
    pub operation: String,
    /// RFC 3339, UTC.
    pub created: String,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Config things added.
    pub config_added: usize,
    /// Config things changed.
    pub config_changed: usize,
    /// Config things removed.
    pub config_removed: usize,
    /// Breaking schema changes.
    pub breaking: usize,
    /// Generated files changed (added, removed or modified).
    pub files_changed: usize,
    /// Resources added.
    pub resources_added: usize,
    /// Resources modified in place.
    pub resources_modified: usize,
    /// Resources replaced (destroyed and created again).
    pub resources_replaced: usize,
    /// Resources removed.
    pub resources_removed: usize,
}

impl Summary {
    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.config_added
            + self.config_changed
            + self.config_removed
            + self.files_changed
            + self.resources_added
            + self.resources_modified
            + self.resources_replaced
            + self.resources_removed
            > 0
    }
}

/// What kind of risk a callout is.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum RiskKind {
    /// A resource is deleted (data stores are retained, and say so).
    Destroyed,
    /// A resource is replaced: deleted and created again.
    Replaced,
    /// An IAM role gains actions or resources.
    IamWidened,
    /// A breaking schema change.
    Breaking,
    /// Personal data newly flows to a destination.
    Pii,
}

/// One risk callout.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Risk {
    /// What kind.
    pub kind: RiskKind,
    /// One sentence.
    pub message: String,
}

/// How a generated file changes.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    /// New file.
    Added,
    /// Gone.
    Removed,
    /// Different contents.
    Modified,
}

/// One generated file that changes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileDiff {
    /// Path under `build/`.
    pub path: String,
    /// Added, removed or modified.
    pub status: FileStatus,
    /// Lines added.
    pub added: usize,
    /// Lines removed.
    pub removed: usize,
    /// The unified diff (`--- a/path`, `+++ b/path`, 3 lines of context).
    pub diff: String,
}

/// What CloudFormation does to one resource.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceAction {
    /// Created.
    Add,
    /// Updated in place.
    Modify,
    /// Deleted and created again (`Replacement: True`).
    Replace,
    /// Possibly replaced, depending on values known at deploy time
    /// (`Replacement: Conditional`).
    MaybeReplace,
    /// Deleted (or, for retained data stores, removed from the stack and
    /// kept).
    Remove,
}

/// One row of the change set.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResourceChange {
    /// What happens.
    pub action: ResourceAction,
    /// The logical id.
    pub logical_id: String,
    /// `AWS::SQS::Queue`.
    pub resource_type: String,
    /// What about it changes (`Properties`, `Tags`, ...), when known.
    pub details: Vec<String>,
}

/// Where the change set came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", tag = "source")]
pub enum ChangeSetSource {
    /// Made by CloudFormation (`CreateChangeSet` on the deployed stack,
    /// deleted again after describing it).
    Cloudformation {
        /// The change set's name.
        name: String,
    },
    /// The stack does not exist yet: every resource of the template is
    /// added.
    NewStack,
    /// Computed by comparing the two templates (`--against FILE`): no
    /// replacement information, which only CloudFormation can give.
    TemplateDiff,
}

/// The CloudFormation changes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChangeSet {
    /// Where the rows come from.
    #[serde(flatten)]
    pub source: ChangeSetSource,
    /// The rows, sorted by action then logical id.
    pub changes: Vec<ResourceChange>,
    /// What the rows cannot show (for example: "moto does not report
    /// replacements", "function code is built at apply time").
    pub notes: Vec<String>,
}

/// What `uniflow apply PLANFILE` needs from a saved plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApplyInput {
    /// The planned `uniflow.kdl`, verbatim: apply deploys exactly this.
    pub source: String,
    /// The path it was read from.
    pub path: String,
    /// The deployed state the plan was made against; apply refuses the
    /// plan when the stack has moved since.
    pub base: Base,
}

/// A fingerprint of the deployed state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Base {
    /// The applied config's digest (`None`: nothing deployed).
    pub digest: Option<String>,
    /// The version id (or ETag) of the state object in the artifacts
    /// bucket; changes on every apply and destroy.
    pub state_version: Option<String>,
    /// The stack's status when planned (`None`: no stack).
    pub stack_status: Option<String>,
}

/// The part of a saved plan `apply` reads back; everything else in the
/// file is for people and tools.
#[derive(Debug, Clone, Deserialize)]
pub struct SavedPlan {
    /// Must be [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The header, for the stack and digest.
    pub header: Header,
    /// What to deploy and against what.
    pub apply: ApplyInput,
}

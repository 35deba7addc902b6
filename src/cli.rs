//! Command-line arguments, with help text that teaches the workflow.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Uniflow: own your customer data platform as code.
///
/// Describe sources, event schemas, identity rules, destinations and segments
/// in one `uniflow.kdl` file kept in git. Uniflow checks it, formats it, and
/// (in later versions) builds, plans and deploys a serverless pipeline from it.
///
/// A typical loop:
///
///   uniflow init my-shop        write a starter project
///   uniflow check my-shop       find every mistake at once
///   uniflow fmt my-shop         format it canonically
///   uniflow build my-shop       write the bundle, JSON Schema, Zod and the
///                               CloudFormation stack into build/
///   uniflow plan my-shop --against old/uniflow.kdl
///                               see what a change adds, breaks and costs
///   uniflow validate --config my-shop events.ndjson
///                               check messages the way the runtime will
///   uniflow dev my-shop         run the pipeline on this machine
///   uniflow profiles get email:ann@example.com my-shop
///                               see the profile identity resolution built
///   uniflow dlq list crm my-shop
///                               see what a destination refused, then redrive it
///   uniflow replay crm my-shop --from -2h --to now
///                               send archived events to one destination again
///
/// The language reference is compiler/LANGUAGE.md in the uniflow repository.
#[derive(Debug, Parser)]
#[command(
    name = "uniflow",
    version,
    propagate_version = true,
    max_term_width = 100,
    verbatim_doc_comment
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the Lambda functions' zips into OUT/lambda/<role>/<sha256>.zip
    /// and print their keys (what `uniflow apply` uploads; for tests).
    #[command(name = "__build-functions", hide = true)]
    BuildFunctions {
        /// Directory to write the zips under.
        #[arg(long)]
        out: PathBuf,
        /// A directory holding prebuilt binaries (uniflow-ingest, ...): no build.
        #[arg(long)]
        functions_dir: Option<PathBuf>,
    },
    /// Write a commented starter project (`uniflow.kdl`) that passes `check`.
    ///
    /// The project is named after the directory. An existing `uniflow.kdl` is
    /// never overwritten unless you pass --force.
    Init {
        /// Directory to create the project in (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Overwrite an existing uniflow.kdl.
        #[arg(long)]
        force: bool,
    },
    /// Check a project for errors and likely mistakes, reporting all of them
    #[command(verbatim_doc_comment)]
    ///
    /// Exit status: 0 when there are no errors (warnings are allowed), 1 when
    /// the configuration has errors, 2 when uniflow could not run (for example
    /// an unreadable file).
    ///
    /// Examples:
    ///
    ///   uniflow check                          ./uniflow.kdl
    ///   uniflow check examples/shop            a project directory
    ///   uniflow check --format json            for tools (versioned JSON)
    ///   uniflow check --format github          annotations in GitHub Actions
    Check {
        /// The uniflow.kdl file, or a directory containing one.
        #[arg(default_value = "uniflow.kdl")]
        path: PathBuf,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// When to use colours in human output.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
    },
    /// Generate the artifacts a project needs into build/.
    ///
    /// Writes the compiled bundle (`bundle.json`, what the runtime reads),
    /// JSON Schema for every event (`schemas/<event>.schema.json`) and for
    /// identify and group traits (`schemas/traits/`), and Zod 4 schemas with
    /// TypeScript types and typed tracking helpers (`schemas/index.ts`), and
    /// the deployable stack: `cloudformation.json` (the whole pipeline),
    /// `cloudformation-bootstrap.json` (the artifacts bucket) and
    /// `lambda/<function>.json` (each function's memory, timeout,
    /// concurrency and batching, sized from the config's traffic envelope).
    /// The same uniflow.kdl always builds byte-identical files, so build/ can
    /// be committed and reviewed in pull requests.
    ///
    /// With --check nothing is written: exit 1 naming each file that is
    /// missing, stale or no longer generated (for CI).
    Build {
        /// The uniflow.kdl file, or a directory containing one.
        #[arg(default_value = "uniflow.kdl")]
        path: PathBuf,
        /// Output directory [default: build/ next to uniflow.kdl].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only check that the output directory is up to date.
        #[arg(long)]
        check: bool,
        /// When to use colours in diagnostics.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
    },
    /// Show what applying a change would do, before anything is touched.
    ///
    /// Compares the project with what it replaces and prints, risks first:
    /// resources destroyed or replaced, IAM roles that gain permissions,
    /// breaking schema changes (for senders: apps already shipped; for
    /// consumers: the archive, destinations, segments), personal data newly
    /// sent to a destination; then every config change, version notes, the
    /// generated files that change (unified diffs), the CloudFormation
    /// resources added, modified and removed, and the monthly cost estimate
    /// (AWS list prices) before and after.
    ///
    /// With --against OLD, nothing needs AWS: OLD is the config the change
    /// replaces (a uniflow.kdl file or a directory holding one; in a pull
    /// request, the base branch's). Replacements are then unknown: only
    /// CloudFormation can tell them.
    ///
    /// Without --against, the plan is made against the deployed stack (AWS
    /// credentials, region and endpoint from the SDK's usual sources): the
    /// config and files the last apply recorded in the artifacts bucket, and
    /// the resource changes of a real CloudFormation change set. To make it,
    /// plan uploads the template to the artifacts bucket (content-addressed)
    /// and creates a change set, which it deletes after reading; nothing else
    /// is touched. The header names who holds the deploy lock, if anyone.
    ///
    /// --format markdown writes a pull-request comment (risks and breaking
    /// changes in the open, the rest in collapsed sections, under 60,000
    /// characters). --out FILE also saves the plan as JSON, whatever
    /// --format prints: the file `uniflow apply FILE` deploys.
    ///
    /// Examples:
    ///
    ///   uniflow plan --against ../main/uniflow.kdl
    ///   uniflow plan examples/shop --against old-shop/ --format markdown > comment.md
    ///   uniflow plan --against base/ --out plan.json --detailed-exitcode
    ///
    /// Exit status: 0 the plan was made (changes or not), 1 a config has
    /// errors, 2 uniflow could not plan. With --detailed-exitcode: 0 no
    /// changes, 2 changes, 1 any error.
    #[command(verbatim_doc_comment)]
    Plan(PlanArgs),
    /// Run the whole pipeline on this machine, with nothing else to install.
    ///
    /// Compiles the project and serves a Segment-compatible tracking API
    /// (POST /v1/track, identify, page, screen, group, alias, batch) on
    /// 127.0.0.1. Point existing Segment or RudderStack SDKs at the printed
    /// URL with a printed write key: events are validated, enriched, written
    /// to a durable log (fsynced before the answer), and archived as GZIP
    /// NDJSON under DATA/archive/raw/year=/month=/day=/hour=/, the layout
    /// Firehose writes on S3; quarantined events under DATA/archive/violations/.
    ///
    /// Write keys are stable for a data directory and also written to
    /// DATA/sources.json. Ctrl-C stops accepting, finishes what is in flight
    /// and archives it; a restart resumes where it stopped.
    ///
    /// The same port serves the management API under /api/v1 (profiles,
    /// identity decisions, the project's catalog; see `uniflow profiles`).
    /// It needs `Authorization: Bearer TOKEN`: the token is printed at start
    /// and kept, with the URL, in DATA/dev.json (readable by you only).
    ///
    /// Destinations are delivered for real: webhooks are POSTed (signed
    /// with the values DATA/secrets.json keeps for each `ssm:` or
    /// `secretsmanager:` secret; `env:` secrets read the environment),
    /// s3-export writes under DATA/exports/, or to S3 when AWS_ENDPOINT_URL_S3
    /// or AWS_ENDPOINT_URL is set. Failures are retried by each destination's
    /// `retry` policy, then kept in its dead-letter queue (see `uniflow dlq`
    /// and `uniflow replay`). Lambda destinations need AWS: not delivered.
    ///
    /// Examples:
    ///
    ///   uniflow dev examples/shop
    ///   uniflow dev --port 9000 --data /tmp/uniflow-data
    #[command(verbatim_doc_comment)]
    Dev {
        /// The uniflow.kdl file, or a directory containing one.
        #[arg(default_value = "uniflow.kdl")]
        path: PathBuf,
        /// Port to listen on (127.0.0.1). 0 picks a free port.
        #[arg(long, default_value_t = 8088)]
        port: u16,
        /// Data directory [default: .uniflow/ next to uniflow.kdl].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Requests per second each source may send (a burst of twice that
        /// is allowed); beyond it the API answers 429 with Retry-After.
        #[arg(long, default_value_t = 10_000)]
        rate_limit: u32,
        /// How long accepted events may wait before they are archived, in
        /// milliseconds (the archive is written in batches, like Firehose's
        /// buffering).
        #[arg(long, default_value_t = 2000, hide = true)]
        archive_wait_ms: u64,
    },
    /// Validate Segment-spec messages against a project's schemas.
    ///
    /// Reads newline-delimited JSON messages (or one `{"batch":[...]}` body)
    /// from FILE, or standard input when FILE is `-` or absent, and prints one
    /// JSON line per message:
    ///
    ///   {"index":0,"messageId":"m1","valid":false,"issues":[{"code":"invalid_type",
    ///    "path":["properties","revenue"],"message":"Invalid input: expected number, received string"}]}
    ///
    /// Issue codes, paths and messages are Zod 4's. Exit status: 0 when every
    /// message is valid, 1 when any is not, 2 when uniflow could not run.
    #[command(verbatim_doc_comment)]
    Validate {
        /// The project: a uniflow.kdl file, a directory containing one, or a
        /// compiled bundle.json.
        #[arg(long, default_value = "uniflow.kdl")]
        config: PathBuf,
        /// NDJSON messages or a batch body; `-` for standard input.
        file: Option<PathBuf>,
    },
    /// See, explain and delete the profiles identity resolution builds.
    ///
    /// Talks to the management API of a running `uniflow dev` (its URL and
    /// token are in DATA/dev.json), or of a deployed stack with --api and
    /// --token. A profile is named by its id, or by an identifier written
    /// TYPE:VALUE with TYPE one of the project's `identity` identifiers
    /// (email:ann@example.com, user_id:u-123); the value is normalised with
    /// the identifier's rules before the lookup.
    ///
    /// Examples:
    ///
    ///   uniflow profiles get email:Ann@Example.com
    ///   uniflow profiles get 3f2a9c0e41b7d5a8e6f1c2b3a4d5e6f7 --events 50
    ///   uniflow profiles explain user_id:u-123 examples/shop
    ///   uniflow profiles delete email:ann@example.com --yes
    ///
    /// Exit status: 0 done, 1 no such profile or a bad identifier (or a
    /// refused token), 2 uniflow could not ask (`uniflow dev` not running,
    /// the API failed).
    #[command(verbatim_doc_comment)]
    Profiles {
        #[command(subcommand)]
        command: ProfilesCommand,
    },
    /// See and redrive a destination's dead letters.
    ///
    /// A message lands in the dead-letter queue when its destination refused
    /// it for good (a 4xx other than 408 and 429) or when retries ran out
    /// (`retry attempts` or `max-age` in uniflow.kdl). It waits there, with
    /// its last error, until you redrive it: back on the destination's
    /// queue, attempts reset.
    ///
    /// Talks to the management API of a running `uniflow dev` (its URL and
    /// token are in DATA/dev.json), or of a deployed stack with --api and
    /// --token. With --aws, acts on the deployed stack directly: its SQS
    /// queues (`<project>-<stage>-<destination>` and `...-dlq`) and its
    /// delivery counters in DynamoDB, with the AWS credentials, AWS_REGION
    /// (default: the project's region) and AWS_ENDPOINT_URL of the
    /// environment. There, a dead letter's handle is its SQS message id, and
    /// a listing peeks at (without consuming) at most 1,000 of them.
    ///
    /// Examples:
    ///
    ///   uniflow dlq list crm
    ///   uniflow dlq show crm 42
    ///   uniflow dlq redrive crm --filter "event = 'Order Completed'"
    ///   AWS_PROFILE=prod uniflow dlq list crm --aws
    ///   uniflow dlq redrive crm --aws --max 100 --yes
    ///
    /// Exit status: 0 done, 1 no such destination or dead letter, a bad
    /// filter (or a refused token), the queue not deployed (--aws), 2
    /// uniflow could not ask (`uniflow dev` not running, the API or AWS
    /// failed).
    #[command(verbatim_doc_comment)]
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Send archived events to one destination again.
    ///
    /// Reads the raw archive `uniflow dev` writes (DATA/archive/raw/, only the
    /// hour partitions that overlap the window), keeps the events received in
    /// [--from, --to) that the destination receives (its `events`, types and
    /// `filter`; and named --event if given), and puts them on that
    /// destination's queue only, oldest first, in requests of at most 1,000
    /// events and 1 MiB. Other destinations and profiles see nothing. Each
    /// event keeps its messageId, the receiver's idempotency key.
    ///
    /// A time is RFC 3339 (2026-11-25T10:00:00Z, or with an offset), a date
    /// (2026-11-25, midnight UTC), `now`, or a span before now: -30m, -2h,
    /// -7d (s, m, h, d, w).
    ///
    /// The archive is read from the project's data directory (PATH and
    /// --data as for `uniflow dev`); the events go through the management
    /// API of the running `uniflow dev` (or --api and --token).
    ///
    /// With --aws, the deployed stack's raw archive is read from S3 (the
    /// bucket CloudFormation named `...-rawbucket-...` with the stack's
    /// uniflow:project and uniflow:stage tags, or --raw-bucket; the hour
    /// after the window too, as Firehose files events when it receives
    /// them) and the events are sent to the destination's SQS queue, with
    /// the AWS credentials, AWS_REGION (default: the project's region) and
    /// AWS_ENDPOINT_URL of the environment. Unreadable lines are counted and
    /// passed over there.
    ///
    /// Examples:
    ///
    ///   uniflow replay crm --from -2h --to now --dry-run
    ///   uniflow replay crm --from 2026-11-25 --to 2026-11-26 --event "Order Completed"
    ///   uniflow replay crm examples/shop --from 2026-11-25T10:00:00Z --to 2026-11-25T12:30:00Z
    ///   AWS_PROFILE=prod uniflow replay crm --from -6h --to -1h --aws
    ///
    /// Exit status: 0 done (even when nothing matched), 1 a bad time or
    /// window, an unknown destination or event, a project with errors, the
    /// queue or archive not deployed (--aws), 2 uniflow could not read the
    /// archive or send (`uniflow dev` not running, AWS failed).
    #[command(verbatim_doc_comment)]
    Replay {
        /// The destination to send to, as named in uniflow.kdl.
        destination: String,
        /// The first time of the window (included).
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        from: String,
        /// The end of the window (excluded).
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        to: String,
        /// Only track events of this name (`Order Completed`).
        #[arg(long, value_name = "NAME")]
        event: Option<String>,
        /// Count what would be sent, send nothing (needs no `uniflow dev`).
        #[arg(long)]
        dry_run: bool,
        /// Replay on the deployed stack: from its S3 archive to its SQS queue.
        #[arg(long, conflicts_with_all = ["data", "api", "token"])]
        aws: bool,
        /// The raw archive's bucket [default: found by its name and tags].
        #[arg(
            long,
            value_name = "BUCKET",
            env = "UNIFLOW_RAW_BUCKET",
            requires = "aws"
        )]
        raw_bucket: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Format uniflow.kdl files canonically, keeping comments.
    ///
    /// One node per line, four-space indents, strings in double quotes. The
    /// result is verified to mean exactly what the input meant.
    ///
    /// With --check nothing is written: the command lists the files that are
    /// not formatted and exits 1 if there are any (use it in CI).
    Fmt {
        /// Files, or directories containing a uniflow.kdl.
        #[arg(default_value = "uniflow.kdl")]
        paths: Vec<PathBuf>,
        /// Only check; exit 1 and name the files that would change.
        #[arg(long)]
        check: bool,
        /// When to use colours in diagnostics.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
    },
    /// Deploy the project to AWS: exactly what `uniflow plan` shows
    #[command(verbatim_doc_comment)]
    ///
    /// Without a plan file, apply plans first, shows the plan and asks for
    /// approval (type `yes`). With a plan saved by `uniflow plan --out FILE`
    /// it deploys that plan's uniflow.kdl without asking, and refuses if the
    /// stack changed since the plan was made (another apply, a destroy):
    /// plan again then.
    ///
    /// Steps, all under a deploy lock (one apply or destroy at a time):
    ///   1. the first apply creates <project>-<stage>-bootstrap, the
    ///      artifacts bucket holding code, bundles, templates and state;
    ///   2. the four Lambda functions are built for provided.al2023 x86_64
    ///      (glibc 2.34; cargo-zigbuild from scripts/setup-zig), zipped
    ///      reproducibly and uploaded under their SHA-256;
    ///   3. each source gets a write key in SSM Parameter Store (SecureString,
    ///      /uniflow/<project>/<stage>/write-keys/<source>), generated once and
    ///      kept; keys never touch git or build/;
    ///   4. a CloudFormation change set is made and executed, showing each
    ///      resource event; on failure the failing resource, CloudFormation's
    ///      reason and what to do are printed;
    ///   5. the applied uniflow.kdl and build are recorded in the artifacts
    ///      bucket (state/<stack>/applied.json): the next plan compares with it.
    ///
    /// Credentials, region and endpoint come from the AWS SDK's usual sources
    /// (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...); the region defaults to
    /// the project's.
    ///
    /// Examples:
    ///
    ///   uniflow apply                          plan, ask, deploy ./uniflow.kdl
    ///   uniflow plan --out plan.json && uniflow apply plan.json
    ///   uniflow apply --auto-approve           in CI after the plan was reviewed
    ///   uniflow apply --require-approval broadening
    ///                                          ask only when IAM widens, data is
    ///                                          destroyed, schemas break or
    ///                                          personal data flows somewhere new
    ///
    /// Exit status: 0 applied (or nothing to do), 1 refused, cancelled, config
    /// errors or a failed deployment, 2 uniflow itself failed.
    Apply {
        /// A plan saved by `uniflow plan --out`, or the uniflow.kdl file or its
        /// directory to plan and apply.
        #[arg(default_value = "uniflow.kdl")]
        path: PathBuf,
        /// Do not ask for approval.
        #[arg(long)]
        auto_approve: bool,
        /// When to ask for approval (without --auto-approve).
        #[arg(long, value_enum, default_value_t = crate::commands::deploy::RequireApproval::AnyChange)]
        require_approval: crate::commands::deploy::RequireApproval,
        /// How long to wait for another apply or destroy to release the lock
        /// (`0s` fails at once; `30s`, `10m`).
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        lock_timeout: std::time::Duration,
        /// A directory holding prebuilt uniflow-ingest, uniflow-processor,
        /// uniflow-connector and uniflow-management binaries (x86_64, glibc
        /// 2.34 or older), used instead of building them.
        #[arg(long, env = "UNIFLOW_FUNCTIONS_DIR")]
        functions_dir: Option<PathBuf>,
        /// When to use colours in the plan shown.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
    },
    /// Delete the deployed stack; data is kept unless --delete-data
    #[command(verbatim_doc_comment)]
    ///
    /// Asks for confirmation (type `yes`) unless --auto-approve. The stack's
    /// data stores (the raw archive and export buckets, the profile and state
    /// tables, the data key) have DeletionPolicy Retain and stay, listed with
    /// their names; so do the artifacts bucket and the write keys, so a later
    /// apply brings the pipeline back onto the same data.
    ///
    /// With --delete-data those are deleted too: buckets are emptied (every
    /// version) and deleted, tables deleted, the data key scheduled for
    /// deletion (7 days, the shortest KMS allows), the write keys removed, and
    /// finally the bootstrap stack and its artifacts bucket.
    ///
    /// Examples:
    ///
    ///   uniflow destroy examples/shop
    ///   uniflow destroy --auto-approve --delete-data    a throwaway stage
    Destroy {
        /// The uniflow.kdl file, or a directory containing one.
        #[arg(default_value = "uniflow.kdl")]
        path: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// Also delete the data, the write keys and the artifacts bucket.
        #[arg(long)]
        delete_data: bool,
        /// How long to wait for another apply or destroy to release the lock.
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        lock_timeout: std::time::Duration,
    },
    /// Remove a deploy lock left by a run that died
    #[command(verbatim_doc_comment)]
    ///
    /// apply and destroy hold a lock (state/<stack>/lock.json in the artifacts
    /// bucket) while they run. A run that is killed leaves it behind, and the
    /// next run says who holds it and its id. Check that run is really gone,
    /// then pass that id; a different id removes nothing.
    ///
    ///   uniflow force-unlock 0f5c2d1e-... examples/shop
    ForceUnlock {
        /// The lock id the locked error (or `uniflow plan`'s header) shows.
        id: String,
        /// The uniflow.kdl file, or a directory containing one.
        #[arg(default_value = "uniflow.kdl")]
        path: PathBuf,
    },
}

/// `30s`, `10m`, `1h`, `0s`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write 30s, 10m or 1h"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{text}` is not a duration: write 30s, 10m or 1h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// The arguments of `uniflow plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The uniflow.kdl file, or a directory containing one.
    #[arg(default_value = "uniflow.kdl")]
    pub path: PathBuf,
    /// Plan against this config (a uniflow.kdl file or a directory
    /// containing one) instead of the deployed stack; needs no AWS.
    #[arg(long, value_name = "OLD")]
    pub against: Option<PathBuf>,
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
    /// Also save the plan as JSON to FILE, for `uniflow apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when nothing changes, 2 when something does, 1 on any error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// When to use colours in human output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Text for people, risks first.
    Human,
    /// A pull-request comment.
    Markdown,
    /// The versioned plan document (`format_version`).
    Json,
}

/// `uniflow profiles` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// Show a profile: traits, counts, identifiers and its latest events.
    ///
    /// A merged-away id shows the profile it was merged into.
    ///
    /// Examples:
    ///
    ///   uniflow profiles get email:ann@example.com
    ///   uniflow profiles get user_id:u-123 --events 0 --format json
    #[command(verbatim_doc_comment)]
    Get {
        /// A profile id, or an identifier TYPE:VALUE (email:ann@example.com).
        profile: String,
        /// How many of its latest events to show (0 to 1000).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(0..=1000))]
        events: u16,
        /// How to print it (`json` prints the API's answers).
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Explain why identities are one profile.
    ///
    /// Prints each identifier with the event and time that linked it, then
    /// every merge and refused merge in order: which event asked for it,
    /// which identifiers it carried, the identifier that tied the two
    /// profiles together, and the rule that allowed or refused it.
    ///
    /// Examples:
    ///
    ///   uniflow profiles explain email:ann@example.com
    ///   uniflow profiles explain user_id:u-123 --format json
    #[command(verbatim_doc_comment)]
    Explain {
        /// A profile id, or an identifier TYPE:VALUE (email:ann@example.com).
        profile: String,
        /// How to print it (`json` prints the API's answers).
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a person: the profile, every profile merged into it, their
    /// events and links; their identifiers are suppressed so they never link
    /// again.
    ///
    /// Asks for confirmation on a terminal; --yes skips the question and is
    /// required when standard input is not a terminal (scripts).
    ///
    /// Examples:
    ///
    ///   uniflow profiles delete email:ann@example.com
    ///   uniflow profiles delete 3f2a9c0e41b7d5a8e6f1c2b3a4d5e6f7 --yes
    #[command(verbatim_doc_comment)]
    Delete {
        /// A profile id, or an identifier TYPE:VALUE (email:ann@example.com).
        profile: String,
        /// Delete without asking.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `uniflow dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a destination's dead letters, oldest first.
    ///
    /// One line each: its handle (for `show`), the messageId, the event
    /// (a track event's name, else the call type), attempts made, when it
    /// failed and why (shortened; `--format json` has it all).
    ///
    /// Examples:
    ///
    ///   uniflow dlq list crm
    ///   uniflow dlq list crm examples/shop --limit 500 --format json
    #[command(verbatim_doc_comment)]
    List {
        /// The destination, as named in uniflow.kdl.
        destination: String,
        /// Show at most this many (1 to 100000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
        /// How to print them (`json`: the API's dead letters, in an array).
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        /// Act on the deployed stack's SQS queues directly, not through an API.
        #[arg(long, conflicts_with_all = ["data", "api", "token"])]
        aws: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show one dead letter in full: why it failed, and its event.
    ///
    /// Name it by its handle (the first column of `list`) or by its
    /// messageId.
    ///
    /// Examples:
    ///
    ///   uniflow dlq show crm 42
    ///   uniflow dlq show crm 0b6c1f2e-9a4d-4c7e-8d21-5f0a3b9e7c14 --format json
    #[command(verbatim_doc_comment)]
    Show {
        /// The destination, as named in uniflow.kdl.
        destination: String,
        /// The dead letter's handle, or its event's messageId.
        id: String,
        /// How to print it (`json`: the API's dead letter).
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        /// Act on the deployed stack's SQS queues directly, not through an API.
        #[arg(long, conflicts_with_all = ["data", "api", "token"])]
        aws: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Put dead letters back on the destination's queue, attempts reset.
    ///
    /// Oldest first; all of them, or those whose event --filter holds for
    /// (a condition as in a destination's `filter`), at most --max. Fix what
    /// made them fail first (the receiver, a secret, the template), or they
    /// come back.
    ///
    /// Asks for confirmation on a terminal; --yes skips the question and is
    /// required when standard input is not a terminal (scripts).
    ///
    /// Examples:
    ///
    ///   uniflow dlq redrive crm
    ///   uniflow dlq redrive crm --max 100 --yes
    ///   uniflow dlq redrive crm --filter "event = 'Order Completed' AND properties.revenue > 0"
    #[command(verbatim_doc_comment)]
    Redrive {
        /// The destination, as named in uniflow.kdl.
        destination: String,
        /// Move at most this many.
        #[arg(long, value_name = "N")]
        max: Option<u64>,
        /// Only dead letters whose event this condition holds for.
        #[arg(long, value_name = "CONDITION")]
        filter: Option<String>,
        /// Redrive without asking.
        #[arg(long)]
        yes: bool,
        /// Act on the deployed stack's SQS queues directly, not through an API.
        #[arg(long, conflicts_with_all = ["data", "api", "token"])]
        aws: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Where the management API is.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The project (a uniflow.kdl file, or a directory containing one) whose
    /// `uniflow dev` to ask.
    #[arg(default_value = "uniflow.kdl")]
    pub path: PathBuf,
    /// `uniflow dev`'s data directory [default: .uniflow/ next to
    /// uniflow.kdl]; its dev.json gives the API's URL and token.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The management API's URL instead of dev.json's (http://127.0.0.1:8088,
    /// or a deployed stack's https URL).
    #[arg(long, env = "UNIFLOW_API_URL")]
    pub api: Option<String>,
    /// The bearer token [default: dev.json's when --api is not given]; a
    /// deployed stack takes a Cognito access token.
    #[arg(long, env = "UNIFLOW_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Output formats of `profiles` and `dlq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people.
    Human,
    /// The management API's JSON answers.
    Json,
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Annotated source snippets, for people.
    Human,
    /// `{"version":1,"diagnostics":[...]}` with 1-based lines and columns.
    Json,
    /// GitHub Actions workflow commands (`::error file=...::message`).
    Github,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

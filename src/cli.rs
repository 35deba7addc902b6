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

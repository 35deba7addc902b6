//! Generation: the checked model into the artifacts under `build/`.
//!
//! Every artifact is a pure function of the model (and, for the bundle's
//! digest, of the source text): sorted maps, stable names, no timestamps, so
//! the same `uniflow.kdl` builds byte-identical files.

mod bundle;
pub mod cloudformation;
mod json_schema;
pub mod names;
mod zod;

use std::collections::BTreeMap;

use crate::model::Config;

pub use bundle::bundle;

/// The generated files, by path relative to the output directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Artifacts {
    /// Path (with `/` separators) to contents.
    pub files: BTreeMap<String, String>,
}

/// Generates every artifact of a checked project.
pub fn artifacts(config: &Config, source: &str) -> Artifacts {
    let bundle = bundle(config, source);
    let mut files = BTreeMap::new();
    files.insert("bundle.json".to_owned(), bundle.to_json());
    for (path, text) in json_schema::files(&bundle) {
        files.insert(format!("schemas/{path}"), text);
    }
    files.insert("schemas/index.ts".to_owned(), zod::index_ts(&bundle));
    files.extend(cloudformation::files(config, &bundle.config_digest));
    Artifacts { files }
}

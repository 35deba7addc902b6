//! The schema model: what a declared event property or trait may hold.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The type of a declared property, as written in `type="..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PropertyType {
    /// A UTF-8 string.
    String,
    /// A finite JSON number (Zod's `z.number()`: no NaN, no infinities).
    Number,
    /// A safe integer (Zod's `z.int()`: within ±(2^53 - 1)).
    Integer,
    /// `true` or `false`.
    Boolean,
    /// An ISO 8601 date-time string (Zod's `z.iso.datetime()`).
    Timestamp,
    /// One of a fixed list of strings.
    Enum,
    /// A nested object with its own properties.
    Object,
    /// A list whose items share one schema.
    Array,
}

impl PropertyType {
    /// Every type, in the order the language reference lists them.
    pub const ALL: [PropertyType; 8] = [
        PropertyType::String,
        PropertyType::Number,
        PropertyType::Integer,
        PropertyType::Boolean,
        PropertyType::Timestamp,
        PropertyType::Enum,
        PropertyType::Object,
        PropertyType::Array,
    ];

    /// The keyword used in `uniflow.kdl`.
    pub fn keyword(self) -> &'static str {
        match self {
            PropertyType::String => "string",
            PropertyType::Number => "number",
            PropertyType::Integer => "integer",
            PropertyType::Boolean => "boolean",
            PropertyType::Timestamp => "timestamp",
            PropertyType::Enum => "enum",
            PropertyType::Object => "object",
            PropertyType::Array => "array",
        }
    }

    /// Parses a keyword as written in `uniflow.kdl`.
    pub fn from_keyword(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.keyword() == s)
    }

    /// Whether `min`/`max`/`multiple-of` apply.
    pub fn is_numeric(self) -> bool {
        matches!(self, PropertyType::Number | PropertyType::Integer)
    }

    /// Whether `min-length`/`max-length` apply (characters or items).
    pub fn has_length(self) -> bool {
        matches!(self, PropertyType::String | PropertyType::Array)
    }
}

impl fmt::Display for PropertyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// A string format check, with Zod 4's meaning of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Zod 4's email pattern.
    Email,
    /// An absolute URL (Zod's `z.url()`).
    Uri,
    /// An RFC 9562 UUID.
    Uuid,
    /// ISO 8601 date-time, `Z` offset by default.
    DateTime,
    /// `YYYY-MM-DD`.
    Date,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::Email,
        Format::Uri,
        Format::Uuid,
        Format::DateTime,
        Format::Date,
    ];

    /// The keyword used in `uniflow.kdl`.
    pub fn keyword(self) -> &'static str {
        match self {
            Format::Email => "email",
            Format::Uri => "uri",
            Format::Uuid => "uuid",
            Format::DateTime => "date-time",
            Format::Date => "date",
        }
    }

    /// Parses a keyword as written in `uniflow.kdl`.
    pub fn from_keyword(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.keyword() == s)
    }
}

/// What an object does with keys it does not declare (Zod 4's object modes).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownKeys {
    /// Accept and drop them (`z.object`). The default, as in Zod.
    #[default]
    Strip,
    /// Reject them with `unrecognized_keys` (`z.strictObject`).
    Strict,
    /// Accept and keep them (`z.looseObject`).
    Passthrough,
}

impl UnknownKeys {
    /// Every policy.
    pub const ALL: [UnknownKeys; 3] = [
        UnknownKeys::Strip,
        UnknownKeys::Strict,
        UnknownKeys::Passthrough,
    ];

    /// The keyword used in `uniflow.kdl`.
    pub fn keyword(self) -> &'static str {
        match self {
            UnknownKeys::Strip => "strip",
            UnknownKeys::Strict => "strict",
            UnknownKeys::Passthrough => "passthrough",
        }
    }

    /// Parses a keyword as written in `uniflow.kdl`.
    pub fn from_keyword(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.keyword() == s)
    }
}

/// A normalisation applied to an identifier value before it is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalization {
    /// Unicode lowercase.
    Lowercase,
    /// Strip leading and trailing whitespace.
    Trim,
}

impl Normalization {
    /// Every normalisation.
    pub const ALL: [Normalization; 2] = [Normalization::Lowercase, Normalization::Trim];

    /// The keyword used in `uniflow.kdl`.
    pub fn keyword(self) -> &'static str {
        match self {
            Normalization::Lowercase => "lowercase",
            Normalization::Trim => "trim",
        }
    }

    /// Parses a keyword as written in `uniflow.kdl`.
    pub fn from_keyword(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.keyword() == s)
    }
}

/// The schema of one value: a property, an array item or a whole properties object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Schema {
    /// The value's type.
    #[serde(rename = "type")]
    pub ty: PropertyType,
    /// `true`: the key may be absent. Meaningless for array items and roots.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// `true`: the value may be JSON `null`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nullable: bool,
    /// Inclusive lower bound for numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Inclusive upper bound for numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Numbers must be a multiple of this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_of: Option<f64>,
    /// Minimum length: characters for strings, items for arrays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Maximum length: characters for strings, items for arrays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// A regular expression strings must match (unanchored, as in Zod's `.regex()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// A string format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// The allowed values of an enum, in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// An object's declared properties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Schema>,
    /// An object's policy for undeclared keys.
    #[serde(default, skip_serializing_if = "is_default")]
    pub unknown_keys: UnknownKeys,
    /// An array's item schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<Schema>>,
    /// The value is personal data.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pii: bool,
    /// What the value means, for generated docs and JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Schema {
    /// A schema of the given type with no constraints.
    pub fn of(ty: PropertyType) -> Self {
        Schema {
            ty,
            optional: false,
            nullable: false,
            min: None,
            max: None,
            multiple_of: None,
            min_length: None,
            max_length: None,
            pattern: None,
            format: None,
            values: Vec::new(),
            properties: BTreeMap::new(),
            unknown_keys: UnknownKeys::Strip,
            items: None,
            pii: false,
            description: None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_round_trip() {
        for t in PropertyType::ALL {
            assert_eq!(PropertyType::from_keyword(t.keyword()), Some(t));
        }
        for f in Format::ALL {
            assert_eq!(Format::from_keyword(f.keyword()), Some(f));
        }
        for u in UnknownKeys::ALL {
            assert_eq!(UnknownKeys::from_keyword(u.keyword()), Some(u));
        }
        for n in Normalization::ALL {
            assert_eq!(Normalization::from_keyword(n.keyword()), Some(n));
        }
        assert_eq!(PropertyType::from_keyword("str"), None);
    }
}

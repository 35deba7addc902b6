//! Issues, with Zod 4's codes, paths and English messages.

use std::fmt::{self, Write};

use serde::{Deserialize, Serialize};

/// Zod 4's issue codes, plus `invalid_json` for bytes that are not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    /// The bytes are not a JSON document (Zod never sees such input).
    InvalidJson,
    /// A value of the wrong type, or a missing required key.
    InvalidType,
    /// A value not among an enum's values.
    InvalidValue,
    /// A string that does not match its format or pattern.
    InvalidFormat,
    /// Below a minimum (number, length).
    TooSmall,
    /// Above a maximum (number, length).
    TooBig,
    /// Not a multiple of the declared step.
    NotMultipleOf,
    /// Keys a strict object does not declare.
    UnrecognizedKeys,
    /// A rule of the message envelope (`userId` or `anonymousId`).
    Custom,
}

impl IssueCode {
    /// The code as Zod writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::InvalidJson => "invalid_json",
            IssueCode::InvalidType => "invalid_type",
            IssueCode::InvalidValue => "invalid_value",
            IssueCode::InvalidFormat => "invalid_format",
            IssueCode::TooSmall => "too_small",
            IssueCode::TooBig => "too_big",
            IssueCode::NotMultipleOf => "not_multiple_of",
            IssueCode::UnrecognizedKeys => "unrecognized_keys",
            IssueCode::Custom => "custom",
        }
    }
}

impl fmt::Display for IssueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PathSegment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Key(k) => f.write_str(k),
            PathSegment::Index(i) => write!(f, "{i}"),
        }
    }
}

/// One problem with a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// Zod's code.
    pub code: IssueCode,
    /// Where, from the message root.
    pub path: Vec<PathSegment>,
    /// Zod's English message.
    pub message: String,
    /// Zod's `continue: false`: stops the length checks of enclosing arrays.
    #[serde(skip)]
    pub(crate) aborts: bool,
}

impl Issue {
    /// An issue at a path.
    pub fn new(code: IssueCode, path: Vec<PathSegment>, message: String) -> Self {
        Issue {
            code,
            path,
            message,
            aborts: false,
        }
    }
}

/// JavaScript's `Number.prototype.toString()` for finite numbers, which Zod
/// uses in messages (`1e+21`, `1e-7`, `0.000001`, `-0` prints `0`).
pub fn js_number(n: f64) -> String {
    if n == 0.0 {
        return "0".to_owned();
    }
    if n.is_nan() {
        return "NaN".to_owned();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Shortest round-trip digits and exponent, as `d.ddde±x`.
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    let point = exp + 1; // JS's `n`: the decimal point sits after `point` digits
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = point - 1;
        let _ = write!(out, "e{}{}", if e >= 0 { "+" } else { "-" }, e.abs());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_javascript() {
        for (n, s) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.01, "0.01"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789.125, "123456789.125"),
            (9007199254740991.0, "9007199254740991"),
            (-9007199254740991.0, "-9007199254740991"),
            (f64::INFINITY, "Infinity"),
        ] {
            assert_eq!(js_number(n), s, "{n}");
        }
    }
}

//! Fast structural scans for the runtime: where an object's members and an
//! array's items are, found with the validator's skipping (eight bytes at a
//! time, no allocation per value) instead of a general JSON parser.

use std::ops::Range;

use super::compile::Program;
use super::engine::Engine;

/// Why a scan failed: what was expected, at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {pos}")]
pub struct ScanError {
    /// What the scanner expected.
    pub what: &'static str,
    /// Where, as a byte offset.
    pub pos: usize,
}

/// One member of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The key's contents, between its quotes.
    pub key: Range<usize>,
    /// Whether the key has escapes (then `key` is not the key's text).
    pub key_escaped: bool,
    /// The value, from its first byte to its last.
    pub value: Range<usize>,
}

impl Member {
    /// The key, decoded.
    pub fn key_text<'a>(&self, bytes: &'a [u8]) -> std::borrow::Cow<'a, str> {
        if self.key_escaped {
            let quoted = &bytes[self.key.start - 1..self.key.end + 1];
            std::borrow::Cow::Owned(serde_json::from_slice::<String>(quoted).unwrap_or_default())
        } else {
            String::from_utf8_lossy(&bytes[self.key.clone()])
        }
    }
}

fn error(e: super::engine::SyntaxError) -> ScanError {
    ScanError {
        what: e.what(),
        pos: e.pos(),
    }
}

/// The members of the object `bytes` holds (whitespace around it allowed).
pub fn object_members(bytes: &[u8]) -> Result<Vec<Member>, ScanError> {
    let prog = Program::default();
    let mut e = Engine::new(&prog, bytes);
    let mut out = Vec::new();
    e.ws();
    if e.next().map_err(error)? != b'{' {
        return Err(ScanError {
            what: "expected an object",
            pos: e.pos - 1,
        });
    }
    e.ws();
    if e.peek().map_err(error)? == b'}' {
        e.pos += 1;
    } else {
        loop {
            e.ws();
            let (ks, ke, escaped) = e.string_raw().map_err(error)?;
            e.ws();
            if e.next().map_err(error)? != b':' {
                return Err(ScanError {
                    what: "expected `:` after a key",
                    pos: e.pos - 1,
                });
            }
            e.ws();
            let start = e.pos;
            e.skip().map_err(error)?;
            out.push(Member {
                key: ks..ke,
                key_escaped: escaped,
                value: start..e.pos,
            });
            e.ws();
            match e.next().map_err(error)? {
                b',' => continue,
                b'}' => break,
                _ => {
                    return Err(ScanError {
                        what: "expected `,` or `}`",
                        pos: e.pos - 1,
                    });
                }
            }
        }
    }
    e.ws();
    if e.pos != bytes.len() {
        return Err(ScanError {
            what: "trailing characters after the object",
            pos: e.pos,
        });
    }
    Ok(out)
}

/// The items of the array in `bytes[range]`.
pub fn array_items(bytes: &[u8], range: Range<usize>) -> Result<Vec<Range<usize>>, ScanError> {
    let prog = Program::default();
    let mut e = Engine::new(&prog, &bytes[..range.end]);
    e.pos = range.start;
    let mut out = Vec::new();
    e.ws();
    if e.next().map_err(error)? != b'[' {
        return Err(ScanError {
            what: "expected an array",
            pos: e.pos - 1,
        });
    }
    e.ws();
    if e.peek().map_err(error)? == b']' {
        return Ok(out);
    }
    loop {
        e.ws();
        let start = e.pos;
        e.skip().map_err(error)?;
        out.push(start..e.pos);
        e.ws();
        match e.next().map_err(error)? {
            b',' => continue,
            b']' => break,
            _ => {
                return Err(ScanError {
                    what: "expected `,` or `]`",
                    pos: e.pos - 1,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_items() {
        let text = br#" {"a" : [1, {"x":"}"}], "b\u0063":null,"c":"s"} "#;
        let m = object_members(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(&text[m[0].value.clone()], br#"[1, {"x":"}"}]"#);
        assert_eq!(m[1].key_text(text), "bc");
        let items = array_items(text, m[0].value.clone()).unwrap();
        assert_eq!(
            items.iter().map(|r| &text[r.clone()]).collect::<Vec<_>>(),
            [&b"1"[..], br#"{"x":"}"}"#]
        );
        for bad in [
            &b"{"[..],
            b"{\"a\"}",
            b"{\"a\":1,}",
            b"[]",
            b"{\"a\":1} x",
            b"{\"a\":tru}",
        ] {
            assert!(
                object_members(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

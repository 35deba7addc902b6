//! A batch of payloads as one object: GZIP-compressed NDJSON, or Parquet.

use std::io::Write;
use std::sync::Arc;

use flate2::Compression;
use flate2::write::GzEncoder;
use parquet::basic::Compression as ParquetCompression;
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::delivery::Outgoing;

/// The Parquet schema every exported file has: the message id, the
/// envelope fields most queries filter on, and the whole payload.
pub const PARQUET_SCHEMA: &str = "message uniflow_event {
    REQUIRED BYTE_ARRAY messageId (STRING);
    OPTIONAL BYTE_ARRAY type (STRING);
    OPTIONAL BYTE_ARRAY event (STRING);
    OPTIONAL BYTE_ARRAY userId (STRING);
    OPTIONAL BYTE_ARRAY anonymousId (STRING);
    OPTIONAL BYTE_ARRAY timestamp (STRING);
    OPTIONAL BYTE_ARRAY receivedAt (STRING);
    REQUIRED BYTE_ARRAY json (JSON);
}";

/// Each payload on its own line, GZIP-compressed.
pub(super) fn ndjson_gz(payloads: &[&Outgoing]) -> Result<Vec<u8>, String> {
    let size: usize = payloads.iter().map(|o| o.payload.len() + 1).sum();
    let mut gz = GzEncoder::new(Vec::with_capacity(size / 4 + 64), Compression::default());
    for o in payloads {
        // Payloads are JSON; a line break in JSON text can only be
        // whitespace, and one would split the line.
        if o.payload.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            let one_line: Vec<u8> = o
                .payload
                .iter()
                .copied()
                .filter(|b| !matches!(b, b'\n' | b'\r'))
                .collect();
            gz.write_all(&one_line)
        } else {
            gz.write_all(&o.payload)
        }
        .and_then(|()| gz.write_all(b"\n"))
        .map_err(|e| format!("cannot compress the batch: {e}"))?;
    }
    gz.finish()
        .map_err(|e| format!("cannot compress the batch: {e}"))
}

/// The top-level fields of a payload the Parquet file has columns for.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow, rename = "type")]
    ty: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow)]
    anonymous_id: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    received_at: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// The value of column `index` of [`PARQUET_SCHEMA`] (1 to 6).
    fn column(&self, index: usize) -> Option<&'a RawValue> {
        match index {
            1 => self.ty,
            2 => self.event,
            3 => self.user_id,
            4 => self.anonymous_id,
            5 => self.timestamp,
            6 => self.received_at,
            _ => None,
        }
    }
}

/// A column's value: a string as itself, another value as its JSON text,
/// absent or `null` as null.
fn text(raw: Option<&RawValue>) -> Option<ByteArray> {
    let raw = raw?.get();
    if raw == "null" {
        return None;
    }
    if raw.starts_with('"')
        && let Ok(s) = serde_json::from_str::<String>(raw)
    {
        return Some(ByteArray::from(s.into_bytes()));
    }
    Some(ByteArray::from(raw.as_bytes().to_vec()))
}

/// One row group of [`PARQUET_SCHEMA`], Snappy-compressed.
pub(super) fn parquet(payloads: &[&Outgoing]) -> Result<Vec<u8>, String> {
    let fail = |e: parquet::errors::ParquetError| format!("cannot write Parquet: {e}");
    let envelopes: Vec<Envelope<'_>> = payloads
        .iter()
        .map(|o| serde_json::from_slice(&o.payload).unwrap_or_default())
        .collect();
    let schema = Arc::new(parse_message_type(PARQUET_SCHEMA).map_err(fail)?);
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(ParquetCompression::SNAPPY)
            .set_created_by(concat!("uniflow ", env!("CARGO_PKG_VERSION")).to_owned())
            .build(),
    );
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, properties).map_err(fail)?;
    let mut group = writer.next_row_group().map_err(fail)?;
    let mut index = 0;
    while let Some(mut column) = group.next_column().map_err(fail)? {
        let typed = column.typed::<ByteArrayType>();
        match index {
            0 => {
                let ids: Vec<ByteArray> = payloads.iter().map(|o| o.id.as_str().into()).collect();
                typed.write_batch(&ids, None, None)
            }
            7 => {
                let json: Vec<ByteArray> = payloads
                    .iter()
                    .map(|o| ByteArray::from(o.payload.clone()))
                    .collect();
                typed.write_batch(&json, None, None)
            }
            field => {
                let cells: Vec<Option<ByteArray>> =
                    envelopes.iter().map(|e| text(e.column(field))).collect();
                let levels: Vec<i16> = cells.iter().map(|c| i16::from(c.is_some())).collect();
                let values: Vec<ByteArray> = cells.into_iter().flatten().collect();
                typed.write_batch(&values, Some(&levels), None)
            }
        }
        .map_err(fail)?;
        column.close().map_err(fail)?;
        index += 1;
    }
    group.close().map_err(fail)?;
    writer.into_inner().map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use bytes::Bytes;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    use super::*;

    fn out(id: &str, payload: &str) -> Outgoing {
        Outgoing {
            id: id.to_owned(),
            payload: Bytes::from(payload.to_owned()),
        }
    }

    #[test]
    fn ndjson_is_one_line_per_payload() {
        let (a, b) = (out("1", "{\n  \"a\": 1\n}"), out("2", r#"{"b":"é"}"#));
        let gz = ndjson_gz(&[&a, &b]).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{  \"a\": 1}\n{\"b\":\"é\"}\n");
    }

    #[test]
    fn parquet_has_the_envelope_columns_and_the_payload() {
        let a = out(
            "m1",
            r#"{"type":"track","event":"Order","userId":42,"receivedAt":"2026-01-02T03:04:05.000Z","x":[1]}"#,
        );
        let b = out("m2", r#"{"anonymousId":null}"#);
        let file = parquet(&[&a, &b]).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(file)).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        let rows: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let cell = |row: usize, name: &str| {
            rows[row]
                .get_column_iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, f)| f.clone())
                .unwrap()
        };
        assert_eq!(cell(0, "messageId"), Field::Str("m1".to_owned()));
        assert_eq!(cell(0, "type"), Field::Str("track".to_owned()));
        assert_eq!(cell(0, "userId"), Field::Str("42".to_owned()));
        assert_eq!(cell(0, "anonymousId"), Field::Null);
        assert_eq!(cell(1, "messageId"), Field::Str("m2".to_owned()));
        assert_eq!(cell(1, "anonymousId"), Field::Null);
        assert_eq!(
            cell(1, "json"),
            Field::Str(r#"{"anonymousId":null}"#.to_owned())
        );
    }
}

//! JSON request bodies read with the path of the field any error is about
//! (`serde_path_to_error`), and that error told in words a person understands, under that
//! field (problem+json `field`), never the parser's own text (`invalid value: integer -1,
//! expected u32 at line 1 column 80`).

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON body of type `T`; use it where `actix_web::web::Json` would go.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // `application/json`, or any `+json` type, with or without parameters.
        let is_json = request
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .is_some_and(|t| t == "application/json" || t.ends_with("+json"));
        let bytes = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::bad_request(
                    "unsupported_media_type",
                    "send the body as application/json",
                )
                .into());
            }
            let bytes = bytes.await.map_err(|error| {
                if error.as_response_error().status_code()
                    == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
                {
                    ApiError::PayloadTooLarge {
                        limit_bytes: crate::extract::MAX_JSON_BYTES,
                    }
                } else {
                    ApiError::bad_request("malformed_json", "the body could not be read")
                }
            })?;
            Ok(Json(parse(&bytes)?))
        })
    }
}

/// Reads `bytes` as a `T`, or says what is wrong and with which field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        explain(&path, error.inner())
    })?;
    deserializer.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::bad_request(
        "malformed_json",
        format!(
            "the body is not valid JSON (line {}, column {})",
            error.line(),
            error.column()
        ),
    )
}

/// The refusal for a body that is JSON of the wrong shape, in our words.
fn explain(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    if !matches!(error.classify(), Category::Data) {
        return malformed(error);
    }
    // serde's message, without the position it appends.
    let full = error.to_string();
    let message = full.split(" at line ").next().unwrap_or(&full);
    let parent = path.trim_start_matches('.');
    let under = |name: &str| match parent {
        "" => name.to_owned(),
        _ => format!("{parent}.{name}"),
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let takes = expected
            .strip_prefix(", expected one of ")
            .or_else(|| expected.strip_prefix(", expected "))
            .map(|list| format!("; it takes {}", list.replace('`', "")))
            .unwrap_or_default();
        // The path already ends at the unknown field.
        let field = if parent.ends_with(name) {
            parent.to_owned()
        } else {
            under(name)
        };
        return ApiError::invalid_field(
            field,
            format!("{name} is not a field of this request{takes}"),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let field = under(name);
        return ApiError::invalid_field(field.clone(), format!("{field} is required"));
    }
    let field = if parent.is_empty() {
        "body".to_owned()
    } else {
        parent.to_owned()
    };
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (got, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed = expected
            .strip_prefix(", expected one of ")
            .or_else(|| expected.strip_prefix(", expected "))
            .unwrap_or("")
            .replace('`', "");
        return ApiError::invalid_field(
            field.clone(),
            format!("{field} must be one of {allowed}, not {got:?}"),
        );
    }
    let mismatch = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "));
    match mismatch {
        Some((got, expected)) => ApiError::invalid_field(
            field.clone(),
            format!("{field} must be {}, not {}", in_words(expected), shown(got)),
        ),
        None => ApiError::invalid_field(field.clone(), format!("{field} is not valid here")),
    }
}

/// What serde expected, as a person would say it.
fn in_words(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a string" => {
            "text in quotes (amounts and prices are decimal strings, such as \"12.50\")".into()
        }
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        other if other.starts_with("struct ") || other == "a map" => "an object".into(),
        other => other.replace('`', ""),
    }
}

/// The value serde found, without its type name: `integer \`-1\`` is `-1`, `string "25"` is
/// `"25"`; a value serde does not quote (`null`, `map`) is said as it is.
fn shown(got: &str) -> String {
    if let (Some(start), Some(end)) = (got.find('`'), got.rfind('`'))
        && start < end
    {
        return got[start + 1..end].to_owned();
    }
    got.strip_prefix("string ").unwrap_or(got).to_owned()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::parse;
    use crate::ApiError;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only read by the deserializer")]
    struct Order {
        market: String,
        fee_bps: Option<u32>,
        post_only: Option<bool>,
        nested: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only read by the deserializer")]
    struct Inner {
        amount: String,
    }

    fn refusal(body: &str) -> (String, Option<String>, String) {
        match parse::<Order>(body.as_bytes()) {
            Err(ApiError::InvalidField { field, detail }) => {
                ("invalid_request".into(), Some(field), detail)
            }
            Err(other) => (other.code().into(), None, other.to_string()),
            Ok(order) => panic!("accepted {order:?}"),
        }
    }

    #[test]
    fn every_refusal_names_its_field_in_words() {
        let cases = [
            (
                r#"{"market":"A-B","fee_bps":-1}"#,
                "fee_bps",
                "fee_bps must be a whole number, 0 or more, not -1",
            ),
            (
                r#"{"market":"A-B","fee_bps":"25"}"#,
                "fee_bps",
                "fee_bps must be a whole number, 0 or more, not \"25\"",
            ),
            (
                r#"{"market":"A-B","post_only":"yes"}"#,
                "post_only",
                "post_only must be true or false, not \"yes\"",
            ),
            (
                r#"{"market":12}"#,
                "market",
                "market must be text in quotes (amounts and prices are decimal strings, such as \"12.50\"), not 12",
            ),
            (r#"{"fee_bps":1}"#, "market", "market is required"),
            (
                r#"{"market":"A-B","nested":{"amount":1.5}}"#,
                "nested.amount",
                "nested.amount must be text in quotes (amounts and prices are decimal strings, such as \"12.50\"), not 1.5",
            ),
            (
                r#"{"market":"A-B","nested":{}}"#,
                "nested.amount",
                "nested.amount is required",
            ),
        ];
        for (body, field, detail) in cases {
            let (code, got_field, got_detail) = refusal(body);
            assert_eq!(code, "invalid_request", "{body}");
            assert_eq!(got_field.as_deref(), Some(field), "{body}");
            assert_eq!(got_detail, detail, "{body}");
        }
        let (_, field, detail) = refusal(r#"{"market":"A-B","act_as":"x"}"#);
        assert_eq!(field.as_deref(), Some("act_as"));
        assert!(
            detail.starts_with("act_as is not a field of this request; it takes market, fee_bps"),
            "{detail}"
        );
        assert!(!detail.contains("line"), "no parser positions: {detail}");
    }

    #[test]
    fn not_json_is_malformed_with_a_position() {
        let (code, field, detail) = refusal(r#"{"market": "#);
        assert_eq!((code.as_str(), field), ("malformed_json", None));
        assert!(
            detail.starts_with("the body is not valid JSON (line 1"),
            "{detail}"
        );
        let (code, _, _) = refusal(r#"{"market":"A-B"} trailing"#);
        assert_eq!(code, "malformed_json");
    }
}

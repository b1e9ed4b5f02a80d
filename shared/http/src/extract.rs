//! Extractor settings so that bad input gets a problem+json 4xx, never a bare text error:
//! not JSON at all is 400, JSON of the wrong shape (unknown field, a number where a decimal
//! string belongs) is 422, a body over the limit is 413.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::ApiError;

/// Largest JSON body accepted; every request of the API is far smaller.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

pub fn configure_extractors(cfg: &mut web::ServiceConfig) {
    // Bodies are read by `crate::Json` as bytes under this limit, then parsed with the path
    // of any error (see `body.rs`).
    cfg.app_data(web::PayloadConfig::new(MAX_JSON_BYTES))
        .app_data(
            web::QueryConfig::default().error_handler(|error, _req| query_error(error).into()),
        )
        .app_data(web::PathConfig::default().error_handler(|error, _req| path_error(error).into()));
}

fn query_error(error: QueryPayloadError) -> ApiError {
    ApiError::unprocessable("invalid_request", format!("bad query string: {error}"))
}

fn path_error(error: PathError) -> ApiError {
    ApiError::not_found("not_found", format!("no such resource: {error}"))
}

/// A JSON body the client may leave out entirely: no body at all is `None`, and a body that is
/// there must be valid, with the same errors as [`crate::Json`]. (`Option<web::Json<T>>` turns
/// every body it cannot read into `None`, so a typo in a field would silently run the
/// request with its defaults.)
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = request.headers();
        // HTTP/1.1: a request with neither header has no body.
        let no_body = !headers.contains_key(TRANSFER_ENCODING)
            && headers
                .get(CONTENT_LENGTH)
                .is_none_or(|length| length.as_bytes() == b"0");
        if no_body {
            return Box::pin(std::future::ready(Ok(OptionalJson(None))));
        }
        let body = crate::Json::<T>::from_request(request, payload);
        Box::pin(async move { Ok(OptionalJson(Some(body.await?.into_inner()))) })
    }
}

/// For PATCH bodies: tells "absent" (`None`) from "null" (`Some(None)`).
/// Use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use actix_web::FromRequest as _;
    use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    use actix_web::test::TestRequest;
    use serde::Deserialize;

    use super::OptionalJson;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        dry_run: bool,
    }

    async fn extract(request: TestRequest) -> Result<Option<Body>, actix_web::Error> {
        let (request, mut payload) = request.to_http_parts();
        OptionalJson::<Body>::from_request(&request, &mut payload)
            .await
            .map(|body| body.0)
    }

    #[actix_web::test]
    async fn no_body_is_none_and_a_body_must_be_valid() {
        assert_eq!(extract(TestRequest::post()).await.ok(), Some(None));
        let empty = TestRequest::post()
            .insert_header((CONTENT_TYPE, "application/json"))
            .insert_header((CONTENT_LENGTH, "0"));
        assert_eq!(extract(empty).await.ok(), Some(None));
        let json = |body: &'static str| {
            TestRequest::post()
                .insert_header((CONTENT_TYPE, "application/json"))
                .set_payload(body)
        };
        assert_eq!(
            extract(json(r#"{"dry_run":true}"#)).await.ok(),
            Some(Some(Body { dry_run: true }))
        );
        for bad in [
            r#"{"dry_run":"yes"}"#,
            r#"{"dry_run":true,"x":1}"#,
            "{",
            "null",
        ] {
            assert!(extract(json(bad)).await.is_err(), "{bad}");
        }
        let not_json = TestRequest::post()
            .insert_header((CONTENT_TYPE, "text/plain"))
            .set_payload(r#"{"dry_run":true}"#);
        assert!(extract(not_json).await.is_err());
    }
}

//! The API as a Lambda function behind a Function URL: converts lambda_http's request (a
//! Function URL payload, the API Gateway HTTP API v2 format) into the plain `http` request the
//! shared router answers, and the router's answer back. All routing, validation and error
//! handling live in `shared::api`, so this adapter only moves bytes and the request id — the
//! Lambda request id, which is also what CloudWatch logs carry, so a client quoting the
//! `x-request-id` of an answer points straight at the log lines of its invocation.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, Service, service_fn};
use shared::api::{Api, RequestId, new_request_id};

/// The service answering every invocation of one execution environment with `api`.
pub fn service(
    api: Api,
) -> impl Service<Request, Response = Response<Body>, Error = Infallible, Future: Send> {
    let api = Arc::new(api);
    service_fn(move |request: Request| {
        let api = api.clone();
        async move { Ok(handle(&api, request).await) }
    })
}

/// Answers one Function URL invocation.
pub async fn handle(api: &Api, request: Request) -> Response<Body> {
    let request_id = request_id(&request);
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(RequestId(request_id));
    // lambda_http has already base64-decoded a binary body; text and binary reach the router
    // alike, as bytes.
    let bytes = match body {
        Body::Text(text) => Bytes::from(text),
        Body::Binary(binary) => Bytes::from(binary),
        _ => Bytes::new(),
    };
    let response = api.handle(http::Request::from_parts(parts, bytes)).await;
    response.map(|bytes| match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    })
}

/// The Lambda request id when running under Lambda; the Function URL's own request id when a
/// payload is handed over without a Lambda context (tests); otherwise a fresh one.
fn request_id(request: &Request) -> String {
    if let Some(context) = request.lambda_context_ref()
        && !context.request_id.is_empty()
    {
        return context.request_id.clone();
    }
    #[allow(irrefutable_let_patterns)] // only the HTTP API v2 (Function URL) format is enabled
    if let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref()
        && let Some(id) = &context.request_id
    {
        return id.clone();
    }
    new_request_id()
}

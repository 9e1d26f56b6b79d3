//! `GET /report`: the latest HTML report page ([`crate::report`]) as the reporting step and the
//! full process stored it, answered as `text/html` with a content security policy that lets it
//! load nothing (it needs nothing: its CSS and charts are inline).

use bytes::Bytes;
use http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use super::{Api, ApiError};
use crate::steps::StepError;
use crate::store::StoreError;

/// The page's policy: no script, no request of any kind; inline styles only.
pub const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

pub(super) async fn report(api: &Api, request_id: &str) -> Result<Response<Bytes>, ApiError> {
    let reports = &api.pipeline().locations.reports;
    let (_, page) = match reports.get(crate::report::INDEX_HTML, None).await {
        Ok(found) => found,
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::NotReady {
                code: "no_report",
                message: "no report page has been written yet: the full process writes one after every run that finds new data; try again after it has run".to_string(),
            });
        }
        Err(error) => return Err(ApiError::from_step(StepError::from(error), request_id)),
    };
    let mut response = Response::new(page);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(REPORT_CSP),
    );
    Ok(response)
}

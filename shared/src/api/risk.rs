//! `GET /risk` (the latest risk list, ranked: top N, a band filter, pagination) and
//! `GET /clients/{corporation}` (one client's current risk, drivers, and its place in earlier
//! lists). Both only read the lists the pipeline wrote ([`crate::risklist`]). A corporation code
//! from the path is data: it is compared with the codes in the list and never becomes part of a
//! storage key, so no name can reach another object; it is still bounded (length, no control
//! characters) before it is used.

use chrono::{DateTime, Utc};
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::{Api, ApiError, json_response};
use crate::risklist::{Band, HistoryPoint, RiskEntry, RiskList, RiskListError, RiskListMeta};
use crate::risklist::{client_history, load_latest};

/// Clients one `/risk` answer lists at most (`top`), and by default.
pub const MAX_TOP: usize = 500;
pub const DEFAULT_TOP: usize = 20;
/// Longest corporation code accepted in a path.
pub const MAX_CORPORATION_BYTES: usize = 256;

/// Which list an answer comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskListInfo {
    pub run_id: String,
    pub generated_at: DateTime<Utc>,
    /// Version id of the deployed model that scored the list.
    pub model_version: String,
    /// The model's decision threshold.
    pub threshold: f64,
    /// Version id of the compiled data the latest rows came from.
    pub data_version: String,
    /// Probability at or above which a client is `high`.
    pub high_probability: f64,
    /// Share of ranked clients in the top group and the rank it ends at (`watch` below `high`).
    pub watch_share: f64,
    pub watch_last_rank: u32,
    pub clients: u64,
    pub ranked: u64,
    pub exited: u64,
    pub exited_earlier: u64,
    pub high: u64,
    pub watch: u64,
    pub low: u64,
    pub newly_high: u64,
    pub previous_run_id: Option<String>,
}

impl From<&RiskListMeta> for RiskListInfo {
    fn from(meta: &RiskListMeta) -> Self {
        RiskListInfo {
            run_id: meta.run_id.clone(),
            generated_at: meta.generated_at,
            model_version: meta.model_version.clone(),
            threshold: meta.threshold,
            data_version: meta.data_version.clone(),
            high_probability: meta.high_probability,
            watch_share: meta.watch_share,
            watch_last_rank: meta.watch_last_rank,
            clients: meta.clients,
            ranked: meta.ranked,
            exited: meta.exited,
            exited_earlier: meta.exited_earlier,
            high: meta.high,
            watch: meta.watch,
            low: meta.low,
            newly_high: meta.newly_high,
            previous_run_id: meta.previous_run_id.clone(),
        }
    }
}

/// `GET /risk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskAnswer {
    pub list: RiskListInfo,
    /// The band asked for (`null`: every band).
    pub band: Option<Band>,
    /// Ranked clients matching the filter.
    pub total: u64,
    pub offset: u64,
    pub top: u64,
    /// The `offset` of the next page, `null` on the last.
    pub next_offset: Option<u64>,
    /// Most at risk first.
    pub clients: Vec<RiskEntry>,
    pub request_id: String,
}

/// `GET /clients/{corporation}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientAnswer {
    pub list: RiskListInfo,
    pub client: RiskEntry,
    /// The client in earlier lists, newest first (at most 12; lists it was not in are left out).
    pub history: Vec<HistoryPoint>,
    pub request_id: String,
}

/// The query of `GET /risk`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskQuery {
    pub top: usize,
    pub offset: usize,
    pub band: Option<Band>,
}

/// Parses `top`, `offset` and `band`; anything else, a repeated parameter or a bad value is
/// refused with a message for the client (values are taken literally, never URL-decoded).
pub fn parse_risk_query(query: Option<&str>) -> Result<RiskQuery, String> {
    let mut parsed = RiskQuery {
        top: DEFAULT_TOP,
        offset: 0,
        band: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.contains(&name) {
            return Err(format!("parameter {name:?} is given twice"));
        }
        seen.push(name);
        let number = |max: usize| -> Result<usize, String> {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{name}={value:?} is not a whole number from 0 to {max}"))
        };
        match name {
            "top" => {
                parsed.top = number(MAX_TOP)?;
                if parsed.top == 0 {
                    return Err(format!("top must be from 1 to {MAX_TOP}"));
                }
            }
            "offset" => parsed.offset = number(u32::MAX as usize)?,
            "band" => {
                parsed.band = Some(Band::parse(value).ok_or_else(|| {
                    format!("band={value:?} is not a band: expected high, watch or low")
                })?)
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: /risk takes top (1 to {MAX_TOP}), offset and band"
                ));
            }
        }
    }
    Ok(parsed)
}

/// Checks a corporation code taken from the path.
pub fn check_corporation(corporation: &str) -> Result<(), String> {
    if corporation.is_empty() {
        return Err("the corporation code is empty".into());
    }
    if corporation.len() > MAX_CORPORATION_BYTES {
        return Err(format!(
            "the corporation code is longer than {MAX_CORPORATION_BYTES} bytes"
        ));
    }
    if corporation.chars().any(char::is_control) {
        return Err("the corporation code contains control characters".into());
    }
    Ok(())
}

fn list_error(error: RiskListError, request_id: &str) -> ApiError {
    match error {
        RiskListError::Store(e) => ApiError::from_store(e, request_id),
        other => ApiError::internal(request_id, "cannot read the risk list", &other),
    }
}

async fn latest(api: &Api, request_id: &str) -> Result<RiskList, ApiError> {
    load_latest(&api.pipeline().locations.reports)
        .await
        .map_err(|e| list_error(e, request_id))?
        .ok_or_else(|| ApiError::NotReady {
            code: "no_risk_list",
            message: "no risk list has been written yet: the full process writes one when it deploys a model or adds rows (or run `risk at-risk --refresh`); try again then".to_string(),
        })
}

pub(super) async fn risk(
    api: &Api,
    query: Option<&str>,
    request_id: &str,
) -> Result<Response<bytes::Bytes>, ApiError> {
    let query = parse_risk_query(query).map_err(ApiError::BadRequest)?;
    let list = latest(api, request_id).await?;
    let matching: Vec<&RiskEntry> = list
        .ranked()
        .filter(|e| query.band.is_none() || e.band == query.band)
        .collect();
    let total = matching.len();
    let page: Vec<RiskEntry> = matching
        .into_iter()
        .skip(query.offset)
        .take(query.top)
        .cloned()
        .collect();
    let end = query.offset.saturating_add(page.len());
    let answer = RiskAnswer {
        list: RiskListInfo::from(&list.meta),
        band: query.band,
        total: total as u64,
        offset: query.offset as u64,
        top: query.top as u64,
        next_offset: (end < total).then_some(end as u64),
        clients: page,
        request_id: request_id.to_string(),
    };
    json_response(StatusCode::OK, &answer, request_id)
}

pub(super) async fn client(
    api: &Api,
    corporation: &str,
    request_id: &str,
) -> Result<Response<bytes::Bytes>, ApiError> {
    check_corporation(corporation).map_err(ApiError::BadRequest)?;
    let list = latest(api, request_id).await?;
    let entry = list
        .client(corporation)
        .cloned()
        .ok_or_else(|| ApiError::ClientNotFound(corporation.to_string()))?;
    let history = client_history(
        &api.pipeline().locations.reports,
        corporation,
        Some(&list.meta.run_id),
    )
    .await
    .map_err(|e| list_error(e, request_id))?;
    let answer = ClientAnswer {
        list: RiskListInfo::from(&list.meta),
        client: entry,
        history,
        request_id: request_id.to_string(),
    };
    json_response(StatusCode::OK, &answer, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_risk_query_takes_top_offset_and_band_and_refuses_the_rest() {
        assert_eq!(
            parse_risk_query(None),
            Ok(RiskQuery {
                top: DEFAULT_TOP,
                offset: 0,
                band: None
            })
        );
        assert_eq!(
            parse_risk_query(Some("top=5&offset=10&band=high")),
            Ok(RiskQuery {
                top: 5,
                offset: 10,
                band: Some(Band::High)
            })
        );
        for (query, why) in [
            ("top=0", "from 1"),
            ("top=501", "0 to 500"),
            ("top=-1", "whole number"),
            ("top=ten", "whole number"),
            ("top=", "whole number"),
            ("offset=1.5", "whole number"),
            ("band=severe", "not a band"),
            ("band=High", "not a band"),
            ("top=5&top=6", "twice"),
            ("limit=5", "unknown parameter"),
            ("top%3D5", "unknown parameter"),
        ] {
            let message = parse_risk_query(Some(query)).unwrap_err();
            assert!(message.contains(why), "{query}: {message}");
        }
    }

    #[test]
    fn corporation_codes_are_bounded_data() {
        for ok in [
            "abcd",
            "../production/deployment.json",
            "a b",
            "s3://x",
            "ü",
        ] {
            assert!(check_corporation(ok).is_ok(), "{ok}");
        }
        assert!(check_corporation("").is_err());
        assert!(check_corporation("a\nb").is_err());
        assert!(check_corporation(&"x".repeat(257)).is_err());
    }
}

//! `risk at-risk`: the latest risk list as a table in the terminal (the top N, optionally one
//! band), or as JSON; `--refresh` first writes a new list from the deployed model and the
//! compiled data (what the full process does after a run that deploys or adds rows).

use std::fmt::Write as _;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use shared::risklist::{Band, RiskEntry, RiskList, load_latest, write_risk_list};
use shared::steps::Pipeline;

#[derive(Args, Debug)]
pub struct AtRiskArgs {
    /// How many clients to show, most at risk first.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Only clients in this band.
    #[arg(long, value_enum)]
    band: Option<BandArg>,
    /// Write a new list first (from the deployed model and the compiled data), with the bands
    /// of RISK_LIST_HIGH_PROBABILITY and RISK_LIST_WATCH_SHARE.
    #[arg(long)]
    refresh: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BandArg {
    High,
    Watch,
    Low,
}

impl From<BandArg> for Band {
    fn from(band: BandArg) -> Band {
        match band {
            BandArg::High => Band::High,
            BandArg::Watch => Band::Watch,
            BandArg::Low => Band::Low,
        }
    }
}

/// The shown part of a list, for `--json`.
#[derive(serde::Serialize)]
struct Shown<'a> {
    list: &'a shared::risklist::RiskListMeta,
    clients: Vec<&'a RiskEntry>,
}

pub async fn run(pipeline: &Pipeline, args: AtRiskArgs, run_id: &str, json: bool) -> Result<()> {
    let list = if args.refresh {
        let (record, written) = write_risk_list(pipeline, run_id, &pipeline.risk_bands).await?;
        if !json {
            println!(
                "Wrote {} (version {}) and {}",
                record.latest_parquet.url, record.latest_parquet.version_id, record.latest_csv.url
            );
        }
        written.to_list()
    } else {
        match load_latest(&pipeline.locations.reports).await? {
            Some(list) => list,
            None => bail!(
                "no risk list in {} yet: run the full process, or `risk at-risk --refresh` to write one now",
                pipeline.locations.reports.url()
            ),
        }
    };
    let band = args.band.map(Band::from);
    let shown: Vec<&RiskEntry> = list
        .ranked()
        .filter(|e| band.is_none() || e.band == band)
        .take(args.top)
        .collect();
    if json {
        let shown = Shown {
            list: &list.meta,
            clients: shown,
        };
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        print!("{}", table(&list, &shown));
    }
    Ok(())
}

fn change(entry: &RiskEntry) -> String {
    match entry.probability_change {
        Some(delta) if delta.abs() < 0.0005 => "=".to_string(),
        Some(delta) => format!("{:+.1} pt", delta * 100.0),
        None => "new".to_string(),
    }
}

/// The readable table: a heading with the list's provenance, one line per client with its main
/// driver (all drivers are in `--json` and the list's files).
fn table(list: &RiskList, shown: &[&RiskEntry]) -> String {
    let meta = &list.meta;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Risk list {} ({}), model {} (threshold {:.3}), data {}",
        meta.run_id,
        meta.generated_at.format("%Y-%m-%d %H:%M UTC"),
        meta.model_version,
        meta.threshold,
        meta.data_version
    );
    let _ = writeln!(
        out,
        "{} clients: {} ranked ({} high at p >= {:.3}, {} watch to rank {}, {} low; {} newly high), {} left recently (listed), {} left earlier (counted)\n",
        meta.clients,
        meta.ranked,
        meta.high,
        meta.high_probability,
        meta.watch,
        meta.watch_last_rank,
        meta.low,
        meta.newly_high,
        meta.exited,
        meta.exited_earlier
    );
    let width = shown
        .iter()
        .map(|e| e.corporation.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(11, 24);
    let _ = writeln!(
        out,
        "{:>5}  {:<width$}  {:>6}  {:<5}  {:>9}  main driver",
        "rank", "corporation", "risk", "band", "change"
    );
    for entry in shown {
        let name: String = entry.corporation.chars().take(width).collect();
        let flag = if entry.newly_high {
            " (newly high)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:>5}  {:<width$}  {:>5.1}%  {:<5}  {:>9}  {}{flag}",
            entry.rank.unwrap_or_default(),
            name,
            entry.probability.unwrap_or_default() * 100.0,
            entry.band.map(Band::name).unwrap_or_default(),
            change(entry),
            entry
                .drivers
                .first()
                .map(|d| &*d.phrase)
                .unwrap_or_default(),
        );
    }
    if shown.is_empty() {
        let _ = writeln!(out, "(no clients in this selection)");
    }
    out
}

//! `skyhold prices import FILE`: loads on-demand prices from an AWS price
//! list offer file (bulk CSV, read line by line, or JSON) into the
//! database the configuration names. Running servers pick them up at
//! their next policy tick.

use super::{emit, load_config};
use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use skyhold_core::prices::{read_offer_csv, read_offer_json, OfferPrice};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum PricesCommand {
    /// Load prices from an offer file (AmazonEC2, AmazonRDS,
    /// AmazonElastiCache; CSV or JSON as AWS publishes them).
    Import {
        file: PathBuf,
        /// The configuration whose database gets the prices.
        #[arg(long, env = "SKYHOLD_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub async fn run(cmd: PricesCommand) -> Result<()> {
    let PricesCommand::Import { file, config } = cmd;
    let mut found: HashMap<(String, String, String), f64> = HashMap::new();
    let mut add = |p: OfferPrice| {
        found.insert((p.product.as_str().to_owned(), p.region, p.rtype), p.usd);
    };
    let name = file.display().to_string();
    let is_json = std::fs::File::open(&file)
        .with_context(|| format!("cannot open {name}"))
        .and_then(|f| {
            let mut first = String::new();
            std::io::BufReader::new(f).read_line(&mut first)?;
            Ok(first.trim_start().starts_with('{'))
        })?;
    if is_json {
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {name}"))?;
        read_offer_json(&text, &mut add).map_err(|e| anyhow!("{name}: {e}"))?;
    } else {
        let f = std::fs::File::open(&file).with_context(|| format!("cannot open {name}"))?;
        read_offer_csv(std::io::BufReader::new(f).lines(), &mut add)
            .map_err(|e| anyhow!("{name}: {e}"))?;
    }
    if found.is_empty() {
        return Err(anyhow!(
            "{name}: no on-demand price skyhold bills (Linux instance-hours, EBS, idle addresses, \
             load balancers, MySQL single-AZ DB instances, Redis cache nodes)"
        ));
    }
    let rows: Vec<skyhold_store::PriceRow> = found
        .into_iter()
        .map(|((product, region, rtype), usd)| skyhold_store::PriceRow {
            product,
            region,
            rtype,
            usd,
        })
        .collect();
    let config = load_config(config.as_deref())?;
    let app = crate::serve::open_app(config).await?;
    let actor = crate::app::Actor::system("cli");
    let r = app.import_prices(&actor, &rows, &name).await;
    app.store.close().await;
    let n = r.map_err(|e| anyhow!("{}: {e}", e.code()))?;
    emit(&format!("imported {n} prices from {name}"))
}

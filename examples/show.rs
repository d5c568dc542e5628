use datafusion::prelude::*;
#[tokio::main]
async fn main() -> datafusion::error::Result<()> {
    let dir = std::env::args().nth(1).unwrap();
    let ctx = SessionContext::new();
    for t in ["lead_scores", "lead_product_scores", "account_scores", "stage_report", "rejects"] {
        let p = format!("{dir}/{t}/");
        if !std::path::Path::new(&p).exists() { continue; }
        ctx.register_parquet(t, &p, ParquetReadOptions::default()).await?;
        let df = ctx.sql(&format!("select * from {t} limit 12")).await?;
        println!("{t}"); df.show().await?;
    }
    Ok(())
}

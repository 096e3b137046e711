//! Records inserted as rows many to a statement: a first version stored
//! whole, a streamed version's SOA, and image parts made rows inside a
//! commit.

use rusqlite::Transaction;

use crate::zone::Rr;

/// Inserts records [`BULK_ROWS`] rows per statement, each statement ending
/// in `on_conflict` (an `ON CONFLICT` clause, or nothing).
pub(super) fn insert_rows(
    tx: &Transaction<'_>,
    zone_id: i64,
    records: &[Rr],
    on_conflict: &str,
) -> rusqlite::Result<()> {
    let statement = |rows: usize| {
        let mut sql =
            String::from("INSERT INTO record(zone_id, name, rtype, rdata, class, ttl) VALUES ");
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?,?,?,?,?,?)");
        }
        sql.push_str(on_conflict);
        sql
    };
    let mut chunks = records.chunks_exact(BULK_ROWS);
    {
        let mut ins = tx.prepare_cached(&statement(BULK_ROWS))?;
        for chunk in &mut chunks {
            bind_rows(&mut ins, zone_id, chunk)?;
            ins.raw_execute()?;
        }
    }
    // The rest in statements of REST_ROWS rows each, largest first: a
    // handful of cached statements, where one statement sized to the rest
    // would be parsed again for every small zone.
    let mut rest = chunks.remainder();
    for rows in REST_ROWS {
        if rest.len() < rows {
            continue;
        }
        let mut ins = tx.prepare_cached(&statement(rows))?;
        while rest.len() >= rows {
            let (now, later) = rest.split_at(rows);
            bind_rows(&mut ins, zone_id, now)?;
            ins.raw_execute()?;
            rest = later;
        }
    }
    Ok(())
}

/// Binds `rows` to the parameters of a multi-row [`insert_rows`]
/// statement, six per row in column order.
fn bind_rows(ins: &mut rusqlite::Statement<'_>, zone_id: i64, rows: &[Rr]) -> rusqlite::Result<()> {
    for (n, r) in rows.iter().enumerate() {
        let i = 1 + 6 * n;
        ins.raw_bind_parameter(i, zone_id)?;
        ins.raw_bind_parameter(i + 1, &r.name)?;
        ins.raw_bind_parameter(i + 2, r.rtype)?;
        ins.raw_bind_parameter(i + 3, &r.rdata)?;
        ins.raw_bind_parameter(i + 4, r.class)?;
        ins.raw_bind_parameter(i + 5, r.ttl)?;
    }
    Ok(())
}

/// Rows per statement of [`insert_rows`].
const BULK_ROWS: usize = 256;

/// Rows per statement of what [`insert_rows`] has left after its
/// [`BULK_ROWS`] statements (at most three of each; the last size is 1).
const REST_ROWS: [usize; 4] = [64, 16, 4, 1];

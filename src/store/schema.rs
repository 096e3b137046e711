//! The SQLite schema and its numbered migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied; on open
//! every later migration runs, in order, each in its own transaction.

use rusqlite::{Connection, TransactionBehavior};

/// Migrations, applied in order. Never edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: zones, current records, versions and the journal of deltas.
    r#"
    CREATE TABLE zone (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,     -- lowercase FQDN
        serial        INTEGER,                  -- current serial; NULL until first transfer
        last_refresh  INTEGER,                  -- unix time of the last successful refresh
        last_transfer INTEGER,                  -- unix time of the last committed version
        last_failure  INTEGER,                  -- unix time of the last failed attempt since success
        last_error    TEXT,
        expire_secs   INTEGER,                  -- effective expire interval at last refresh
        next_seq      INTEGER NOT NULL DEFAULT 1
    );
    -- The current version. Primary key = record identity (RFC 2181 5):
    -- owner, type, RDATA. WITHOUT ROWID keeps rows in key order, so a
    -- zone streams out sorted for the AXFR diff.
    CREATE TABLE record (
        zone_id INTEGER NOT NULL REFERENCES zone(id),
        name    TEXT    NOT NULL,
        rtype   INTEGER NOT NULL,
        rdata   BLOB    NOT NULL,
        class   INTEGER NOT NULL,
        ttl     INTEGER NOT NULL,
        PRIMARY KEY (zone_id, name, rtype, rdata)
    ) WITHOUT ROWID;
    -- One row per version: how it arrived and from which serial.
    -- seq orders versions of a zone even when serials repeat.
    CREATE TABLE version (
        zone_id     INTEGER NOT NULL REFERENCES zone(id),
        seq         INTEGER NOT NULL,
        serial_from INTEGER,                    -- NULL: first version (no delta stored)
        serial_to   INTEGER NOT NULL,
        created     INTEGER NOT NULL,
        kind        TEXT    NOT NULL,           -- 'ixfr' | 'axfr'
        peer        TEXT,
        removed     INTEGER NOT NULL,
        added       INTEGER NOT NULL,
        PRIMARY KEY (zone_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX version_serial_from ON version(zone_id, serial_from);
    -- The delta of each version: op 0 = removed, 1 = added; SOAs included,
    -- in IXFR order (old SOA first among removed, new SOA first among added).
    CREATE TABLE journal (
        zone_id INTEGER NOT NULL,
        seq     INTEGER NOT NULL,
        op      INTEGER NOT NULL,
        idx     INTEGER NOT NULL,
        name    TEXT    NOT NULL,
        rtype   INTEGER NOT NULL,
        class   INTEGER NOT NULL,
        ttl     INTEGER NOT NULL,
        rdata   BLOB    NOT NULL,
        PRIMARY KEY (zone_id, seq, op, idx)
    ) WITHOUT ROWID;
    -- Readers of the journal that must not lose versions (the Route 53
    -- mirror): the last seq each has consumed.
    CREATE TABLE consumer (
        zone_id INTEGER NOT NULL REFERENCES zone(id),
        name    TEXT    NOT NULL,
        seq     INTEGER NOT NULL,
        PRIMARY KEY (zone_id, name)
    ) WITHOUT ROWID;
    "#,
    // 2: the Route 53 mirror's state per zone, beside its journal cursor.
    r#"
    CREATE TABLE mirror_state (
        zone_id       INTEGER PRIMARY KEY REFERENCES zone(id),
        cursor_serial INTEGER,            -- serial of the version last accepted by Route 53
        last_success  INTEGER,            -- unix time
        last_error    TEXT,
        last_error_at INTEGER,
        pending_seq   INTEGER,            -- target seq of a run under way
        pending_done  INTEGER NOT NULL DEFAULT 0  -- its batches accepted so far
    );
    "#,
    // 3: journal size per version (for journal_max_bytes), consumers the
    // journal was trimmed past, and the Route 53 batch sent but not yet
    // acknowledged.
    r#"
    ALTER TABLE version ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
    UPDATE version SET bytes = coalesce(
        (SELECT sum(length(CAST(j.name AS BLOB)) + length(j.rdata) + 11) FROM journal j
          WHERE j.zone_id = version.zone_id AND j.seq = version.seq), 0);
    ALTER TABLE consumer ADD COLUMN reset_at INTEGER;   -- unix time the journal was trimmed past it
    ALTER TABLE mirror_state ADD COLUMN in_flight INTEGER;  -- batch index sent, not yet acknowledged
    ALTER TABLE mirror_state ADD COLUMN in_flight_until INTEGER;  -- unix ms by which Route 53 has settled it
    "#,
    // 4: the hosted zone the mirror's cursor was made for, and a change
    // accepted by Route 53 but not yet INSYNC (wait_insync).
    r#"
    ALTER TABLE mirror_state ADD COLUMN hosted_zone_id TEXT;
    ALTER TABLE mirror_state ADD COLUMN pending_change TEXT;
    "#,
    // 5: catalog zones (RFC 9432): who owns each member zone, and the catalog
    // serial the membership was last derived from (store/catalog.rs).
    r#"
    CREATE TABLE catalog_member (
        member    TEXT PRIMARY KEY,      -- member zone apex, lowercase FQDN
        catalog   TEXT NOT NULL,         -- owning catalog's apex
        unique_id TEXT NOT NULL,         -- label of its member node
        grp       TEXT                   -- its group property
    ) WITHOUT ROWID;
    CREATE TABLE catalog_state (
        catalog TEXT PRIMARY KEY,
        serial  INTEGER                  -- catalog serial the membership follows
    ) WITHOUT ROWID;
    "#,
    // 6: a streamed first version's records as wire images, one part per
    // staged batch (store/image.rs), made into rows after its commit.
    // A rowid table: the parts are large blobs, kept apart from the key.
    r#"
    CREATE TABLE image (
        id      INTEGER PRIMARY KEY,             -- part order: later parts win
        zone_id INTEGER NOT NULL REFERENCES zone(id),
        records INTEGER NOT NULL,                -- records in the part
        data    BLOB    NOT NULL                 -- records, WireRecords encoding
    );
    CREATE INDEX image_zone ON image(zone_id, id);
    "#,
];

/// Brings the database up to the newest schema.
///
/// The check and the migrations run in one IMMEDIATE transaction, so two
/// processes opening a new store at once (the server and a CLI command)
/// cannot both try to create the tables.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()
}

/// Number of migrations this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory store made by a build that knew the first `n`
    /// migrations.
    fn store_of_migrations(n: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..n] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", n as i64).unwrap();
        conn
    }

    #[test]
    fn migration_3_counts_the_bytes_of_versions_journaled_before_it() {
        let mut conn = store_of_migrations(2);
        conn.execute_batch(
            "INSERT INTO zone(id, name, serial, next_seq) VALUES (1, 'example.', 2, 3);
             INSERT INTO version VALUES (1, 1, NULL, 1, 0, 'axfr', NULL, 0, 1);
             INSERT INTO version VALUES (1, 2, 1, 2, 0, 'ixfr', NULL, 0, 1);
             INSERT INTO journal VALUES (1, 2, 1, 0, 'a.example.', 1, 1, 300, x'c0000201');
             INSERT INTO consumer VALUES (1, 'route53', 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let bytes: Vec<i64> = conn
            .prepare("SELECT bytes FROM version ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(bytes, vec![0, 10 + 4 + 11]);
        let reset: Option<i64> = conn
            .query_row("SELECT reset_at FROM consumer", [], |r| r.get(0))
            .unwrap();
        assert_eq!(reset, None);
        assert_eq!(
            conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
                .unwrap(),
            latest_version()
        );
    }

    // A store made by a build with three migrations keeps its mirror state
    // (including a batch in flight) and gains the hosted zone and pending
    // change, both unset.
    #[test]
    fn migration_4_keeps_the_mirror_state_of_an_older_store() {
        let mut conn = store_of_migrations(3);
        conn.execute_batch(
            "INSERT INTO zone(id, name) VALUES (1, 'example.');
             INSERT INTO mirror_state(zone_id, cursor_serial, pending_seq, pending_done,
                                      in_flight, in_flight_until)
             VALUES (1, 7, 3, 2, 2, 1234);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest_version());
        let row: (i64, i64, i64, i64, i64, Option<String>, Option<String>) = conn
            .query_row(
                "SELECT cursor_serial, pending_seq, pending_done, in_flight, in_flight_until,
                        hosted_zone_id, pending_change
                 FROM mirror_state WHERE zone_id = 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(row, (7, 3, 2, 2, 1234, None, None));
    }

    // A store made by a build with five migrations keeps its records and
    // gains an empty table of image parts.
    #[test]
    fn migration_6_adds_image_parts_to_an_older_store() {
        let mut conn = store_of_migrations(5);
        conn.execute_batch(
            "INSERT INTO zone(id, name, serial) VALUES (1, 'example.', 1);
             INSERT INTO record VALUES (1, 'a.example.', 1, x'c0000201', 1, 300);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest_version());
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM record"), 1);
        assert_eq!(count("SELECT count(*) FROM image"), 0);
        conn.execute(
            "INSERT INTO image(zone_id, records, data) VALUES (1, 1, x'00')",
            [],
        )
        .unwrap();
        assert_eq!(count("SELECT count(*) FROM image WHERE zone_id = 1"), 1);
    }
}

use rusqlite::TransactionBehavior;

use super::*;
use crate::zone::Changeset;

mod commit;
mod journal;
mod mirror_state;
pub(super) mod streamed;
mod zone_state;

const Z: &str = "example.";

fn soa(serial: u32) -> Rr {
    Rr::soa(
        Z,
        "ns.example.",
        "host.",
        serial,
        [3600, 600, 86400, 300],
        3600,
    )
    .expect("valid names")
}

fn a(name: &str, last: u8) -> Rr {
    Rr::a(name, std::net::Ipv4Addr::new(192, 0, 2, last), 300)
}

fn info(kind: VersionKind, max_versions: u32) -> CommitInfo {
    CommitInfo {
        peer: Some("127.0.0.1:53".into()),
        journal: JournalLimits {
            max_versions,
            ..JournalLimits::default()
        },
        ..CommitInfo::for_test(kind)
    }
}

fn dump(store: &Store) -> Vec<Rr> {
    let mut v = Vec::new();
    store.for_each_record(Z, |r| v.push(r)).unwrap();
    v
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// Reads through the handle run on read connections: one answers, from
/// the committed version, while a write holds the writer mid-transaction;
/// a second write waits for the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_reads_do_not_wait_for_a_write_under_way() {
    let (_d, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    let handle = StoreHandle::new(s);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let writer = {
        let handle = handle.clone();
        tokio::spawn(async move {
            handle
                .write(move |s| {
                    let tx = s
                        .conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(|source| StoreError::TaskFailed(source.to_string()))?;
                    tx.execute("UPDATE zone SET serial = 99", [])
                        .map_err(|source| StoreError::TaskFailed(source.to_string()))?;
                    started_tx.send(()).ok();
                    release_rx
                        .recv_timeout(Duration::from_secs(30))
                        .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
                    tx.commit()
                        .map_err(|source| StoreError::TaskFailed(source.to_string()))
                })
                .await
        })
    };
    tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the write started");
    // The read answers while the write is open, and sees the last commit.
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        handle.read(|s| Ok(s.zone_state(Z)?.and_then(|z| z.serial))),
    )
    .await
    .expect("a read does not wait for the writer")
    .unwrap();
    assert_eq!(read, Some(1));
    // A second write waits for the writer.
    let second = handle.write(|s| Ok(s.zone_state(Z)?.and_then(|z| z.serial)));
    tokio::pin!(second);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut second)
            .await
            .is_err(),
        "a second write must wait for the first"
    );
    release_tx.send(()).unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(second.await.unwrap(), Some(99));
    let read = handle
        .read(|s| Ok(s.zone_state(Z)?.and_then(|z| z.serial)))
        .await
        .unwrap();
    assert_eq!(read, Some(99), "a read after the commit sees it");
}

fn page_size(store: &Store) -> i64 {
    store
        .conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap()
}

/// A new store takes the page size of new stores; one created with
/// SQLite's default keeps it when opened again, and stores and reads its
/// versions as before.
#[test]
fn a_new_store_has_the_new_page_size_and_an_old_one_keeps_its_own() {
    let (_dir, s) = open();
    assert_eq!(page_size(&s), NEW_STORE_PAGE_SIZE);

    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "page_size", 4096).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(page_size(&s), 4096);
    assert_ne!(
        NEW_STORE_PAGE_SIZE, 4096,
        "the test shows nothing otherwise"
    );
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1)],
        &info(VersionKind::Axfr, 5),
    )
    .unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(page_size(&s), 4096);
    assert_eq!(dump(&s).len(), 2);
}

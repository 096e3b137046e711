//! Master files (RFC 1035 section 5) for primary zones, read with hickory's
//! parser (`$ORIGIN`, `$TTL`, `$INCLUDE`, parentheses, relative names).

use std::path::Path;

use hickory_proto::rr::Name;
use hickory_proto::serialize::txt::Parser;

use super::record::{Rr, owner_key};

/// A master file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ZoneFileError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with the line).
        message: String,
    },
    /// The file parses but is not a usable zone.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Reads the zone `origin` from `path`: every record, SOA included.
pub fn load(path: &Path, origin: &Name) -> Result<Vec<Rr>, ZoneFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ZoneFileError::Read {
        path: shown.clone(),
        source,
    })?;
    let (_, sets) = Parser::new(text, Some(path.to_path_buf()), Some(origin.clone()))
        .parse()
        .map_err(|e| ZoneFileError::Parse {
            path: shown.clone(),
            message: e.to_string(),
        })?;
    let apex = owner_key(origin);
    let suffix = format!(".{apex}");
    let mut records = Vec::new();
    let mut soas = 0;
    for set in sets.values() {
        for r in set.records_without_rrsigs().chain(set.rrsigs().iter()) {
            let rr = Rr::from_record(r).map_err(|e| ZoneFileError::Invalid {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            if rr.name != apex && !rr.name.ends_with(&suffix) && apex != "." {
                return Err(ZoneFileError::Invalid {
                    path: shown.clone(),
                    message: format!("record outside the zone {apex}: {}", rr.to_master_line()),
                });
            }
            if rr.rtype == 6 {
                if rr.name != apex {
                    return Err(ZoneFileError::Invalid {
                        path: shown.clone(),
                        message: format!("SOA record not at the apex: {}", rr.name),
                    });
                }
                soas += 1;
            }
            records.push(rr);
        }
    }
    if soas != 1 {
        return Err(ZoneFileError::Invalid {
            path: shown,
            message: format!("the zone must have exactly one SOA record at {apex}, found {soas}"),
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("z.zone");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn master_file_with_relative_names_loads() {
        let (_d, p) = write(
            "$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww 60 IN TXT \"hello world\"\n",
        );
        let recs = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap();
        assert_eq!(recs.len(), 4);
        let txt = recs.iter().find(|r| r.rtype == 16).unwrap();
        assert_eq!(
            txt.to_master_line(),
            "www.example.org. 60 IN TXT \"hello world\""
        );
        assert!(recs.iter().any(|r| r.soa_serial() == Some(7)));
    }

    #[test]
    fn missing_soa_is_an_error() {
        let (_d, p) = write("$TTL 300\n@ IN NS ns1.example.org.\n");
        let e = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap_err();
        assert!(e.to_string().contains("exactly one SOA"), "{e}");
    }

    #[test]
    fn syntax_error_names_the_file() {
        let (_d, p) =
            write("$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\nwww IN A not-an-address\n");
        let e = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap_err();
        assert!(e.to_string().contains("z.zone"), "{e}");
    }
}

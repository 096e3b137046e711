//! Owner names in Route 53 form.
//!
//! Route 53 stores names lowercased and lists every character outside
//! `a-z`, `0-9`, `-` and `_` as a `\ooo` three-digit **octal** escape (AWS
//! Route 53 Developer Guide, "DNS domain name format"): a wildcard is listed
//! as `\052.example.com.`. The store spells names in RFC 1035 presentation
//! form, whose `\DDD` escapes are **decimal**. The two spellings cannot be
//! told apart by looking at them (`\052` is `*` in one and `4` in the
//! other), so there are two entry points that meet in one canonical form:
//!
//! - [`canonical_r53_name`] reads Route 53 spellings (listings, `*`,
//!   uppercase, `\ooo` octal);
//! - [`store_name_to_r53`] reads the store's RFC 1035 spelling.
//!
//! The canonical form is exactly what `ListResourceRecordSets` returns:
//! lowercase, fully qualified, every byte outside `a-z0-9-_` as `\ooo`. All
//! maps, comparisons and the validator use it. [`request_name`] turns it
//! into the name sent in a request: identical, except that a leading `\052`
//! label is sent as a literal `*` (the wildcard syntax the API reference
//! documents for `ResourceRecordSet.Name`); every other escape is accepted by
//! Route 53 as written ("regardless of whether you specify upper-case
//! letters, lower-case letters, or the corresponding letters in escape
//! codes").

use std::fmt::Write as _;

use crate::zone::wire;

/// A name could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is not a valid RFC 1035 presentation-form domain name.
    #[error("invalid domain name {0:?}")]
    Invalid(String),
}

pub(crate) fn push_octal(out: &mut String, b: u8) {
    let _ = write!(out, "\\{b:03o}");
}

/// Canonical form of a wire-format name (see the module documentation).
pub fn r53_name_from_wire(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            break;
        }
        let label = name.get(at + 1..at + 1 + len as usize).unwrap_or(&[]);
        push_owner_label(&mut out, label);
        out.push('.');
        at += 1 + len as usize;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

fn push_owner_label(out: &mut String, label: &[u8]) {
    for &b in label {
        let b = b.to_ascii_lowercase();
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            push_octal(out, b);
        }
    }
}

/// Maps any Route 53 spelling of a name to the canonical form: letters
/// lowercased, a trailing dot added, every byte outside `a-z0-9-_` written
/// `\ooo` (three octal digits), which is what `ListResourceRecordSets`
/// returns.
///
/// Accepted spellings: Route 53's listing form (`\052.example.com.`), a
/// literal `*` or any other printable character, uppercase letters, `\ooo`
/// octal escapes and `\X` (a backslash before any other character stands for
/// that character, so `a\.b` is one label). A name without its trailing dot
/// is taken as fully qualified, as Route 53 does. Never fails: empty labels
/// are dropped and a trailing lone backslash is taken literally.
///
/// Names in the store's RFC 1035 form (decimal `\DDD`) go through
/// [`store_name_to_r53`] instead.
pub fn canonical_r53_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                if !label.is_empty() {
                    labels.push(std::mem::take(&mut label));
                }
                i += 1;
            }
            b'\\' => {
                let rest = &bytes[i + 1..];
                if rest.len() >= 3 && rest[..3].iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let v = u16::from(rest[0] - b'0') * 64
                        + u16::from(rest[1] - b'0') * 8
                        + u16::from(rest[2] - b'0');
                    if let Ok(b) = u8::try_from(v) {
                        label.push(b);
                        i += 4;
                        continue;
                    }
                }
                match rest.first() {
                    Some(&c) => {
                        label.push(c);
                        i += 2;
                    }
                    None => {
                        label.push(b'\\');
                        i += 1;
                    }
                }
            }
            b => {
                label.push(b);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let mut out = String::with_capacity(name.len() + 4);
    for l in &labels {
        push_owner_label(&mut out, l);
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Converts a name in the store's form (RFC 1035 presentation, `\DDD`
/// decimal and `\X` escapes, as [`crate::zone::owner_key`] writes it) to the
/// canonical Route 53 form.
pub fn store_name_to_r53(name: &str) -> Result<String, NameError> {
    let w = wire::from_presentation(name).ok_or_else(|| NameError::Invalid(name.to_string()))?;
    Ok(r53_name_from_wire(&w))
}

/// The name to send in a `ChangeResourceRecordSets` request for a canonical
/// name: the same string, except that a leading `\052` label (a wildcard)
/// is written `*`, the form the API reference documents for wildcards.
/// `canonical_r53_name(request_name(n)) == n` for every canonical `n`.
pub fn request_name(canonical: &str) -> String {
    match canonical.strip_prefix("\\052.") {
        Some(rest) => format!("*.{rest}"),
        None => canonical.to_string(),
    }
}

/// True when `name` equals `apex` or lies below it (both canonical).
pub fn in_zone(name: &str, apex: &str) -> bool {
    if apex == "." {
        return true;
    }
    name == apex
        || (name.len() > apex.len()
            && name.ends_with(apex)
            && name.as_bytes()[name.len() - apex.len() - 1] == b'.'
            && !escaped_dot_before(name, name.len() - apex.len() - 1))
}

/// True when the `.` at `at` is itself escaped. Canonical names escape a
/// literal dot as `\056`, so a `.` is always a separator; kept for
/// non-canonical input.
fn escaped_dot_before(name: &str, at: usize) -> bool {
    let b = name.as_bytes();
    let mut n = 0;
    let mut i = at;
    while i > 0 && b[i - 1] == b'\\' {
        n += 1;
        i -= 1;
    }
    n % 2 == 1
}

/// True when the leftmost label of a canonical name is the wildcard label.
pub fn is_wildcard(canonical: &str) -> bool {
    canonical.starts_with("\\052.")
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

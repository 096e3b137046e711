//! The DNS COOKIE secret (RFC 9018 section 4) as an operator writes it in
//! `[server] cookie_secret` and `cookie_secret_previous`, and as the
//! server stores a generated one in `data_dir`: 16 bytes, written as 32
//! hexadecimal digits.

/// A cookie secret that is not 32 hexadecimal digits, with the number of
/// characters it had (surrounding white space left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a cookie secret is 32 hexadecimal digits (16 bytes), got {0} characters")]
pub struct SecretFormatError(pub usize);

/// Reads a secret written as 32 hexadecimal digits (either case; white
/// space around them ignored).
pub fn parse_secret(text: &str) -> Result<[u8; 16], SecretFormatError> {
    let t = text.trim();
    if t.len() != 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SecretFormatError(t.len()));
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b =
            u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| SecretFormatError(t.len()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_32_hexadecimal_digits_in_either_case() {
        let lower = parse_secret("e5e973e5a6b2a43f48e7dc849e37bfcf").unwrap();
        assert_eq!(lower[0], 0xe5);
        assert_eq!(lower[15], 0xcf);
        assert_eq!(
            parse_secret("E5E973E5A6B2A43F48E7DC849E37BFCF\n").unwrap(),
            lower
        );
    }

    #[test]
    fn anything_else_says_how_many_characters_it_had() {
        assert_eq!(parse_secret("abc"), Err(SecretFormatError(3)));
        assert_eq!(
            parse_secret("zz973e5a6b2a43f48e7dc849e37bfcfz"),
            Err(SecretFormatError(32))
        );
        // Text that is not ASCII is refused without a panic (the count
        // is of bytes).
        assert_eq!(
            parse_secret("é5e973e5a6b2a43f48e7dc849e37bfc"),
            Err(SecretFormatError(32))
        );
    }
}

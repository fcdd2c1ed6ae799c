//! Server-side password hashes a config may hold instead of plaintext: mysql_native_password's
//! `*<hex SHA1(SHA1(pw))>` and caching_sha2_password's `$A$005$<salt><SHA-crypt>`, as
//! `mysql.user.authentication_string` stores them.

use sha2::{Digest, Sha256};

/// The longest password a hash is checked against, in bytes: MySQL's limit for
/// caching_sha2_password and sha256_password (`CACHING_SHA2_PASSWORD_MAX_PASSWORD_LENGTH`).
pub const MAX_PASSWORD_LEN: usize = 256;

/// A stored password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// mysql_native_password: SHA1(SHA1(password)).
    Native([u8; 20]),
    /// caching_sha2_password: SHA-256 crypt with MySQL's 20-byte salt.
    Sha2 {
        rounds: u32,
        salt: Vec<u8>,
        /// The 43-character encoded digest.
        digest: Vec<u8>,
    },
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordHash::Native(_) => f.write_str("PasswordHash::Native(***)"),
            PasswordHash::Sha2 { .. } => f.write_str("PasswordHash::Sha2(***)"),
        }
    }
}

/// MySQL writes the iteration count in thousands, as three hex digits.
const ROUNDS_MULTIPLIER: u32 = 1000;
const SHA2_SALT_LEN: usize = 20;
const SHA2_DIGEST_LEN: usize = 43;

impl PasswordHash {
    /// Parses `*` + 40 hex digits, `$A$ddd$...`, or either written as `0x` + hex (how
    /// `SHOW CREATE USER` prints a caching_sha2 hash whose salt is not printable).
    pub fn parse(s: &str) -> Result<PasswordHash, String> {
        let bytes = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => decode_hex(hex).ok_or("0x... is not an even number of hex digits")?,
            None => s.as_bytes().to_vec(),
        };
        if let Some(hex) = bytes.strip_prefix(b"*") {
            let stage2 = std::str::from_utf8(hex)
                .ok()
                .and_then(decode_hex)
                .filter(|h| h.len() == 20)
                .ok_or("a mysql_native_password hash is '*' and 40 hex digits")?;
            let mut out = [0; 20];
            out.copy_from_slice(&stage2);
            return Ok(PasswordHash::Native(out));
        }
        if let Some(rest) = bytes.strip_prefix(b"$A$") {
            return parse_sha2(rest);
        }
        Err(
            "not a password hash: expected '*<40 hex digits>' (mysql_native_password) or \
             '$A$005$...' (caching_sha2_password)"
                .into(),
        )
    }

    /// The scheme whose answers this hash can check.
    pub fn plugin(&self) -> &'static str {
        match self {
            PasswordHash::Native(_) => super::handshake::NATIVE_PASSWORD,
            PasswordHash::Sha2 { .. } => super::handshake::SHA2_PASSWORD,
        }
    }

    /// Whether `password` (plaintext) is the one this hash was made from. One over
    /// [`MAX_PASSWORD_LEN`] bytes is not (crypt's cost grows with the square of its
    /// length: a 128 KiB one kept a core busy for seconds, before any login).
    pub fn matches(&self, password: &[u8]) -> bool {
        if password.len() > MAX_PASSWORD_LEN {
            return false;
        }
        match self {
            PasswordHash::Native(stage2) => {
                super::auth::same_bytes(&super::auth::native_stage2(password), stage2)
            }
            PasswordHash::Sha2 {
                rounds,
                salt,
                digest,
            } => super::auth::same_bytes(&sha256_crypt(password, salt, *rounds), digest),
        }
    }
}

fn parse_sha2(rest: &[u8]) -> Result<PasswordHash, String> {
    let bad = || {
        "a caching_sha2_password hash is '$A$' + 3 hex digits + '$' + 20 salt bytes + 43 \
         digest characters"
            .to_string()
    };
    if rest.len() != 4 + SHA2_SALT_LEN + SHA2_DIGEST_LEN || rest[3] != b'$' {
        return Err(bad());
    }
    let rounds = std::str::from_utf8(&rest[..3])
        .ok()
        .and_then(|r| u32::from_str_radix(r, 16).ok())
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let salt = rest[4..4 + SHA2_SALT_LEN].to_vec();
    let digest = rest[4 + SHA2_SALT_LEN..].to_vec();
    Ok(PasswordHash::Sha2 {
        rounds: rounds * ROUNDS_MULTIPLIER,
        salt,
        digest,
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// SHA-256 crypt (Ulrich Drepper's SHA-crypt) as MySQL computes it: the salt is used whole
/// (MySQL's is 20 bytes, where `$5$` crypt stops at 16) and the result is the 43-character
/// encoded digest without any prefix.
pub fn sha256_crypt(password: &[u8], salt: &[u8], rounds: u32) -> Vec<u8> {
    let p = password;
    let alt = Sha256::new()
        .chain_update(p)
        .chain_update(salt)
        .chain_update(p)
        .finalize();
    let mut a = Sha256::new().chain_update(p).chain_update(salt);
    a.update(repeat_to(&alt, p.len()));
    let mut n = p.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(alt);
        } else {
            a.update(p);
        }
        n >>= 1;
    }
    let mut digest = a.finalize();

    let mut dp = Sha256::new();
    for _ in 0..p.len() {
        dp.update(p);
    }
    let p_seq = repeat_to(&dp.finalize(), p.len());
    let mut ds = Sha256::new();
    for _ in 0..16 + usize::from(digest[0]) {
        ds.update(salt);
    }
    let s_seq = repeat_to(&ds.finalize(), salt.len());

    for i in 0..rounds {
        let mut c = Sha256::new();
        if i % 2 == 1 {
            c.update(&p_seq);
        } else {
            c.update(digest);
        }
        if i % 3 != 0 {
            c.update(&s_seq);
        }
        if i % 7 != 0 {
            c.update(&p_seq);
        }
        if i % 2 == 1 {
            c.update(digest);
        } else {
            c.update(&p_seq);
        }
        digest = c.finalize();
    }
    encode(&digest)
}

/// `len` bytes of `block` repeated.
fn repeat_to(block: &[u8], len: usize) -> Vec<u8> {
    block.iter().copied().cycle().take(len).collect()
}

/// SHA-crypt's base64 ("./0-9A-Za-z", least significant 6 bits first) over its byte order.
fn encode(d: &[u8]) -> Vec<u8> {
    const B64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const ORDER: [(usize, usize, usize); 10] = [
        (0, 10, 20),
        (21, 1, 11),
        (12, 22, 2),
        (3, 13, 23),
        (24, 4, 14),
        (15, 25, 5),
        (6, 16, 26),
        (27, 7, 17),
        (18, 28, 8),
        (9, 19, 29),
    ];
    let mut out = Vec::with_capacity(SHA2_DIGEST_LEN);
    let mut put = |w: u32, n: usize| {
        let mut w = w;
        for _ in 0..n {
            out.push(B64[(w & 0x3f) as usize]);
            w >>= 6;
        }
    };
    for (a, b, c) in ORDER {
        put(
            (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]),
            4,
        );
    }
    put((u32::from(d[31]) << 8) | u32::from(d[30]), 3);
    out
}

#[cfg(test)]
mod tests {
    use sha1::Sha1;

    use super::*;

    /// Drepper's published SHA-256 crypt vectors (`$5$` stops the salt at 16 bytes).
    #[test]
    fn matches_the_sha_crypt_reference_vectors() {
        let cases: [(&str, &str, u32, &str); 3] = [
            (
                "Hello world!",
                "saltstring",
                5000,
                "5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
            ),
            (
                "Hello world!",
                "saltstringsaltst",
                10000,
                "3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
            ),
            (
                "we have a short salt string but not a short password",
                "short",
                77777,
                "JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/",
            ),
        ];
        for (pw, salt, rounds, want) in cases {
            let got = sha256_crypt(pw.as_bytes(), salt.as_bytes(), rounds);
            assert_eq!(String::from_utf8(got).unwrap(), want, "{pw}");
        }
    }

    /// `authentication_string`s of MySQL 8 accounts with known passwords (as published in
    /// TiDB's compatibility tests), written the way `SHOW CREATE USER` prints them.
    #[test]
    fn verifies_mysql_caching_sha2_hashes() {
        let foobar = "0x24412430303524031A69251C34295C4B35167C7F1E5A7B63091349503974624D34504B5A424679354856336868686F52485A736E4A733368786E427575516C73446469496537";
        let h = PasswordHash::parse(foobar).unwrap();
        assert_eq!(h.plugin(), "caching_sha2_password");
        assert!(h.matches(b"foobar"));
        assert!(!h.matches(b"not_foobar"));
        let h = PasswordHash::parse("0x244124303035245e3e122f765160382d0b1e4d416f3f6752557c3c4d726e5a68756f4a547547682e536c504e6e76484a7854646b5452486d636e45464d61377a634147714144").unwrap();
        assert!(h.matches(b"123456"));
        assert!(!h.matches(b"1234567"));
    }

    /// A password longer than MySQL takes is refused unhashed: crypt's cost grows with the
    /// square of its length, and a stranger's 128 KiB "password" kept a core busy for
    /// seconds per login attempt.
    #[test]
    fn refuses_passwords_over_the_limit_unhashed() {
        let salt = b"0123456789abcdefghij".to_vec();
        let hash_of = |pw: &[u8]| PasswordHash::Sha2 {
            rounds: 5000,
            salt: salt.clone(),
            digest: sha256_crypt(pw, &salt, 5000),
        };
        let longest = vec![b'x'; MAX_PASSWORD_LEN];
        assert!(hash_of(&longest).matches(&longest));
        let over = vec![b'x'; MAX_PASSWORD_LEN + 1];
        assert!(!hash_of(&over).matches(&over));
    }

    #[test]
    fn verifies_native_hashes() {
        let stage2 = Sha1::digest(Sha1::digest(b"secret"));
        let hex: String = stage2.iter().map(|b| format!("{b:02X}")).collect();
        let h = PasswordHash::parse(&format!("*{hex}")).unwrap();
        assert_eq!(h.plugin(), "mysql_native_password");
        assert!(h.matches(b"secret"));
        assert!(!h.matches(b"Secret"));
    }

    #[test]
    fn refuses_what_is_not_a_hash() {
        for bad in [
            "secret",
            "*12",
            "*ZZ1D9A8F8E8C7A5FE5C4F0A6E8D6B2E49AC4E6C3",
            "$A$005$short",
            "$A$XYZ$01234567890123456789012345678901234567890123456789012345678901",
            "0x123",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
        let h = PasswordHash::parse("*3C1D9A8F8E8C7A5FE5C4F0A6E8D6B2E49AC4E6C3").unwrap();
        assert_eq!(format!("{h:?}"), "PasswordHash::Native(***)");
    }
}

//! htpasswd secrets, checked as Traefik checks them (`go-http-auth`'s `CheckSecret`): `{SHA}`
//! (base64 of SHA-1), bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`), and anything else as MD5-crypt
//! with the magic the secret carries (`$apr1$` Apache's, `$1$` the BSD one). A plain-text
//! password never matches, as in Traefik.

use base64ct::Encoding;
use md5::{Digest, Md5};

/// Whether `password` matches `secret`.
pub fn check(secret: &str, password: &str) -> bool {
    if let Some(b64) = secret.strip_prefix("{SHA}") {
        let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
        return ct_eq(
            base64ct::Base64::encode_string(d.as_ref()).as_bytes(),
            b64.as_bytes(),
        );
    }
    if ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| secret.starts_with(p))
    {
        // bcrypt reads `$2x$` and `$2y$` as `$2a$`/`$2b$` do.
        let normalized = format!("$2b${}", &secret[4..]);
        return bcrypt::verify(password, &normalized).unwrap_or(false);
    }
    let parts: Vec<&str> = secret.split('$').collect();
    let [empty, magic, salt, _hash] = parts[..] else {
        return false;
    };
    if !empty.is_empty() {
        return false;
    }
    let magic = format!("${magic}$");
    ct_eq(
        md5_crypt(password.as_bytes(), salt.as_bytes(), magic.as_bytes()).as_bytes(),
        secret.as_bytes(),
    )
}

/// Constant-time equality (the lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// MD5-crypt (Poul-Henning Kamp's, with `magic` mixed in: `$1$` or `$apr1$`).
pub fn md5_crypt(pw: &[u8], salt: &[u8], magic: &[u8]) -> String {
    let salt = &salt[..salt.len().min(8)];
    let alt = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(pw)
        .chain_update(magic)
        .chain_update(salt);
    let mut n = pw.len();
    while n > 0 {
        ctx.update(&alt[..n.min(16)]);
        n = n.saturating_sub(16);
    }
    let mut i = pw.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..pw.len().min(1)]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for r in 0..1000 {
        let mut c = Md5::new();
        if r & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if r % 3 != 0 {
            c.update(salt);
        }
        if r % 7 != 0 {
            c.update(pw);
        }
        if r & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize();
    }
    const ITOA: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::new();
    out.push_str(&String::from_utf8_lossy(magic));
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut to64 = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ITOA[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64(
            (u32::from(fin[a]) << 16) | (u32::from(fin[b]) << 8) | u32::from(fin[c]),
            4,
        );
    }
    to64(u32::from(fin[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn htpasswd_formats() {
        assert!(check("$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "test"));
        assert!(!check("$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "tesT"));
        // openssl passwd -1 -salt saltsalt password
        assert!(check("$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/", "password"));
        // htpasswd -s: {SHA} of "password"
        assert!(check("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "password"));
        assert!(check(
            "$2a$04$.8sTYfcxbSplCtoxt5TdJOgpBYkarKtZYsYfYxQ1edbYRuO1DNi0e",
            "test"
        ));
        assert!(!check(
            "$2y$04$.8sTYfcxbSplCtoxt5TdJOgpBYkarKtZYsYfYxQ1edbYRuO1DNi0f",
            "test"
        ));
        assert!(!check("test", "test"), "plain text never matches");
        assert!(!check("", ""));
    }
}

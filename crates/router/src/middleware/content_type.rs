//! `contentType` (Traefik's `pkg/middlewares/contenttype`): Traefik's entry points never guess
//! a Content-Type the backend did not send, and neither does betaroute; this middleware turns
//! the guess on, as Go's server makes it: `http.DetectContentType` (the WHATWG MIME sniffing
//! algorithm, Go's table, over the body's first 512 bytes), for a response with a body and no
//! Content-Type. `autoDetect: false` (deprecated) makes it do nothing.

/// Bytes Go looks at.
pub const SNIFF_LEN: usize = 512;

/// Go's `http.DetectContentType`.
pub fn detect(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(SNIFF_LEN)];
    let ws = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let first = data.iter().position(|b| !ws(*b)).unwrap_or(data.len());
    let trimmed = &data[first..];
    // HTML: a tag name, case-insensitive, then a space or `>`.
    const HTML: &[&[u8]] = &[
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    for sig in HTML {
        if trimmed.len() > sig.len()
            && trimmed[..sig.len()].eq_ignore_ascii_case(sig)
            && matches!(trimmed[sig.len()], b' ' | b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if trimmed.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    let exact: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"%!PS-Adobe-", "application/postscript"),
    ];
    for (sig, t) in exact {
        if data.starts_with(sig) {
            return t;
        }
    }
    if data.len() >= 2 && data[..2] == [0xFE, 0xFF] {
        return "text/plain; charset=utf-16be";
    }
    if data.len() >= 2 && data[..2] == [0xFF, 0xFE] {
        return "text/plain; charset=utf-16le";
    }
    if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return "text/plain; charset=utf-8";
    }
    let riff =
        |kind: &[u8]| data.len() >= 12 && &data[..4] == b"RIFF" && data[8..].starts_with(kind);
    let signatures: &[(&[u8], &str)] = &[
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"\x00\x00\x02\x00", "image/x-icon"),
        (b"BM", "image/bmp"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
    ];
    for (sig, t) in signatures {
        if data.starts_with(sig) {
            return t;
        }
    }
    if riff(b"WEBPVP") {
        return "image/webp";
    }
    let rest: &[(&[u8], &str)] = &[
        (b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
        (b"\xFF\xD8\xFF", "image/jpeg"),
    ];
    for (sig, t) in rest {
        if data.starts_with(sig) {
            return t;
        }
    }
    if data.len() >= 12 && &data[..4] == b"FORM" && &data[8..12] == b"AIFF" {
        return "audio/aiff";
    }
    let media: &[(&[u8], &str)] = &[
        (b"ID3", "audio/mpeg"),
        (b"OggS\x00", "application/ogg"),
        (b"MThd\x00\x00\x00\x06", "audio/midi"),
    ];
    for (sig, t) in media {
        if data.starts_with(sig) {
            return t;
        }
    }
    if riff(b"AVI ") {
        return "video/avi";
    }
    if riff(b"WAVE") {
        return "audio/wave";
    }
    if is_mp4(data) {
        return "video/mp4";
    }
    if data.starts_with(b"\x1A\x45\xDF\xA3") {
        return "video/webm";
    }
    if data.len() >= 36 && &data[34..36] == b"LP" {
        return "application/vnd.ms-fontobject";
    }
    let tail: &[(&[u8], &str)] = &[
        (b"\x00\x01\x00\x00", "font/ttf"),
        (b"OTTO", "font/otf"),
        (b"ttcf", "font/collection"),
        (b"wOFF", "font/woff"),
        (b"wOF2", "font/woff2"),
        (b"\x1F\x8B\x08", "application/x-gzip"),
        (b"PK\x03\x04", "application/zip"),
        (b"Rar!\x1A\x07\x00", "application/x-rar-compressed"),
        (b"Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
        (b"\x00\x61\x73\x6D", "application/wasm"),
    ];
    for (sig, t) in tail {
        if data.starts_with(sig) {
            return t;
        }
    }
    // Text: no binary control bytes.
    if !data[first..]
        .iter()
        .any(|b| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F))
    {
        return "text/plain; charset=utf-8";
    }
    "application/octet-stream"
}

/// WHATWG's MP4 signature, as Go checks it.
fn is_mp4(data: &[u8]) -> bool {
    if data.len() < 12 {
        return false;
    }
    let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if data.len() < size || !size.is_multiple_of(4) || &data[4..8] != b"ftyp" {
        return false;
    }
    let mut i = 8;
    while i < size {
        if i == 12 {
            // The minor version.
            i += 4;
            continue;
        }
        if data.get(i..i + 3) == Some(b"mp4") {
            return true;
        }
        i += 4;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_detect_content_type_table() {
        for (data, want) in [
            (&b""[..], "text/plain; charset=utf-8"),
            (b"Test", "text/plain; charset=utf-8"),
            (b"\n <!DOCTYPE html><html>", "text/html; charset=utf-8"),
            (
                b"<HtMl><bOdY>blah blah blah</body></html>",
                "text/html; charset=utf-8",
            ),
            (b"<p>x", "text/html; charset=utf-8"),
            (b"<pre>x", "text/plain; charset=utf-8"),
            (b"  <?xml version='1.0'?>", "text/xml; charset=utf-8"),
            (b"%PDF-1.7", "application/pdf"),
            (b"GIF89a...", "image/gif"),
            (b"\x89PNG\x0D\x0A\x1A\x0A\x00", "image/png"),
            (b"\xFF\xD8\xFF\xE0", "image/jpeg"),
            (b"\x1F\x8B\x08\x00", "application/x-gzip"),
            (b"PK\x03\x04....", "application/zip"),
            (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
            (
                b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
                "video/mp4",
            ),
            (b"\x00\x61\x73\x6D\x01", "application/wasm"),
            (b"\x01\x02binary", "application/octet-stream"),
            (b"\xEF\xBB\xBFbom", "text/plain; charset=utf-8"),
        ] {
            assert_eq!(detect(data), want, "{:?}", String::from_utf8_lossy(data));
        }
    }
}

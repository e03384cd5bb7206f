//! Small, real documents for the `docs` generated sets (the demo): a `.txt` a newcomer can read,
//! a PDF a viewer opens, a PNG, a DOCX a word processor converts, CSV and JSON that parse.
//!
//! Each document is a pure function of (kind, seed, name, version), a few KiB at most, built here
//! without any encoding library: PDF with exact xref offsets, PNG with stored (uncompressed)
//! deflate blocks, DOCX as a zip of stored entries. Nothing is kept: the store holds only the
//! inputs and the length, and a read renders the document again (see `Content::Document`).

use std::fmt::Write as _;

/// A format the `docs` sets render for real; every other extension keeps pseudo-random bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    /// `.txt`: readable lines of text.
    Text,
    /// `.md`: a heading and paragraphs.
    Markdown,
    /// `.csv`: a header row and data rows.
    Csv,
    /// `.json`: one pretty-printed object.
    Json,
    /// `.pdf`: one page of text, PDF 1.4.
    Pdf,
    /// `.png`: a small RGB image.
    Png,
    /// `.docx`: a minimal WordprocessingML package.
    Docx,
}

impl DocKind {
    /// The kind a file name's extension asks for (case-insensitive), if it is one of ours.
    pub fn from_name(name: &str) -> Option<DocKind> {
        let (_, ext) = name.rsplit_once('.')?;
        Some(match ext.to_ascii_lowercase().as_str() {
            "txt" => DocKind::Text,
            "md" => DocKind::Markdown,
            "csv" => DocKind::Csv,
            "json" => DocKind::Json,
            "pdf" => DocKind::Pdf,
            "png" => DocKind::Png,
            "docx" => DocKind::Docx,
            _ => return None,
        })
    }
}

/// The document of `kind` for version `version` of the file `name`, from `seed`.
pub fn render(kind: DocKind, seed: u64, name: &str, version: u32) -> Vec<u8> {
    let title = format!("{}, version {version}", clean(name));
    let mut rng = Rng(seed);
    match kind {
        DocKind::Text => {
            let mut s = format!("{title}\n\n");
            for line in sentences(&mut rng) {
                s.push_str(&line);
                s.push('\n');
            }
            s.into_bytes()
        }
        DocKind::Markdown => {
            let mut s = format!("# {title}\n\n");
            for line in sentences(&mut rng) {
                s.push_str(&line);
                s.push_str("\n\n");
            }
            s.into_bytes()
        }
        DocKind::Csv => csv(&mut rng).into_bytes(),
        DocKind::Json => json(&mut rng, &title, version),
        DocKind::Pdf => {
            let mut lines = vec![title];
            lines.push(String::new());
            lines.extend(sentences(&mut rng));
            pdf(&lines)
        }
        DocKind::Png => png(&mut rng),
        DocKind::Docx => {
            let mut lines = vec![title];
            lines.extend(sentences(&mut rng));
            docx(&lines)
        }
    }
}

/// splitmix64 as a stream: deterministic per seed, good enough to pick words.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// The name with control characters replaced, so every format can carry it (XML forbids them,
/// and a NUL would make a text file "data").
fn clean(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

const SUBJECTS: [&str; 10] = [
    "The east stair core",
    "The level 2 slab",
    "The curtain wall",
    "The roof drainage",
    "The site access road",
    "The plant room",
    "The lobby ceiling",
    "The steel frame",
    "The fire strategy",
    "The car park ramp",
];
const VERBS: [&str; 8] = [
    "was reviewed",
    "needs another check",
    "was moved by 300 mm",
    "is waiting for approval",
    "was coordinated",
    "matches the model",
    "was issued for construction",
    "has two open comments",
];
const CONTEXTS: [&str; 8] = [
    "after the design meeting",
    "by the structural engineer",
    "in the latest model",
    "before the site visit",
    "with the client",
    "on the revised drawings",
    "against the specification",
    "for the next milestone",
];

/// Four to six sentences of plausible project notes.
fn sentences(rng: &mut Rng) -> Vec<String> {
    let mut out = vec![
        "Demo data served by the apsfs emulator; every version of a file reads differently."
            .to_string(),
    ];
    for _ in 0..3 + rng.below(3) {
        out.push(format!(
            "{} {} {}.",
            rng.pick(&SUBJECTS),
            rng.pick(&VERBS),
            rng.pick(&CONTEXTS)
        ));
    }
    out
}

const ROOMS: [&str; 8] = [
    "Lobby", "Office", "Meeting", "Kitchen", "Store", "Plant", "Stair", "Toilet",
];
const STATUSES: [&str; 3] = ["draft", "approved", "built"];

/// A room schedule: header plus 5 to 9 rows, no quoting needed.
fn csv(rng: &mut Rng) -> String {
    let mut s = String::from("id,room,level,area_m2,status\n");
    for id in 1..=5 + rng.below(5) {
        let _ = writeln!(
            s,
            "{id},{} {},{},{}.{},{}",
            rng.pick(&ROOMS),
            1 + rng.below(20),
            rng.below(6),
            5 + rng.below(120),
            rng.below(10),
            rng.pick(&STATUSES)
        );
    }
    s
}

fn json(rng: &mut Rng, title: &str, version: u32) -> Vec<u8> {
    let rooms: Vec<serde_json::Value> = (1..=3 + rng.below(4))
        .map(|id| {
            serde_json::json!({
                "id": id,
                "name": format!("{} {}", rng.pick(&ROOMS), 1 + rng.below(20)),
                "level": rng.below(6),
                "areaM2": 5 + rng.below(120),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "title": title,
        "version": version,
        "generator": "aps-emulator demo data",
        "rooms": rooms,
    });
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// A PDF 1.4 with one A4 page showing `lines` in Helvetica; the xref table holds each object's
/// exact offset, so strict readers need no repair.
fn pdf(lines: &[String]) -> Vec<u8> {
    let mut text = String::from("BT\n/F1 12 Tf\n14 TL\n50 790 Td\n");
    for line in lines {
        let _ = writeln!(text, "({}) '", pdf_string(line));
    }
    text.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
         /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{text}endstream", text.len()),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        let _ = writeln!(tail, "{o:010} 00000 n ");
    }
    let _ = write!(
        tail,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(tail.as_bytes());
    out
}

/// A PDF literal string body: printable ASCII with `\`, `(`, `)` escaped, Latin-1 letters as
/// octal escapes, anything else `?`.
fn pdf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            // WinAnsiEncoding agrees with Latin-1 here: accented letters survive as octal.
            '\u{a0}'..='\u{ff}' => {
                let _ = write!(out, "\\{:03o}", u32::from(c));
            }
            _ => out.push('?'),
        }
    }
    out
}

/// Side of the square PNG in pixels.
const PNG_SIDE: u32 = 32;

/// A 32x32 RGB PNG: a gradient between two seed-chosen colours, zlib data in stored blocks.
fn png(rng: &mut Rng) -> Vec<u8> {
    let (a, b) = (rng.next().to_le_bytes(), rng.next().to_le_bytes());
    let side = PNG_SIDE as usize;
    let mut raw = Vec::with_capacity(side * (1 + 3 * side));
    for y in 0..side {
        raw.push(0); // filter: none
        for x in 0..side {
            let t = (x + y) * 255 / (2 * side - 2);
            for c in 0..3 {
                let v = (usize::from(a[c]) * (255 - t) + usize::from(b[c]) * t) / 255;
                raw.push(v as u8);
            }
        }
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&PNG_SIDE.to_be_bytes());
    ihdr.extend_from_slice(&PNG_SIDE.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none())); // BFINAL on the last, BTYPE=00
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// CRC-32 (IEEE, as PNG and zip use it).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &x in data {
        crc = CRC_TABLE[((crc ^ u32::from(x)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// A WordprocessingML package with one paragraph per line. The part order matters to `file`:
/// `[Content_Types].xml` first and a `word/` part third make it "Microsoft Word 2007+".
fn docx(lines: &[String]) -> Vec<u8> {
    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
    let types = format!(
        "{XML}\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
         <Default Extension=\"rels\" \
         ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
         <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
         <Override PartName=\"/word/document.xml\" ContentType=\"application/\
         vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>"
    );
    let rels = format!(
        "{XML}\n<Relationships \
         xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
         <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/\
         2006/relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>"
    );
    let mut body = String::new();
    for line in lines {
        let _ = write!(
            body,
            "<w:p><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
            xml_escape(line)
        );
    }
    let document = format!(
        "{XML}\n<w:document \
         xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}</w:body></w:document>"
    );
    zip_stored(&[
        ("[Content_Types].xml", types.as_bytes()),
        ("_rels/.rels", rels.as_bytes()),
        ("word/document.xml", document.as_bytes()),
    ])
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// 2024-01-01 in MS-DOS date format, the time every zip entry carries.
const DOS_DATE: u16 = ((2024 - 1980) << 9) | (1 << 5) | 1;

/// A zip archive of stored (uncompressed) entries with its central directory.
pub(crate) fn zip_stored(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let len = data.len() as u32;
        let mut common = Vec::with_capacity(26);
        common.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0
        common.extend_from_slice(&0u16.to_le_bytes()); // flags
        common.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        common.extend_from_slice(&0u16.to_le_bytes()); // time
        common.extend_from_slice(&DOS_DATE.to_le_bytes());
        common.extend_from_slice(&crc.to_le_bytes());
        common.extend_from_slice(&len.to_le_bytes()); // compressed
        common.extend_from_slice(&len.to_le_bytes()); // uncompressed
        common.extend_from_slice(&(name.len() as u16).to_le_bytes());
        common.extend_from_slice(&0u16.to_le_bytes()); // extra length
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&common);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        central.extend_from_slice(&common);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (cd_offset, cd_len) = (out.len() as u32, central.len() as u32);
    out.extend_from_slice(&central);
    let n = entries.len() as u16;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // this disk, disk with the directory
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> usize {
        usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
    }

    fn u32_at(b: &[u8], at: usize) -> usize {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
    }

    #[test]
    fn kinds_follow_extensions() {
        assert_eq!(DocKind::from_name("a.TXT"), Some(DocKind::Text));
        assert_eq!(DocKind::from_name("x.y.docx"), Some(DocKind::Docx));
        assert_eq!(DocKind::from_name("m.rvt"), None);
        assert_eq!(DocKind::from_name("noext"), None);
    }

    #[test]
    fn deterministic_and_different_per_version() {
        for kind in [
            DocKind::Text,
            DocKind::Markdown,
            DocKind::Csv,
            DocKind::Json,
            DocKind::Pdf,
            DocKind::Png,
            DocKind::Docx,
        ] {
            let a = render(kind, 7, "f.x", 1);
            assert_eq!(a, render(kind, 7, "f.x", 1), "{kind:?}");
            assert_ne!(a, render(kind, 8, "f.x", 2), "{kind:?}");
            assert!(!a.is_empty() && a.len() < 8192, "{kind:?}: {}", a.len());
        }
    }

    #[test]
    fn crc_and_adler_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn text_is_readable() {
        let t = String::from_utf8(render(DocKind::Text, 3, "nul\u{0}byte.txt", 2)).unwrap();
        assert!(t.starts_with("nul?byte.txt, version 2\n"), "{t}");
        assert!(t.chars().all(|c| c == '\n' || !c.is_control()));
        let md = String::from_utf8(render(DocKind::Markdown, 3, "r.md", 1)).unwrap();
        assert!(md.starts_with("# r.md, version 1\n"));
    }

    #[test]
    fn csv_and_json_parse() {
        let c = String::from_utf8(render(DocKind::Csv, 5, "s.csv", 1)).unwrap();
        let rows: Vec<Vec<&str>> = c.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(rows[0], ["id", "room", "level", "area_m2", "status"]);
        assert!(rows.len() >= 6 && rows.iter().all(|r| r.len() == 5));
        for r in &rows[1..] {
            r[0].parse::<u32>().unwrap();
            r[3].parse::<f64>().unwrap();
        }
        let j: serde_json::Value =
            serde_json::from_slice(&render(DocKind::Json, 5, "m \"q\".json", 4)).unwrap();
        assert_eq!(j["version"], 4);
        assert_eq!(j["title"], "m \"q\".json, version 4");
        assert!(j["rooms"].as_array().unwrap().len() >= 3);
    }

    #[test]
    fn pdf_xref_offsets_point_at_objects() {
        let p = render(DocKind::Pdf, 9, "Ünïcødé (façade) 🏗.pdf", 1);
        assert!(p.starts_with(b"%PDF-1.4\n") && p.ends_with(b"%%EOF\n"));
        let s = String::from_utf8_lossy(&p).into_owned();
        let startxref: usize = s
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(p[startxref..].starts_with(b"xref\n0 6\n"));
        let table = &p[startxref + 9..];
        for n in 1..=5 {
            let entry = &table[n * 20..n * 20 + 20];
            assert!(entry.ends_with(b" 00000 n \n"));
            let off: usize = std::str::from_utf8(&entry[..10]).unwrap().parse().unwrap();
            assert!(
                p[off..].starts_with(format!("{n} 0 obj\n").as_bytes()),
                "{n}"
            );
        }
        // The stream's /Length is exact.
        let find = |needle: &[u8]| p.windows(needle.len()).position(|w| w == needle).unwrap();
        let at = find(b"/Length ") + 8;
        let digits = p[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        let len: usize = std::str::from_utf8(&p[at..at + digits])
            .unwrap()
            .parse()
            .unwrap();
        let start = find(b"stream\n") + 7;
        assert!(p[start + len..].starts_with(b"endstream"));
        assert!(s.contains("(\\334n\\357c\\370d\\351 \\(fa\\347ade\\) ?.pdf, version 1) '"));
    }

    #[test]
    fn png_chunks_carry_correct_crcs() {
        let p = render(DocKind::Png, 11, "i.png", 1);
        assert!(p.starts_with(b"\x89PNG\r\n\x1a\n"));
        let (mut at, mut kinds, mut idat) = (8, Vec::new(), Vec::new());
        while at < p.len() {
            let len = u32::from_be_bytes(p[at..at + 4].try_into().unwrap()) as usize;
            let body = &p[at + 4..at + 8 + len];
            let crc = u32::from_be_bytes(p[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32(body), crc);
            kinds.push(String::from_utf8(body[..4].to_vec()).unwrap());
            if &body[..4] == b"IDAT" {
                idat.extend_from_slice(&body[4..]);
            }
            at += 12 + len;
        }
        assert_eq!(at, p.len());
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        // One stored block holding every scanline, then the Adler-32 of them.
        let raw_len = 32 * (1 + 3 * 32);
        assert_eq!(&idat[..3], &[0x78, 0x01, 0x01]);
        assert_eq!(u16_at(&idat, 3), raw_len);
        assert_eq!(u16_at(&idat, 5), !raw_len & 0xffff);
        let raw = &idat[7..7 + raw_len];
        assert_eq!(&idat[7 + raw_len..], adler32(raw).to_be_bytes());
        assert!(raw.chunks(1 + 3 * 32).all(|line| line[0] == 0));
    }

    #[test]
    fn docx_zip_directory_matches_entries() {
        let z = render(DocKind::Docx, 13, "a & <b>.docx", 1);
        let eocd = z.len() - 22;
        assert_eq!(u32_at(&z, eocd), 0x0605_4b50);
        let (n, cd_len, cd_off) = (
            u16_at(&z, eocd + 10),
            u32_at(&z, eocd + 12),
            u32_at(&z, eocd + 16),
        );
        assert_eq!((n, cd_off + cd_len), (3, eocd));
        let mut at = cd_off;
        let mut names = Vec::new();
        for _ in 0..n {
            assert_eq!(u32_at(&z, at), 0x0201_4b50);
            let (crc, size) = (u32_at(&z, at + 16), u32_at(&z, at + 20));
            let (name_len, local) = (u16_at(&z, at + 28), u32_at(&z, at + 42));
            let name = String::from_utf8(z[at + 46..at + 46 + name_len].to_vec()).unwrap();
            assert_eq!(u32_at(&z, local), 0x0403_4b50);
            assert_eq!(&z[local + 30..local + 30 + name_len], name.as_bytes());
            let data = &z[local + 30 + name_len..local + 30 + name_len + size];
            assert_eq!(crc32(data) as usize, crc, "{name}");
            if name == "word/document.xml" {
                let xml = std::str::from_utf8(data).unwrap();
                assert!(xml.contains("a &amp; &lt;b&gt;.docx, version 1"));
            }
            names.push(name);
            at += 46 + name_len;
        }
        assert_eq!(
            names,
            ["[Content_Types].xml", "_rels/.rels", "word/document.xml"]
        );
    }
}

use super::*;
use crate::types::{Message, Role};

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    b
}

fn gif(w: u16, h: u16) -> Vec<u8> {
    let mut b = b"GIF89a".to_vec();
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&[0, 0, 0]);
    b
}

/// A JPEG with an APP0 segment before its baseline frame header.
fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
    b.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    b.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08]);
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    b
}

fn webp_extended(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
    b.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    b.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    b
}

/// A PDF of `pages` page objects and the page tree that counts them.
fn pdf(pages: usize) -> Vec<u8> {
    let mut text = String::from("%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
    text.push_str(&format!(
        "2 0 obj << /Type /Pages /Count {pages} /Kids [] >> endobj\n"
    ));
    for i in 0..pages {
        text.push_str(&format!(
            "{} 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\n",
            i + 3
        ));
    }
    text.push_str("%%EOF\n");
    text.into_bytes()
}

/// A PCM WAV of `secs` seconds at 8 kHz, 16-bit mono (16,000 bytes a second).
fn wav(secs: u32) -> Vec<u8> {
    let data = 16_000 * secs;
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0");
    b.extend_from_slice(&8_000u32.to_le_bytes());
    b.extend_from_slice(&16_000u32.to_le_bytes());
    b.extend_from_slice(b"\x02\0\x10\0data");
    b.extend_from_slice(&data.to_le_bytes());
    b.resize(b.len() + data as usize, 0);
    b
}

fn with(part: Part) -> ChatRequest {
    ChatRequest::new(vec![Message::new(Role::User, vec![part])])
}

fn doc(media_type: &str, data: Vec<u8>) -> ChatRequest {
    with(Part::Document(Media::bytes(media_type, data)))
}

#[test]
fn image_sizes_are_read_from_every_common_header() {
    assert_eq!(image_size(&png(1024, 768)), Some((1024, 768)));
    assert_eq!(image_size(&gif(300, 200)), Some((300, 200)));
    assert_eq!(image_size(&jpeg(4000, 3000)), Some((4000, 3000)));
    assert_eq!(image_size(&webp_extended(2048, 4096)), Some((2048, 4096)));
    // Cut short or unknown: no size, never a panic.
    for bytes in [
        &png(1, 1)[..20],
        &jpeg(9, 9)[..12],
        b"BM\0\0",
        &[0xff, 0xd8],
    ] {
        assert_eq!(image_size(bytes), None, "{bytes:?}");
    }
}

#[test]
fn image_rules_follow_each_providers_published_examples() {
    // Anthropic: w × h / 750, at most about 1,600.
    assert_eq!(
        image_tokens(Family::Anthropic, "c", Some((1000, 1000))),
        1_334
    );
    assert_eq!(
        image_tokens(Family::Anthropic, "c", Some((4000, 3000))),
        1_600
    );
    assert_eq!(image_tokens(Family::Anthropic, "c", None), 1_600);
    // OpenAI's worked example: 2,048 × 4,096 at high detail is 6 tiles, 1,105 tokens.
    assert_eq!(
        image_tokens(Family::OpenAi, "gpt-4o", Some((2048, 4096))),
        1_105
    );
    assert_eq!(
        image_tokens(Family::OpenAi, "gpt-4o-mini", Some((2048, 4096))),
        2_833 + 6 * 5_667
    );
    assert_eq!(image_tokens(Family::OpenAi, "gpt-4o", None), 85 + 8 * 170);
    // A model without a known rule gets the larger of the tile and patch rules.
    assert_eq!(image_tokens(Family::OpenAi, "gpt-9", None), 3_779);
    // Gemini: 258 for a small image, else 258 per 768 px tile.
    assert_eq!(image_tokens(Family::Gemini, "g", Some((300, 300))), 258);
    assert_eq!(
        image_tokens(Family::Gemini, "g", Some((1000, 1000))),
        4 * 258
    );
    // Another provider: the largest rule.
    assert_eq!(image_tokens(Family::Other, "m", None), 258 * 16);
}

#[test]
fn a_hundred_page_pdf_is_reserved_page_by_page() {
    let req = doc("application/pdf", pdf(100));
    assert_eq!(pdf_pages(&pdf(100)), 100);
    let anthropic = input_upper_bound(&req, "anthropic", "claude", None);
    assert!(anthropic >= 100 * 4_600, "{anthropic}");
    assert!(
        anthropic > 100 * req.estimated_input_tokens(),
        "{anthropic}"
    );
    let gemini = input_upper_bound(&req, "gemini", "gemini-2.5-pro", None);
    assert!(gemini >= 100 * 560, "{gemini}");
    // Past the provider's page limit, the limit counts.
    let big = input_upper_bound(&doc("application/pdf", pdf(150)), "anthropic", "c", None);
    assert_eq!(big, anthropic);
}

#[test]
fn uncountable_pdf_pages_are_bounded_by_the_byte_size_and_the_page_limit() {
    // Pages inside compressed object streams: nothing to count.
    let opaque = vec![0x78u8; 10_000];
    assert_eq!(pdf_pages(&opaque), 0);
    let req = doc("application/pdf", opaque);
    let pages = 10_000u64.div_ceil(MIN_PDF_PAGE_BYTES);
    assert!(input_upper_bound(&req, "anthropic", "c", None) >= pages * 4_600);
    let by_url = with(Part::Document(Media::url(
        "application/pdf",
        "https://x/y.pdf",
    )));
    assert!(input_upper_bound(&by_url, "anthropic", "c", None) >= 100 * 4_600);
}

#[test]
fn a_text_document_is_at_most_one_token_a_byte() {
    let req = doc("text/plain", vec![b'a'; 1_000]);
    let bound = input_upper_bound(&req, "anthropic", "c", None);
    assert!((1_000..1_010).contains(&bound), "{bound}");
}

#[test]
fn audio_is_bounded_by_its_length() {
    assert_eq!(wav_seconds(&wav(10)), Some(10));
    let req = with(Part::Audio(Media::bytes("audio/wav", wav(10))));
    let bound = input_upper_bound(&req, "gemini", "g", None);
    assert!((320..330).contains(&bound), "{bound}");
    // No header to read: the byte size at the lowest bitrate, 750 bytes a second.
    let mp3 = with(Part::Audio(Media::bytes("audio/mpeg", vec![0u8; 75_000])));
    assert!(input_upper_bound(&mp3, "gemini", "g", None) >= 100 * 32);
}

#[test]
fn the_context_window_caps_the_whole_prompt() {
    let req = doc("application/pdf", pdf(100));
    assert_eq!(
        input_upper_bound(&req, "anthropic", "c", Some(200_000)),
        200_000
    );
}

#[test]
fn cut_or_random_bytes_never_panic_the_readers() {
    let samples = [
        png(640, 480),
        gif(10, 10),
        jpeg(800, 600),
        webp_extended(64, 64),
        pdf(3),
        wav(1),
    ];
    for sample in &samples {
        for end in 0..sample.len().min(200) {
            let cut = &sample[..end];
            let _ = (image_size(cut), pdf_pages(cut), wav_seconds(cut));
        }
    }
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2_000 {
        let mut bytes: Vec<u8> = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect();
        let prefix: &[u8] = match rng.u8(..4) {
            0 => b"RIFF\0\0\0\0WAVE",
            1 => b"RIFF\0\0\0\0WEBPVP8L",
            2 => &[0xff, 0xd8, 0xff],
            _ => b"/Type /Page /Count 99999999999",
        };
        bytes.splice(0..0, prefix.iter().copied());
        let _ = (image_size(&bytes), pdf_pages(&bytes), wav_seconds(&bytes));
    }
}

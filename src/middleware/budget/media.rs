//! Upper bounds on what images, documents and audio in a prompt are billed, per provider.
//!
//! A budget reserves each call's worst case before sending it, so a media part must be
//! counted at the most its provider can bill for it, not at a typical figure. Each rule
//! below follows the provider's published billing rule; where a rule needs something the
//! request does not say (an image's size, a PDF's page count, a recording's length), it is
//! read from the bytes (image headers, the PDF's page objects, a WAV header) and otherwise
//! bounded from the byte size or the provider's own per-request limit. On top of every
//! rule, a prompt can never be billed past the model's context window (a longer one is
//! refused unbilled), so when the price table knows the window the whole prompt's
//! reservation is capped there.
//!
//! # Images
//! - **Anthropic** (docs.anthropic.com, "Vision": *Calculate image costs*): about
//!   `width × height / 750` tokens; images whose long edge passes 1,568 px or that would
//!   cost more than about 1,600 tokens are scaled down first. Bound: that formula, at most
//!   1,600; 1,600 when the size is unknown.
//! - **OpenAI** (platform.openai.com, "Images and vision": *Calculating costs*): `high`
//!   detail scales the image into 2,048 × 2,048, then its short side to 768 px, and bills
//!   a base plus a price per 512 px tile — 85 + 170 per tile for GPT-4o / GPT-4.1 / o-series,
//!   2,833 + 5,667 per tile for GPT-4o mini. Newer small models bill 32 px patches instead,
//!   at most 1,536 patches times a model multiplier (1.62 GPT-4.1 mini, 2.46 GPT-4.1 nano,
//!   1.72 o4-mini). Bound: the tile rule for the tile models named above; for any other
//!   OpenAI model the larger of the 85/170 tile rule and 1,536 patches × 2.46.
//! - **Gemini** (ai.google.dev, "Understand and count tokens"): 258 tokens when both sides
//!   are at most 384 px, else 258 per 768 × 768 tile. Bound: that rule; 16 tiles (a
//!   3,072 px square) when the size cannot be read.
//! - **Any other provider**: the largest of the three.
//!
//! # Documents
//! - **PDF, Anthropic** ("PDF support": *Estimate your costs*): each page is billed as its
//!   extracted text (1,500 – 3,000 tokens a page, by their figures) plus an image of the
//!   page under the image rule; at most 100 pages a request. Bound per page: 3,000 + 1,600.
//! - **PDF, OpenAI** ("File inputs"): the extracted text and an image of each page, at
//!   most 100 pages a request. Bound per page: 3,000 + the model's image bound.
//! - **PDF, Gemini** ("Document understanding"): 258 tokens a page (560 at the default
//!   media resolution of Gemini 3), at most 1,000 pages. Bound per page: 560.
//! - The page count is read from the PDF (its `/Type /Page` objects, or the largest
//!   `/Count` of its page tree). When it cannot be read (pages inside compressed object
//!   streams), it is bounded by the byte size, at one page per [`MIN_PDF_PAGE_BYTES`]; and
//!   always by the provider's page limit. A PDF given by URL counts as that limit.
//! - **Text documents** (`text/*`, JSON, XML): at most one token per byte, since every
//!   token stands for at least one byte. Other document types count as PDFs.
//!
//! # Audio
//! Gemini bills 32 tokens a second ("Audio understanding"); OpenAI's audio models bill
//! fewer. Bound: 32 tokens a second of the recording's length, read from a WAV header, else
//! bounded by the byte size at the lowest bitrate in use, 6 kbit/s ([`MIN_AUDIO_BYTES_PER_SEC`]).
//! Audio given by URL counts as one hour. (OpenAI bills audio tokens at their own, higher
//! price; the embedded table prices no audio model, so a cost cap refuses them unpriced.)

use crate::types::{ChatRequest, Media, MediaSource, Part};

/// The fewest bytes a PDF page takes (its page object, content stream and resources,
/// compressed): bounds the page count of a PDF whose pages cannot be counted.
pub(super) const MIN_PDF_PAGE_BYTES: u64 = 200;

/// The lowest audio bitrate in use (Opus speech at 6 kbit/s), in bytes a second: bounds
/// the length of a recording whose header cannot be read.
pub(super) const MIN_AUDIO_BYTES_PER_SEC: u64 = 750;

/// Audio tokens a second (Gemini's published rate, the highest of the providers).
const AUDIO_TOKENS_PER_SEC: u64 = 32;

/// The length assumed for audio given by URL, in seconds.
const UNKNOWN_AUDIO_SECS: u64 = 3_600;

/// Extracted text tokens a PDF page is bounded at (the top of Anthropic's published range).
const PDF_TEXT_TOKENS_PER_PAGE: u64 = 3_000;

/// Whose billing rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Anthropic,
    OpenAi,
    Gemini,
    Other,
}

impl Family {
    fn of(provider: &str) -> Family {
        match provider {
            "anthropic" => Family::Anthropic,
            "openai" | "azure" => Family::OpenAi,
            "gemini" | "google" => Family::Gemini,
            _ => Family::Other,
        }
    }

    /// The most pages one request may carry.
    fn page_limit(self) -> u64 {
        match self {
            Family::Anthropic | Family::OpenAi => 100,
            Family::Gemini | Family::Other => 1_000,
        }
    }
}

/// The most input tokens `req` can be billed by `provider`'s `model`: the text estimate of
/// [`ChatRequest::estimated_input_tokens`] plus each media part's bound (see the
/// [module docs](self)), capped at `context_window` when known.
pub(super) fn input_upper_bound(
    req: &ChatRequest,
    provider: &str,
    model: &str,
    context_window: Option<u64>,
) -> u64 {
    let family = Family::of(provider);
    let total = req.estimate_tokens_with(|part| match part {
        Part::Image(media) => image_tokens(family, model, media_dimensions(media)),
        Part::Document(media) => document_tokens(family, model, media),
        Part::Audio(media) => audio_tokens(media),
        _ => 0,
    });
    context_window.map_or(total, |window| total.min(window))
}

/// Reads an inline image's width and height from its header.
fn media_dimensions(media: &Media) -> Option<(u64, u64)> {
    match &media.source {
        MediaSource::Bytes { data } => image_size(data),
        MediaSource::Url { .. } => None,
    }
}

/// The image bound of `family` (and `model`, for OpenAI) for an image of `size`.
fn image_tokens(family: Family, model: &str, size: Option<(u64, u64)>) -> u64 {
    match family {
        Family::Anthropic => anthropic_image(size),
        Family::OpenAi => openai_image(model, size),
        Family::Gemini => gemini_image(size),
        Family::Other => anthropic_image(size)
            .max(openai_image("", size))
            .max(gemini_image(size)),
    }
}

fn anthropic_image(size: Option<(u64, u64)>) -> u64 {
    const MAX: u64 = 1_600;
    size.map_or(MAX, |(w, h)| (w.saturating_mul(h)).div_ceil(750).min(MAX))
}

/// OpenAI's tile rule at `high` detail: `base + per_tile × tiles`.
fn openai_tiles(size: Option<(u64, u64)>, base: u64, per_tile: u64) -> u64 {
    let tiles = match size {
        // The most tiles an image can come to: 768 × 2,048 px.
        None => 8,
        Some((w, h)) => {
            let (mut w, mut h) = (w.max(1) as f64, h.max(1) as f64);
            let fit = (2048.0 / w.max(h)).min(1.0);
            (w, h) = (w * fit, h * fit);
            let short = (768.0 / w.min(h)).min(1.0);
            (w, h) = (w * short, h * short);
            (w / 512.0).ceil() as u64 * (h / 512.0).ceil() as u64
        }
    };
    base + per_tile * tiles
}

fn openai_image(model: &str, size: Option<(u64, u64)>) -> u64 {
    if model.starts_with("gpt-4o-mini") {
        return openai_tiles(size, 2_833, 5_667);
    }
    let tiles = openai_tiles(size, 85, 170);
    let tile_models = ["gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "o1", "o3"];
    let patch_model = ["mini", "nano"].iter().any(|m| model.contains(m));
    if tile_models.iter().any(|m| model.starts_with(m)) && !patch_model {
        return tiles;
    }
    // 32 px patches, at most 1,536, times the largest published multiplier.
    let patches = size.map_or(1_536, |(w, h)| {
        (w.div_ceil(32).saturating_mul(h.div_ceil(32))).min(1_536)
    });
    tiles.max((patches as f64 * 2.46).ceil() as u64)
}

fn gemini_image(size: Option<(u64, u64)>) -> u64 {
    match size {
        Some((w, h)) if w <= 384 && h <= 384 => 258,
        Some((w, h)) => 258 * w.div_ceil(768).max(1) * h.div_ceil(768).max(1),
        None => 258 * 16,
    }
}

/// The bound of one document part.
fn document_tokens(family: Family, model: &str, media: &Media) -> u64 {
    let kind = media.media_type.to_ascii_lowercase();
    let textual = kind.starts_with("text/")
        || kind.ends_with("json")
        || kind.ends_with("xml")
        || kind == "application/x-yaml";
    let bytes = match &media.source {
        MediaSource::Bytes { data } => Some(data.as_slice()),
        MediaSource::Url { .. } => None,
    };
    let limit = family.page_limit();
    let per_page = match family {
        Family::Gemini => 560,
        _ => PDF_TEXT_TOKENS_PER_PAGE + image_tokens(family, model, None),
    };
    match bytes {
        Some(data) if textual => data.len() as u64,
        Some(data) => {
            let pages = match pdf_pages(data) {
                0 => (data.len() as u64).div_ceil(MIN_PDF_PAGE_BYTES),
                n => n,
            };
            pages.clamp(1, limit) * per_page
        }
        None => limit * per_page,
    }
}

/// The bound of one audio part.
fn audio_tokens(media: &Media) -> u64 {
    let secs = match &media.source {
        MediaSource::Bytes { data } => match wav_seconds(data) {
            Some(secs) => secs,
            None => (data.len() as u64).div_ceil(MIN_AUDIO_BYTES_PER_SEC),
        },
        MediaSource::Url { .. } => UNKNOWN_AUDIO_SECS,
    };
    secs.max(1).saturating_mul(AUDIO_TOKENS_PER_SEC)
}

fn be16(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le16(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le24(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 3)?;
    Some(u64::from(s[0]) | u64::from(s[1]) << 8 | u64::from(s[2]) << 16)
}

fn le32(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(
        b.get(at..at + 4)?.try_into().ok()?,
    )))
}

/// Reads the width and height of a PNG, GIF, JPEG or WebP image from its header; `None`
/// for anything else or a header cut short.
pub(super) fn image_size(b: &[u8]) -> Option<(u64, u64)> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") && b.get(12..16) == Some(b"IHDR") {
        let w = u64::from(u32::from_be_bytes(b.get(16..20)?.try_into().ok()?));
        let h = u64::from(u32::from_be_bytes(b.get(20..24)?.try_into().ok()?));
        return Some((w, h));
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Some((le16(b, 6)?, le16(b, 8)?));
    }
    if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        return match b.get(12..16)? {
            b"VP8 " => Some((le16(b, 26)? & 0x3fff, le16(b, 28)? & 0x3fff)),
            b"VP8L" => {
                let bits = le32(b, 21)?;
                Some((1 + (bits & 0x3fff), 1 + ((bits >> 14) & 0x3fff)))
            }
            b"VP8X" => Some((1 + le24(b, 24)?, 1 + le24(b, 27)?)),
            _ => None,
        };
    }
    if b.starts_with(&[0xff, 0xd8]) {
        return jpeg_size(b);
    }
    None
}

/// Walks a JPEG's segments to its frame header (SOF0 – SOF15, not DHT, JPG or DAC).
fn jpeg_size(b: &[u8]) -> Option<(u64, u64)> {
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xff {
            return None;
        }
        let marker = b[i + 1];
        match marker {
            0xff => i += 1,
            0xd0..=0xd9 | 0x01 => i += 2,
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                return Some((be16(b, i + 7)?, be16(b, i + 5)?));
            }
            _ => i += 2 + usize::try_from(be16(b, i + 2)?).ok()?,
        }
    }
    None
}

/// Counts a PDF's pages: its `/Type /Page` objects, or the largest `/Count` of its page
/// tree when that is more; 0 when neither can be seen (compressed object streams).
pub(super) fn pdf_pages(b: &[u8]) -> u64 {
    let mut pages = 0u64;
    let mut counted = 0u64;
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"/Type") {
            let mut j = 5;
            while rest.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            let after = &rest[j..];
            if after.starts_with(b"/Page") && !after.get(5).is_some_and(u8::is_ascii_alphanumeric) {
                pages += 1;
            }
            i += j;
        } else if rest.starts_with(b"/Count") {
            let digits: Vec<u8> = rest[6..]
                .iter()
                .skip_while(|c| c.is_ascii_whitespace())
                .take_while(|c| c.is_ascii_digit())
                .take(9)
                .copied()
                .collect();
            if let Some(n) = std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| d.parse::<u64>().ok())
            {
                counted = counted.max(n);
            }
            i += 6;
        } else {
            i += 1;
        }
    }
    pages.max(counted)
}

/// Reads a WAV file's length in whole seconds (rounded up) from its `fmt ` and `data`
/// chunks.
pub(super) fn wav_seconds(b: &[u8]) -> Option<u64> {
    if !(b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WAVE")) {
        return None;
    }
    let (mut byte_rate, mut data) = (None, None);
    let mut i = 12;
    while i + 8 <= b.len() {
        let size = le32(b, i + 4)?;
        match &b[i..i + 4] {
            b"fmt " => byte_rate = le32(b, i + 16),
            b"data" => {
                // A streamed WAV may declare its data as 0 or 0xFFFFFFFF: count what is there.
                let there = (b.len() - i - 8) as u64;
                data = Some(if size == 0 || size > there {
                    there
                } else {
                    size
                });
                break;
            }
            _ => {}
        }
        let size = usize::try_from(size).ok()?;
        i = i.checked_add(8)?.checked_add(size)?.checked_add(size & 1)?;
    }
    let rate = byte_rate.filter(|r| *r > 0)?;
    Some(data?.div_ceil(rate))
}

#[cfg(test)]
mod tests;

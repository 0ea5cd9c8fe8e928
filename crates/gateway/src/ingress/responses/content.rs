//! Content parts of input messages and function call outputs → the library's [`Part`]s.
//!
//! User messages take `input_text`, `input_image` (a data: URL or an https URL) and
//! `input_file` (`file_data`, bare base64 or a data: URL, or `file_url`); assistant messages
//! `output_text` and `refusal`. Files by `file_id` and audio are refused naming the part.

use switchboard::Part;

use super::wire::{Content, ContentPart};
use crate::convert::media_of;
use crate::error::ApiError;

/// How the fix reads for a part that needs an uploaded file.
const STATELESS: &str = super::decode::STATELESS;

pub(crate) fn assistant_parts(i: usize, content: &Content) -> Result<Vec<Part>, ApiError> {
    let parts = match content {
        Content::Text(text) => return Ok(vec![Part::text(text.clone())]),
        Content::Parts(parts) => parts,
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| match (part.kind.as_str(), &part.text, &part.refusal) {
            ("output_text" | "input_text", Some(text), _) => Ok(Part::text(text.clone())),
            ("refusal", _, Some(refusal)) => Ok(Part::text(refusal.clone())),
            (kind, _, _) => Err(ApiError::invalid(
                format!("input[{i}].content[{j}] is a `{kind}` part without its text; an assistant message takes output_text and refusal parts"),
                Some(&format!("input[{i}].content[{j}]")),
            )),
        })
        .collect()
}

pub(crate) fn user_parts(i: usize, content: &Content) -> Result<Vec<Part>, ApiError> {
    let parts = match content {
        Content::Text(text) => return Ok(vec![Part::text(text.clone())]),
        Content::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let param = format!("input[{i}].content[{j}]");
        out.push(user_part(part, &param)?);
    }
    Ok(out)
}

fn user_part(part: &ContentPart, param: &str) -> Result<Part, ApiError> {
    let by_id = || {
        ApiError::invalid(
            format!("{param} refers to an uploaded file by `file_id`, which cannot be fetched: {STATELESS}; send the data inline (a data: URL) or an https URL"),
            Some(param),
        )
    };
    Ok(match part.kind.as_str() {
        "input_text" | "output_text" => Part::text(part.text.clone().unwrap_or_default()),
        "refusal" => Part::text(part.refusal.clone().unwrap_or_default()),
        "input_image" => match (&part.image_url, &part.file_id) {
            (Some(url), _) => Part::Image(media_of(url, "image/jpeg", param)?),
            (None, Some(_)) => return Err(by_id()),
            (None, None) => {
                return Err(ApiError::invalid(
                    format!("{param} (input_image) has no `image_url`; send a data: URL or an https URL"),
                    Some(param),
                ))
            }
        },
        "input_file" => match (&part.file_data, &part.file_url, &part.file_id) {
            (Some(data), _, _) => {
                let data = if data.starts_with("data:") {
                    data.clone()
                } else {
                    format!("data:{};base64,{data}", guess_type(part.filename.as_deref()))
                };
                Part::Document(media_of(&data, "application/pdf", param)?)
            }
            (None, Some(url), _) => Part::Document(media_of(url, "application/pdf", param)?),
            (None, None, Some(_)) => return Err(by_id()),
            (None, None, None) => {
                return Err(ApiError::invalid(
                    format!("{param} (input_file) has no `file_data` or `file_url`; send one"),
                    Some(param),
                ))
            }
        },
        "input_audio" => {
            return Err(ApiError::invalid(
                format!("{param} is audio, which the Responses API does not take; transcribe it first, or send it to /v1/chat/completions"),
                Some(param),
            ))
        }
        other => {
            return Err(ApiError::invalid(
                format!("{param} is a `{other}` part; a user message takes input_text, input_image and input_file parts"),
                Some(param),
            ))
        }
    })
}

/// The media type of an inline file sent as bare base64, from its name.
fn guess_type(filename: Option<&str>) -> &'static str {
    let lower = filename.unwrap_or("").to_ascii_lowercase();
    [
        (".png", "image/png"),
        (".jpg", "image/jpeg"),
        (".jpeg", "image/jpeg"),
        (".txt", "text/plain"),
    ]
    .iter()
    .find(|(ext, _)| lower.ends_with(ext))
    .map_or("application/pdf", |(_, t)| *t)
}

/// The text of system content or a function call's output; only text parts can be sent.
pub(crate) fn text_of(content: &Content, param: &str) -> Result<String, ApiError> {
    match content {
        Content::Text(text) => Ok(text.clone()),
        Content::Parts(parts) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (part.kind.as_str(), &part.text) {
                    ("input_text" | "output_text", Some(t)) => text.push_str(t),
                    (kind, _) => {
                        return Err(ApiError::invalid(
                            format!("{param}[{j}] is a `{kind}` part; only text can be sent here, so send it as input_text"),
                            Some(&format!("{param}[{j}]")),
                        ))
                    }
                }
            }
            Ok(text)
        }
    }
}

//! A request's message → the platform bodies it becomes, by the platform's rules: text split into
//! parts of at most the platform's byte limit (one unit each), which types each platform takes,
//! and how an image reaches it. Pure: images that must be uploaded first come back as
//! [`Composed::Upload`] for `media`.

use shared::api::{OutboundBody, split_text};
use shared::ids::Platform;

use crate::error::{SendError, invalid};
use crate::request::{ImageSource, OutboundMessage};

/// What a message becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Composed<'a> {
    /// The bodies to send, in order.
    Ready(Vec<OutboundBody>),
    /// A WeChat image that must be uploaded first (then sent as one image body).
    Upload(Upload<'a>),
}

/// Image bytes to upload, or where to fetch them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Upload<'a> {
    /// Fetch from this URL (under the fetch policy).
    Url(&'a str),
    /// These bytes.
    Data(&'a [u8]),
}

/// The bodies `message` becomes on `platform`, or why it cannot be sent there.
pub fn compose(
    platform: Platform,
    message: &OutboundMessage,
    max_text_bytes: usize,
) -> Result<Composed<'_>, SendError> {
    let one = |body| Ok(Composed::Ready(vec![body]));
    match (platform, message) {
        (_, OutboundMessage::Text(content)) => Ok(Composed::Ready(
            split_text(content, max_text_bytes)
                .into_iter()
                .map(|content| OutboundBody::Text { content })
                .collect(),
        )),
        (Platform::Wechat, OutboundMessage::Image(source)) => match source {
            ImageSource::MediaId(id) => one(OutboundBody::Image {
                media_id: id.clone(),
            }),
            ImageSource::Url(url) => Ok(Composed::Upload(Upload::Url(url))),
            ImageSource::Data(bytes) => Ok(Composed::Upload(Upload::Data(bytes))),
        },
        (Platform::Baidu, OutboundMessage::Image(source)) => match source {
            ImageSource::Url(url) if url.starts_with("https://") => one(OutboundBody::ImageUrl {
                pic_url: url.clone(),
            }),
            _ => Err(invalid(
                "image.url",
                "Baidu sends images by public https URL only",
            )),
        },
        (Platform::Wechat, OutboundMessage::Link(l)) => one(OutboundBody::Link {
            title: l.title.clone(),
            description: l.description.clone(),
            url: l.url.clone(),
            thumb_url: l.thumb_url.clone(),
        }),
        (Platform::Wechat, OutboundMessage::MiniProgramPage(m)) => {
            one(OutboundBody::MiniProgramPage {
                title: m.title.clone(),
                pagepath: m.pagepath.clone(),
                thumb_media_id: m.thumb_media_id.clone(),
            })
        }
        (Platform::Baidu, other) => Err(invalid(
            "msg_type",
            format!(
                "{} is not a baidu customer-service message type",
                other.msg_type()
            ),
        )),
    }
}

/// What an outbound record keeps of the bodies: the text (all parts joined), or the media
/// reference (media id, picture URL, link URL or page path).
pub fn describe(bodies: &[OutboundBody]) -> (Option<String>, Option<String>) {
    match bodies.first() {
        Some(OutboundBody::Text { .. }) => (
            Some(
                bodies
                    .iter()
                    .filter_map(|b| match b {
                        OutboundBody::Text { content } => Some(content.as_str()),
                        _ => None,
                    })
                    .collect(),
            ),
            None,
        ),
        Some(OutboundBody::Image { media_id }) => (None, Some(media_id.clone())),
        Some(OutboundBody::ImageUrl { pic_url }) => (None, Some(pic_url.clone())),
        Some(OutboundBody::Link { url, .. }) => (None, Some(url.clone())),
        Some(OutboundBody::MiniProgramPage { pagepath, .. }) => (None, Some(pagepath.clone())),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::LinkInput;

    #[test]
    fn long_text_becomes_parts_within_the_limit() {
        let text = "好".repeat(1000); // 3000 bytes
        let Composed::Ready(bodies) =
            compose(Platform::Wechat, &OutboundMessage::Text(text.clone()), 2000).unwrap()
        else {
            panic!("text needs no upload");
        };
        assert_eq!(bodies.len(), 2);
        assert_eq!(describe(&bodies).0.as_deref(), Some(text.as_str()));
    }

    #[test]
    fn each_platform_takes_only_its_types() {
        let link = OutboundMessage::Link(LinkInput {
            title: "t".into(),
            description: "d".into(),
            url: "https://e".into(),
            thumb_url: "https://t".into(),
        });
        assert!(compose(Platform::Wechat, &link, 2000).is_ok());
        assert!(matches!(
            compose(Platform::Baidu, &link, 2000),
            Err(SendError::Invalid {
                field: "msg_type",
                ..
            })
        ));
        let http_image = OutboundMessage::Image(ImageSource::Url("http://e/a.png".into()));
        assert!(compose(Platform::Baidu, &http_image, 2000).is_err());
        assert_eq!(
            compose(Platform::Wechat, &http_image, 2000).unwrap(),
            Composed::Upload(Upload::Url("http://e/a.png"))
        );
    }
}

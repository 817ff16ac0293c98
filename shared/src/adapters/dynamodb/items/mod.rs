//! DynamoDB item schema of the conversations, messages and tokens tables: every attribute name
//! (once, here), the value constants, and — in the submodules, by item kind — the mapping between
//! items and the ports' structs: `message` (messages table), `conversation` (conversations table),
//! `tokens_table` (access tokens, media ids, idempotency records), `reader` (typed reading).
//!
//! Not here: expressions (`expressions.rs`) or SDK calls (the per-port adapters). Mapping never
//! guesses: an attribute of the wrong type is [`StoreError`](crate::ports::StoreError)`::Corrupt`
//! naming the attribute.
//!
//! **messages** (`pk` S hash, `sk` S range), one item per message, inbound or outbound:
//!
//! | attribute | type | value |
//! | --- | --- | --- |
//! | `pk` | S | the conversation, `platform#app_id#open_id` ([`ConversationKey::partition_key`](crate::ids::ConversationKey::partition_key)) |
//! | `sk` | S | the dedupe sort key: `CreateTime` zero-padded, then `#m#MsgId` / `#e#Event` / `#t#MsgType` |
//! | `direction` | S | `in` (written here) or `out` (written by the sender) |
//! | `msg_type` | S | the platform's `MsgType` ([`InboundMessage::msg_type`](crate::message::InboundMessage::msg_type)) |
//! | `create_time` | N | `CreateTime`, Unix seconds |
//! | `received_at_ms` | N | when ingress accepted the push, Unix milliseconds (inbound only) |
//! | `mode` | S | how the push was protected: `plaintext`, `compatible`, `safe` (inbound only) |
//! | `msg_id` | S | the platform `MsgId`, exact (only when present) |
//! | `content` | S | text messages only, exact (may be the empty string) |
//! | `media` | S | image: `PicUrl`, else `MediaId`; mini program card: `ThumbMediaId`, else `PagePath` ([`content_and_media`](crate::message::content_and_media), shared with the in-memory fake) |
//! | `raw` | S | serde_json of the whole [`InboundMessage`](crate::message::InboundMessage), exact (inbound only; left out for texts over [`RAW_TEXT_LIMIT`](crate::message::RAW_TEXT_LIMIT), whose `content` is exact) |
//! | `status` | S | outbound only: [`OutboundStatus`](crate::records::OutboundStatus) — `sent`, `partial`, `failed`, `unknown` |
//! | `parts`, `parts_sent` | N | outbound only: platform parts of the send, and how many reached the platform |
//! | `errcode` | N | outbound only: the platform error code of a failed send |
//! | `truncated` | N | only when a text field was cut to fit the queue: its original UTF-8 byte length |
//! | `ttl` | N | only with a message retention (`MESSAGE_RETENTION_DAYS`): `CreateTime` + retention, for DynamoDB's TTL |
//!
//! Plaintext-mode pushes also leave a replay item in the messages table ([`replay_item`]): `pk`
//! `replay#platform#app_id`, `sk` timestamp + nonce digest, `digest` S, `ttl` N.
//!
//! **conversations** (`pk` S hash), one item per conversation:
//!
//! | attribute | type | value |
//! | --- | --- | --- |
//! | `pk` | S | as in messages |
//! | `platform`, `app_id`, `open_id` | S | the parts of `pk` |
//! | `remaining` | N | send units left in the window (0 when never granted) |
//! | `expires_at` | N | Unix seconds after which nothing may be sent (0 when never granted) |
//! | `grant_at` | N | action time of the grant that last set the window ([`Ledger`](crate::quota::Ledger)) |
//! | `grant_gen` | N | grants applied so far; releases and platform refusals are conditioned on it (0 when absent) |
//! | `spent` | N | units reserved since a grant last restarted the count ([`Ledger`](crate::quota::Ledger); 0 when absent; only grows in between) |
//! | `spent_at` | N | until when the latest reserved units may reach the platform (reservation + [`SEND_HORIZON_SECS`](crate::quota::SEND_HORIZON_SECS)) |
//! | `last_in_at` | N | action time ([`action_time`](crate::quota::action_time)) of the newest inbound message |
//! | `last_in_preview` | S | its preview, at most [`PREVIEW_CHARS`] characters |
//! | `last_in_type` | S | its `MsgType` |
//! | `status` | S | desk state: `waiting` (a new conversation, and on the next message after `closed`), `active`, `closed`; `open` before the desk existed, read as `waiting` |
//! | `list`, `list_at` | S, N | the desk list it is in and since when (ms): `platform#app_id#waiting`, `agent#<id>`, `platform#app_id#closed` — the `by_list` index |
//! | `assignee`, `assigned_at` | S, N | the agent holding it and since when (while active) |
//! | `active_at` | N | last message in or out, or assignment (the 30-minute idle rule) |
//! | `tags` | SS | the agents' tags |
//! | `created_at`, `updated_at` | N | Unix seconds, wall clock of the writer |
//! | `last_out_at` | N | time of the last outbound send that may have reached the user (written by the sender) |
//! | `last_reply_at` | N | the same for replies only (an agent's or the API's; not auto replies): the desk's statistics |
//! | `unread` | N | inbound messages not yet read by an agent (+1 per new inbound) |
//! | `inbound_count` | N | inbound messages stored (+1 per new inbound) |
//! | `auto_greeting_until`, `auto_away_until` | N | end of the window each auto reply was last sent in (`desk::auto_reply`) |
//!
//! Desk events (accepted, released, closed) are messages-table items of the conversation with
//! `direction` `desk`, `msg_type` the event, `agent` the agent, `sk` `<secs %010d>#~d#<ms>-<agent>`
//! (`~` sorts after every other kind, so an event follows the messages of its second).
//!
//! **desk** (`pk` S hash, `sk` S range): `agent#<id>` / `profile` — `name`, `apps` (M: app →
//! role), `capacity`, `active`, `auto_accept`, `agent_status`, `heartbeat_at`; `app#platform#app_id`
//! / `agent#<id>` — the membership, `role`; `quick#platform#app_id` / `<id>` — a quick reply,
//! `shortcut`, `content`; `settings#platform#app_id` / `auto_replies` — `greeting_on`,
//! `greeting_text`, `away_on`, `away_text`; `tag#platform#app_id#<tag>` / `<open_id>` — a
//! conversation in a tag's list; `stats#platform#app_id` / `<day>#app`, `<day>#agent#<id>` — the
//! daily counters (`desk::stats`).
//!
//! **tokens** (`pk` S hash, TTL attribute `ttl`), three kinds of items told apart by the key prefix:
//!
//! | `pk` | attributes |
//! | --- | --- |
//! | `token#platform#app_id` | `token` S, `expires_at` N, `ttl` N (a day after `expires_at`); the refresh lease `lease_owner` S, `lease_until` N |
//! | `media#platform#app_id#sha1` | `media` S (the uploaded media id), `expires_at` N (reused until then), `ttl` N (= `expires_at`) |
//! | `idem#platform#app_id#client_msg_id` | `state` S (`pending` → `sending` → `done`), `fingerprint` S, `lease_until` N, `response` S, `ttl` N |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

mod conversation;
mod message;
mod reader;
mod tokens_table;

pub use conversation::{ConversationState, conversation_from_item};
pub use message::{
    inbound_message_item, outbound_message_item, replay_item, stored_message_from_item,
};
pub use reader::ItemReader;
pub use tokens_table::{
    TOKEN_TTL_GRACE_SECS, cached_token_from_item, claim_item, idem_pk, media_id_from_item,
    media_item, media_pk, token_pk,
};

/// One DynamoDB item: attribute name → value.
pub type Item = HashMap<String, AttributeValue>;

/// Partition key of every table (S): the conversation's `platform#app_id#open_id`, or a prefixed
/// key (`replay#…` in messages; `token#…`, `media#…`, `idem#…` in tokens).
pub const PK: &str = "pk";
/// Sort key of the messages table (S): the message's dedupe sort key.
pub const SK: &str = "sk";

/// messages (only with a retention), tokens: Unix seconds after which DynamoDB's TTL may delete the
/// item (N).
pub const TTL: &str = "ttl";
/// messages: `in` or `out` (S).
pub const DIRECTION: &str = "direction";
/// messages: the platform's `MsgType` (S).
pub const MSG_TYPE: &str = "msg_type";
/// messages: `CreateTime`, Unix seconds (N).
pub const CREATE_TIME: &str = "create_time";
/// messages: when ingress accepted the push, Unix milliseconds (N).
pub const RECEIVED_AT_MS: &str = "received_at_ms";
/// messages: how the push was protected (S).
pub const MODE: &str = "mode";
/// messages: the platform `MsgId`, exact (S).
pub const MSG_ID: &str = "msg_id";
/// messages: text content, exact (S, may be empty).
pub const CONTENT: &str = "content";
/// messages: media reference, picture URL or media id (S); tokens (media items): the cached media
/// id (S).
pub const MEDIA: &str = "media";
/// messages: serde_json of the whole inbound message (S).
pub const RAW: &str = "raw";
/// messages: original byte length of a text field cut to fit the queue (N; only when cut).
pub const TRUNCATED: &str = "truncated";
/// messages (replay items): SHA-256 of a plaintext push's body (S).
pub const DIGEST: &str = "digest";
/// messages: outbound send status (S); conversations: workspace status (S).
pub const STATUS: &str = "status";
/// messages: platform error code of a failed send (N).
pub const ERRCODE: &str = "errcode";
/// messages: platform parts an outbound send became (N).
pub const PARTS: &str = "parts";
/// messages: outbound parts that reached the platform (N).
pub const PARTS_SENT: &str = "parts_sent";

/// conversations: the platform (S).
pub const PLATFORM: &str = "platform";
/// conversations: the mini program's AppID (S).
pub const APP_ID: &str = "app_id";
/// conversations: the user's open id (S).
pub const OPEN_ID: &str = "open_id";
/// conversations: send units left in the window (N).
pub const REMAINING: &str = "remaining";
/// conversations: end of the send window; tokens: until when the token or media id is used; Unix
/// seconds (N).
pub const EXPIRES_AT: &str = "expires_at";
/// conversations: action time of the grant that last set the window (N).
pub const GRANT_AT: &str = "grant_at";
/// conversations: units reserved since the count restarted (N).
pub const SPENT: &str = "spent";
/// conversations: when units were last reserved (N).
pub const SPENT_AT: &str = "spent_at";
/// conversations: grants applied so far (N; absent = 0).
pub const GENERATION: &str = "grant_gen";
/// conversations: `CreateTime` of the newest inbound message (N).
pub const LAST_IN_AT: &str = "last_in_at";
/// conversations: preview of the newest inbound message (S).
pub const LAST_IN_PREVIEW: &str = "last_in_preview";
/// conversations: `MsgType` of the newest inbound message (S).
pub const LAST_IN_TYPE: &str = "last_in_type";
/// conversations: the assigned agent's id (S), while active.
pub const ASSIGNEE: &str = "assignee";
/// conversations: the desk list it is in (S, the list index's partition key,
/// [`DeskList`](crate::desk::DeskList)).
pub const LIST: &str = "list";
/// conversations: when it entered that list, Unix milliseconds (N, the list index's sort key).
pub const LIST_AT: &str = "list_at";
/// conversations: the last message in or out, or assignment, Unix seconds (N; the idle rule).
pub const ACTIVE_AT: &str = "active_at";
/// conversations: when the assignee accepted it, Unix seconds (N).
pub const ASSIGNED_AT: &str = "assigned_at";
/// conversations: the agents' tags (SS).
pub const TAGS: &str = "tags";
/// The conversations table's list index.
pub const BY_LIST_INDEX: &str = "by_list";

/// desk: sort key (S).
pub const DESK_SK: &str = "sk";
/// desk (agent): the name shown (S).
pub const NAME: &str = "name";
/// desk (agent): app (`platform#app_id`) → role (M of S).
pub const APPS: &str = "apps";
/// desk (agent): most conversations held at once (N).
pub const CAPACITY: &str = "capacity";
/// desk (agent): conversations held now (N).
pub const ACTIVE: &str = "active";
/// desk (agent): auto-accept on (BOOL).
pub const AUTO_ACCEPT: &str = "auto_accept";
/// desk (agent): the chosen status (S).
pub const AGENT_STATUS: &str = "agent_status";
/// desk (agent): last heartbeat, Unix seconds (N).
pub const HEARTBEAT_AT: &str = "heartbeat_at";
/// desk (membership) and messages (desk event): the agent's id (S).
pub const AGENT: &str = "agent";
/// desk (membership): the role in the app (S).
pub const ROLE: &str = "role";
/// desk (quick reply): the shortcut (S); its text is [`CONTENT`].
pub const SHORTCUT: &str = "shortcut";
/// desk (auto replies): the greeting is on (BOOL).
pub const GREETING_ON: &str = "greeting_on";
/// desk (auto replies): the greeting's text (S).
pub const GREETING_TEXT: &str = "greeting_text";
/// desk (auto replies): the away message is on (BOOL).
pub const AWAY_ON: &str = "away_on";
/// desk (auto replies): the away message's text (S).
pub const AWAY_TEXT: &str = "away_text";
/// conversations: creation time, Unix seconds (N).
pub const CREATED_AT: &str = "created_at";
/// conversations: last write, Unix seconds (N).
pub const UPDATED_AT: &str = "updated_at";
/// conversations: inbound messages not yet read (N).
pub const UNREAD: &str = "unread";
/// conversations: inbound messages stored (N).
pub const INBOUND_COUNT: &str = "inbound_count";
/// conversations: time of the last outbound send that may have reached the user (N).
pub const LAST_OUT_AT: &str = "last_out_at";
/// conversations: time of the last reply — an agent's or the API's, not an auto reply (N).
pub const LAST_REPLY_AT: &str = "last_reply_at";
/// messages (inbound image): the media bucket's key of the kept copy (S).
pub const STORED_MEDIA: &str = "stored_media";
/// conversations: end of the window the greeting was last sent in (N).
pub const AUTO_GREETING_UNTIL: &str = "auto_greeting_until";
/// conversations: end of the window the away message was last sent in (N).
pub const AUTO_AWAY_UNTIL: &str = "auto_away_until";

/// tokens: the access token (S).
pub const TOKEN: &str = "token";
/// tokens: the instance holding the token's refresh lease (S).
pub const LEASE_OWNER: &str = "lease_owner";
/// tokens: end of a token refresh lease or of an idempotency claim's lease, Unix seconds (N).
pub const LEASE_UNTIL: &str = "lease_until";
/// tokens (idempotency): where the request is, [`STATE_PENDING`] → [`STATE_SENDING`] → [`STATE_DONE`] (S).
pub const STATE: &str = "state";
/// tokens (idempotency): digest of the request the key is bound to (S).
pub const FINGERPRINT: &str = "fingerprint";
/// tokens (idempotency): the stored answer of a completed request (S).
pub const RESPONSE: &str = "response";

/// `direction` of an inbound message.
pub const DIRECTION_IN: &str = "in";
/// `direction` of an outbound message.
pub const DIRECTION_OUT: &str = "out";
/// `status` of a conversation before the desk existed (read as waiting).
pub const STATUS_OPEN: &str = "open";
/// `status` of a waiting conversation (and of a new one).
pub const STATUS_WAITING: &str = "waiting";
/// `status` of an active conversation.
pub const STATUS_ACTIVE: &str = "active";
/// `status` of a closed conversation.
pub const STATUS_CLOSED: &str = "closed";
/// `direction` of a desk event in a conversation's timeline.
pub const DIRECTION_DESK: &str = "desk";
/// desk: sort key of an agent's profile item (its `pk` is `agent#<id>`).
pub const SK_PROFILE: &str = "profile";
/// `state` of a claimed key whose request has not called the platform yet.
pub const STATE_PENDING: &str = "pending";
/// `state` of a claimed key whose request may have reached the platform.
pub const STATE_SENDING: &str = "sending";
/// `state` of a completed request (its `response` is stored).
pub const STATE_DONE: &str = "done";
/// Length of `last_in_preview`, in characters.
pub const PREVIEW_CHARS: usize = 80;

/// An S value.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// An N value.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

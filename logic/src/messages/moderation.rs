//! The before-send hook's place in SEND: after tern's own checks pass and
//! before the message goes to group commit, the app's backend is asked
//! (webhooks/before_send.rs) and its answer applied: allow, reject
//! (REJECTED, nothing stored), replace (the new content, held to the
//! limits a client's is), or, with no usable answer, the fail policy.

use std::time::Instant;

use tern_public::proto::client::ConvType;
use tracing::warn;

use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::metrics::HookOutcomeLabels;
use crate::webhooks::{self, BeforeSend, Decision, HookError, HookRequest, Verdict};
use crate::{Logic, LogicConfig};

use super::{check_content, Draft};

/// The hook to ask about a send of `actor`, if any: the admin API's sends
/// only when configured so.
pub(crate) fn hook_for<'l>(logic: &'l Logic, actor: &Actor) -> Option<&'l BeforeSend> {
    logic
        .before_send
        .as_ref()
        .filter(|h| !actor.is_admin() || h.config().admin)
}

/// Asks `hook` about `draft` and applies its answer to it: `Ok` means
/// store the draft as it now is.
pub(crate) async fn moderate(
    logic: &Logic,
    hook: &BeforeSend,
    actor: &Actor,
    conv_type: ConvType,
    draft: &mut Draft,
) -> Result<()> {
    let request = HookRequest {
        sender_id: actor.user_id(),
        sender_device_id: actor.device_id(),
        conv_type: match conv_type {
            ConvType::Group => "group",
            ConvType::System => "system",
            _ => "user",
        },
        conv_id: draft.to,
        content_type: draft.content_type,
        content: webhooks::before_send_content(&draft.content),
        mentions: &draft.mentions,
        client_msg_id: &draft.client_msg_id,
    };
    let started = Instant::now();
    let answer = hook
        .call(&request, max_answer(&logic.cfg))
        .await
        .and_then(|v| within_limits(&logic.cfg, draft, v));
    let m = &logic.metrics;
    m.before_send_seconds
        .observe(started.elapsed().as_secs_f64());
    let decision = webhooks::decide(hook.config().fail, answer);
    m.before_send
        .get_or_create(&HookOutcomeLabels {
            outcome: decision.outcome(),
        })
        .inc();
    match decision {
        Decision::Allow => Ok(()),
        Decision::Replace {
            content,
            content_type,
        } => {
            draft.content = content;
            draft.content_type = content_type.unwrap_or(draft.content_type);
            Ok(())
        }
        Decision::Reject { code, reason } => Err(LogicError::Rejected { code, reason }),
        Decision::FailOpen(e) => {
            warn!(error = %e, sender = actor.user_id(), "before-send hook failed; stored as sent (fail open)");
            Ok(())
        }
        // Logged once where the error becomes the reply.
        Decision::FailClosed(e) => Err(LogicError::Unavailable(format!("before-send hook: {e}"))),
    }
}

/// The largest answer read: a replacement of the largest content a client
/// may send, in base64, and room for the JSON around it.
fn max_answer(cfg: &LogicConfig) -> usize {
    cfg.max_content_len.div_ceil(3) * 4 + 4096
}

/// A replacement is held to the limits of a client's content; one that
/// breaks them is no usable answer.
fn within_limits(cfg: &LogicConfig, draft: &Draft, v: Verdict) -> Result<Verdict, HookError> {
    if let Verdict::Replace {
        content,
        content_type,
    } = &v
    {
        let replaced = Draft {
            content: content.clone(),
            content_type: content_type.unwrap_or(draft.content_type),
            ..draft.clone()
        };
        check_content(cfg, &replaced).map_err(|e| HookError::Replacement(e.to_string()))?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn draft() -> Draft {
        Draft {
            conv_type: ConvType::User as i32,
            to: 2,
            content_type: 1,
            content: Bytes::from_static(b"hi"),
            mentions: vec![],
            client_msg_id: "c".into(),
        }
    }

    fn replace(content: &[u8], content_type: Option<u32>) -> Verdict {
        Verdict::Replace {
            content: Bytes::copy_from_slice(content),
            content_type,
        }
    }

    #[test]
    fn a_replacement_is_held_to_the_client_limits() {
        let cfg = LogicConfig {
            max_content_len: 8,
            ..LogicConfig::default()
        };
        let d = draft();
        for ok in [
            Verdict::Allow,
            replace(b"12345678", None),
            replace(b"", Some(999)),
        ] {
            assert!(within_limits(&cfg, &d, ok.clone()).is_ok(), "{ok:?}");
        }
        for bad in [
            replace(b"123456789", None),
            replace(b"x", Some(0)),
            replace(b"x", Some(1000)),
            replace(b"x", Some(1201)),
        ] {
            assert!(
                matches!(
                    within_limits(&cfg, &d, bad.clone()),
                    Err(HookError::Replacement(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_answer_bound_fits_the_largest_replacement() {
        let cfg = LogicConfig::default();
        let largest = webhooks::before_send_content(&vec![0xff; cfg.max_content_len]);
        let answer = format!(r#"{{"action":"replace","content":"{largest}","content_type":999}}"#);
        assert!(answer.len() <= max_answer(&cfg));
    }
}

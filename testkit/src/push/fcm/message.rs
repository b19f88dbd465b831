//! What FCM checks of a v1 `Message`, for the fields tern sends: unknown
//! fields, the recipient, string data, the Android TTL and count, the
//! APNs headers.

use serde_json::Value;

/// The fields a v1 `Message` has; any other is an error, as in FCM.
const MESSAGE_FIELDS: &[&str] = &[
    "name",
    "data",
    "notification",
    "android",
    "webpush",
    "apns",
    "fcm_options",
    "token",
    "topic",
    "condition",
];
const ANDROID_FIELDS: &[&str] = &[
    "collapse_key",
    "priority",
    "ttl",
    "restricted_package_name",
    "data",
    "notification",
    "fcm_options",
    "direct_boot_ok",
];

/// Checks a `message` as FCM does, for the fields tern sends; the error is
/// FCM's message.
pub(super) fn check_message(m: &Value) -> Result<(), String> {
    let Some(fields) = m.as_object() else {
        return Err("Invalid JSON payload received. 'message' is not an object.".into());
    };
    let unknown = |at: &str, name: &str| {
        format!(
            "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
        )
    };
    if let Some(name) = fields
        .keys()
        .find(|k| !MESSAGE_FIELDS.contains(&k.as_str()))
    {
        return Err(unknown("message", name));
    }
    if m["token"].as_str().is_none_or(str::is_empty) {
        return Err("Recipient of the message is not set.".into());
    }
    if let Some(data) = m.get("data") {
        let strings = data
            .as_object()
            .is_some_and(|d| d.values().all(Value::is_string));
        if !strings {
            return Err("Invalid value at 'message.data': every value must be a string.".into());
        }
    }
    if let Some(n) = m.get("notification") {
        let ok = ["title", "body"]
            .iter()
            .all(|f| n.get(*f).is_none_or(Value::is_string));
        if !n.is_object() || !ok {
            return Err("Invalid value at 'message.notification'.".into());
        }
    }
    if let Some(android) = m.get("android") {
        let Some(fields) = android.as_object() else {
            return Err("Invalid value at 'message.android'.".into());
        };
        if let Some(name) = fields
            .keys()
            .find(|k| !ANDROID_FIELDS.contains(&k.as_str()))
        {
            return Err(unknown("message.android", name));
        }
        if let Some(ttl) = android.get("ttl") {
            if !ttl.as_str().is_some_and(is_duration) {
                return Err("Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration).".into());
            }
        }
        let count = &android["notification"]["notification_count"];
        if !count.is_null() && !count.is_i64() {
            return Err(
                "Invalid value at 'message.android.notification.notification_count' (TYPE_INT32)."
                    .into(),
            );
        }
    }
    if let Some(headers) = m.get("apns").and_then(|a| a.get("headers")) {
        let strings = headers
            .as_object()
            .is_some_and(|h| h.values().all(Value::is_string));
        if !strings {
            return Err("Invalid value at 'message.apns.headers'.".into());
        }
    }
    Ok(())
}

/// A protobuf `Duration` in JSON: seconds with up to 9 decimals and `s`.
fn is_duration(s: &str) -> bool {
    let Some(secs) = s.strip_suffix('s') else {
        return false;
    };
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty() && digits(whole) && frac.len() <= 9 && digits(frac)
}

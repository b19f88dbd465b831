//! `Retry-After` on an answer to one of the node's outbound calls (push
//! providers, the after-send webhook).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The longest wait a receiver's `Retry-After` may ask for: a notification
/// expires long before (`--push-max-age-secs`), and a larger value would
/// overflow the time the call is tried again at.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `Retry-After` as a wait, in either of its forms (RFC 9110, 10.2.3):
/// whole seconds, as APNs, FCM and most backends send it, or an HTTP date,
/// which a date already past makes no wait. At most [`MAX_RETRY_AFTER`];
/// None when absent or unreadable (the caller's backoff applies).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_from(headers, SystemTime::now())
}

fn retry_after_from(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        // Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let read = |value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_static(value));
            retry_after_from(&h, now)
        };
        assert_eq!(retry_after_from(&HeaderMap::new(), now), None);
        assert_eq!(read("7"), Some(Duration::from_secs(7)));
        assert_eq!(read(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            read("Sun, 06 Nov 1994 08:51:07 GMT"),
            Some(Duration::from_secs(90))
        );
        // The obsolete forms a recipient must also accept.
        assert_eq!(
            read("Sunday, 06-Nov-94 08:50:37 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            read("Sun Nov  6 08:49:47 1994"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(read("Sat, 05 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(read("18446744073709551615"), Some(MAX_RETRY_AFTER));
        assert_eq!(read("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_RETRY_AFTER));
        for bad in ["soon", "-5", "1.5", "Sun, 06 Nov 1994 25:00:00 GMT"] {
            assert_eq!(read(bad), None, "{bad}");
        }
    }
}

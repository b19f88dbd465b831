//! The TLV decoder on arbitrary bytes, fed in arbitrary chunks: it never
//! panics, never yields a frame over its limit, and what it yields
//! re-encodes to the bytes it consumed.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

use tern_public::{Frame, FrameCodec};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let mut codec = FrameCodec::new(MAX);
    let mut buf = BytesMut::new();
    // Feed in chunks of up to `split` bytes, as a socket would.
    for chunk in data.chunks(usize::from(split).max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => check(frame),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});

fn check(frame: Frame) {
    assert!(
        frame.value.len() <= MAX,
        "a frame over the limit was decoded"
    );
    let mut out = BytesMut::new();
    FrameCodec::new(MAX)
        .encode(frame.clone(), &mut out)
        .expect("a decoded frame encodes");
    let again = FrameCodec::new(MAX)
        .decode(&mut out)
        .expect("re-decodes")
        .expect("a whole frame");
    assert_eq!((again.ty, &again.value), (frame.ty, &frame.value));
}

use super::*;
use proptest::prelude::*;

fn encode_all(frames: &[Frame]) -> BytesMut {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    for f in frames {
        codec.encode(f.clone(), &mut buf).unwrap();
    }
    buf
}

/// Feeds `wire` to a decoder in the given chunk sizes, like reads from a socket.
fn decode_in_chunks(wire: &[u8], cuts: &[usize]) -> Result<Vec<Frame>, FrameError> {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut cuts = cuts.iter().copied();
    while pos < wire.len() {
        let n = cuts.next().unwrap_or(wire.len()).clamp(1, wire.len() - pos);
        buf.extend_from_slice(&wire[pos..pos + n]);
        pos += n;
        while let Some(f) = codec.decode(&mut buf)? {
            out.push(f);
        }
    }
    assert!(buf.is_empty(), "bytes left over: {buf:?}");
    Ok(out)
}

#[test]
fn round_trip_one_frame() {
    let f = Frame::new(7, &b"hello"[..]);
    let wire = encode_all(std::slice::from_ref(&f));
    assert_eq!(&wire[..], &[0, 7, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
    assert_eq!(f.to_bytes(), wire.freeze());
}

#[test]
fn zero_length_value_is_a_frame() {
    let wire = [0u8, 4, 0, 0, 0, 0];
    let frames = decode_in_chunks(&wire, &[]).unwrap();
    assert_eq!(frames, vec![Frame::new(4, Bytes::new())]);
}

#[test]
fn split_byte_by_byte() {
    let frames = vec![Frame::new(1, vec![9u8; 300]), Frame::new(4, Bytes::new())];
    let wire = encode_all(&frames);
    let got = decode_in_chunks(&wire, &vec![1; wire.len()]).unwrap();
    assert_eq!(got, frames);
}

#[test]
fn several_frames_in_one_read() {
    let frames: Vec<Frame> = (0..10)
        .map(|i| Frame::new(i, vec![i as u8; i as usize]))
        .collect();
    let wire = encode_all(&frames);
    let mut codec = FrameCodec::default();
    let mut buf = wire.clone();
    let mut got = Vec::new();
    while let Some(f) = codec.decode(&mut buf).unwrap() {
        got.push(f);
    }
    assert_eq!(got, frames);
}

#[test]
fn oversized_length_is_rejected_from_the_header_alone() {
    let mut codec = FrameCodec::new(1024);
    // Only the header has arrived: the decoder must not wait for (or buffer) 1 GiB.
    let mut buf = BytesMut::from(&[0u8, 7, 0x40, 0, 0, 0][..]);
    match codec.decode(&mut buf) {
        Err(FrameError::TooLarge { len, max }) => {
            assert_eq!(len, 0x4000_0000);
            assert_eq!(max, 1024);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The limit is inclusive.
    let mut ok = BytesMut::new();
    codec
        .encode(Frame::new(1, vec![0u8; 1024]), &mut ok)
        .unwrap();
    assert_eq!(codec.decode(&mut ok).unwrap().unwrap().value.len(), 1024);
}

#[test]
fn encoder_refuses_oversized_values() {
    let mut codec = FrameCodec::new(4);
    let mut buf = BytesMut::new();
    let err = codec
        .encode(Frame::new(1, vec![0u8; 5]), &mut buf)
        .unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { len: 5, max: 4 }));
    assert!(buf.is_empty());
}

#[test]
fn incomplete_frame_reserves_only_what_it_needs() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(&[0u8, 1, 0, 0, 0, 100, 1, 2][..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() >= 106);
    assert!(buf.capacity() < 4096, "capacity {}", buf.capacity());
    assert_eq!(buf.len(), 8, "a partial frame is kept, not consumed");
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    (any::<u16>(), prop::collection::vec(any::<u8>(), 0..600))
        .prop_map(|(ty, value)| Frame::new(ty, value))
}

proptest! {
    /// Any sequence of frames, cut at any byte boundaries, decodes to the same frames.
    #[test]
    fn frames_cut_anywhere_decode_the_same(
        frames in prop::collection::vec(arb_frame(), 0..20),
        cuts in prop::collection::vec(1usize..64, 0..200),
    ) {
        let wire = encode_all(&frames);
        let got = decode_in_chunks(&wire, &cuts).unwrap();
        prop_assert_eq!(got, frames);
    }

    /// Garbage never panics and never makes the decoder buffer beyond the limit:
    /// it yields frames, waits for more, or fails with TooLarge.
    #[test]
    fn garbage_never_panics(garbage in prop::collection::vec(any::<u8>(), 0..4096), max in 0usize..2048) {
        let mut codec = FrameCodec::new(max);
        let mut buf = BytesMut::from(&garbage[..]);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => prop_assert!(f.value.len() <= max),
                Ok(None) => {
                    prop_assert!(buf.len() < HEADER_LEN + max);
                    break;
                }
                Err(FrameError::TooLarge { len, .. }) => {
                    prop_assert!(len > max);
                    break;
                }
                Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
            }
        }
    }
}

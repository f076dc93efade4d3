// SPDX-License-Identifier: MPL-2.0

//! Every test vector of spec §3.6, plus the normalisation examples of §3.1–§3.3.

use super::*;

const IV: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const IV_HEX: &str = "000102030405060708090a0b0c0d0e0f";

#[test]
fn default_key() {
    let c = Crypto::new(None, DEFAULT_SALT);
    let key = Sha256::digest(b"someEncryptionKey123vdo.ninja");
    assert_eq!(
        hex::encode(key),
        "808d646f7eb92052344e1e668e340c852f8d675754acfae11d8cc49233c36eba"
    );
    assert_eq!(c.stream_suffix(), Some("808d64"));
}

#[test]
fn password_normalisation() {
    assert_eq!(encode_uri_component("Test@Room#1!"), "Test%40Room%231!");
    assert_eq!(encode_uri_component("$#@!&+="), "%24%23%40!%26%2B%3D");
    assert_eq!(encode_uri_component("GamerTime420$"), "GamerTime420%24");
    assert_eq!(encode_uri_component("a b"), "a%20b");
    assert_eq!(encode_uri_component("-_.!~*'()"), "-_.!~*'()");
    assert_eq!(encode_uri_component("é"), "%C3%A9");
    assert_eq!(
        effective_password(Some(" hunter2 ")).as_deref(),
        Some("hunter2")
    );
    assert_eq!(effective_password(None).as_deref(), Some(DEFAULT_PASSWORD));
    assert_eq!(
        effective_password(Some("")).as_deref(),
        Some(DEFAULT_PASSWORD)
    );
    for off in ["false", "0", "off", "OFF", " No ", "False"] {
        assert_eq!(effective_password(Some(off)), None, "{off}");
    }
}

#[test]
fn stream_id_vectors() {
    let rows: &[(&str, Option<&str>, &str, &str)] = &[
        ("mystream", None, "vdo.ninja", "mystream808d64"),
        ("HLBKRuy", None, "vdo.ninja", "HLBKRuy808d64"),
        ("cam1", None, "vdo.ninja", "cam1808d64"),
        ("cam1", Some("hunter2"), "vdo.ninja", "cam11c2bdc"),
        ("cam1", Some("hunter2"), "example.com", "cam19b4cda"),
        (
            "mystream",
            Some("password123"),
            "vdo.ninja",
            "mystream9fceea",
        ),
        (
            "mystream",
            Some("Test@Room#1!"),
            "vdo.ninja",
            "mystream932512",
        ),
        (
            "mystream",
            Some("GamerTime420$"),
            "vdo.ninja",
            "mystreamaa7509",
        ),
        ("mystream", Some("$#@!&+="), "vdo.ninja", "mystream313ca5"),
    ];
    for (raw, pw, salt, wire) in rows {
        let c = Crypto::new(*pw, salt);
        assert_eq!(
            c.wire_stream_id(raw).as_deref(),
            Some(*wire),
            "{raw} {pw:?} {salt}"
        );
        assert_eq!(c.plain_stream_id(wire), *raw);
    }
    let long = "a".repeat(50);
    let c = Crypto::new(None, DEFAULT_SALT);
    assert_eq!(
        c.wire_stream_id(&long).unwrap(),
        format!("{}808d64", "a".repeat(44))
    );
    let off = Crypto::new(Some("false"), DEFAULT_SALT);
    assert_eq!(off.wire_stream_id("cam1").as_deref(), Some("cam1"));
    assert_eq!(off.plain_stream_id("cam1"), "cam1");
}

#[test]
fn salt_suffixes() {
    for (salt, suffix) in [
        ("example.com", "b59479"),
        ("video.example.com", "0fed4b"),
        ("rtc.ninja", "ce6eb3"),
    ] {
        assert_eq!(Crypto::new(None, salt).stream_suffix(), Some(suffix));
    }
}

#[test]
fn sanitising() {
    assert_eq!(
        sanitize_stream_id("my-stream!").as_deref(),
        Some("my_stream_")
    );
    assert_eq!(sanitize_stream_id("a b.c").as_deref(), Some("a_b_c"));
    assert_eq!(sanitize_stream_id("  ").as_deref(), None);
    assert_eq!(sanitize_stream_id("../../etc/x").as_deref(), Some("_etc_x"));
    assert_eq!(sanitize_room(&"r".repeat(40)).unwrap().len(), 30);
}

#[test]
fn salt_from_host() {
    for (host, salt) in [
        ("vdo.ninja", "vdo.ninja"),
        ("backup.vdo.ninja", "vdo.ninja"),
        ("x.rtc.ninja", "rtc.ninja"),
        ("a.versus.cam", "versus.cam"),
        ("socialstream.ninja", "socialstream.ninja"),
        ("steveseguin.github.io", "vdo.ninja"),
        ("localhost", "vdo.ninja"),
        ("192.168.1.4", "vdo.ninja"),
        ("[::1]", "vdo.ninja"),
        ("video.example.com", "video.example.com"),
        ("Video.Example.com.", "video.example.com"),
    ] {
        assert_eq!(salt_for_host(host), salt, "{host}");
    }
}

#[test]
fn room_vectors() {
    let rows: &[(&str, Option<&str>, &str)] = &[
        ("myroom", None, "2f1a0139acdd5bdc"),
        ("TestRoom", None, "8ae4b9484d3e75f6"),
        ("myroom", Some("hunter2"), "449451cf53baed1c"),
        ("myroom", Some("password123"), "87320ebb3d4c5483"),
        ("myroom", Some("Test@Room#1!"), "97dd633996a146ff"),
        ("myroom", Some("$#@!&+="), "9d9b4f5f2a9a31d8"),
        ("TestRoom", Some("false"), "TestRoom"),
    ];
    for (room, pw, wire) in rows {
        let c = Crypto::new(*pw, DEFAULT_SALT);
        assert_eq!(
            c.wire_room_id(room).as_deref(),
            Some(*wire),
            "{room} {pw:?}"
        );
    }
}

fn check_vector(phrase_pw: &str, salt: &str, plaintext: &str, ct: &str) {
    let c = Crypto::from_effective(phrase_pw, salt);
    let (got, iv) = c.encrypt_with_iv(plaintext, &IV).unwrap();
    assert_eq!(got, ct, "encrypt {plaintext:?}");
    assert_eq!(iv, IV_HEX);
    assert_eq!(c.decrypt(ct, IV_HEX).unwrap(), plaintext);
}

#[test]
fn encryption_vectors() {
    let d = DEFAULT_PASSWORD;
    check_vector(
        d,
        "vdo.ninja",
        r#"{"type":"offer","sdp":"v=0\r\n"}"#,
        "e6e3b01add0693c318f82913da88759f4ce2aff7724171e27f88329a14ba43f34af6dff434f68f88b0681754a7a1f64b",
    );
    check_vector(
        d,
        "vdo.ninja",
        r#"{"type": "offer", "sdp": "v=0\r\n"}"#,
        "b0e57b6a408a777a44ed9b22b90484567a23da649d14356623555c52080ba376565495c7bf4ddaa44c8ee467462e0841",
    );
    check_vector(
        "hunter2",
        "vdo.ninja",
        r#"[{"candidate":"candidate:1 1 UDP 2122252543 192.168.1.10 50000 typ host","sdpMLineIndex":0,"sdpMid":"0"}]"#,
        "f5836e1dc4494600b76c5feb8600a0dcbd47f9a48c3021cbf2811d93527659a986583a155ee1b8c7aa7579dc29e1c2e48b1cbcb0cccf675576a202c85a3f8c9e0d504ee792bf979b92dab043f17a88b6ec2f77ebc43ffbf1f19290343a5c90e609d31096161da1a8e4bc9e15a82a3df8",
    );
    check_vector(
        "hunter2",
        "vdo.ninja",
        r#"[{"candidate": "candidate:1 1 UDP 2122252543 192.168.1.10 50000 typ host", "sdpMLineIndex": 0}]"#,
        "73789e64cae8a5af65ac64030c059316cc34d2b4fa1506be588e605f1af371f3ea8c351841bed959623f080b5b16bed10de8a355cea4c494b73d722fa5403f4553b1d8d6d04f53ebead7bc28e8c845ecbfbc1912c175e5c71ac67f23368e3621",
    );
    check_vector(d, "vdo.ninja", "", "4a6082ee139ba24573a2e274aa048bc9");
    check_vector(
        d,
        "vdo.ninja",
        "0123456789abcdef",
        "483ce9328473f5f0481ef11a263ee23d3b522a350d0a7a870d131fab658c0838",
    );
}

#[test]
fn random_iv_round_trip() {
    let c = Crypto::new(Some("Test@Room#1!"), DEFAULT_SALT);
    let (ct1, iv1) = c.encrypt("hello").unwrap();
    let (ct2, iv2) = c.encrypt("hello").unwrap();
    assert_ne!(iv1, iv2);
    assert_ne!(ct1, ct2);
    assert_eq!(c.decrypt(&ct1, &iv1).unwrap(), "hello");
    assert_eq!(c.decrypt(&ct2, &iv2).unwrap(), "hello");
}

#[test]
fn decrypt_errors() {
    let c = Crypto::new(None, DEFAULT_SALT);
    let other = Crypto::new(Some("hunter2"), DEFAULT_SALT);
    let (ct, iv) = c.encrypt(r#"{"type":"offer","sdp":"v=0"}"#).unwrap();
    assert!(other.decrypt(&ct, &iv).is_err());
    assert_eq!(c.decrypt(&ct, "00"), Err(DecryptError::BadVector));
    assert_eq!(c.decrypt(&ct, "zz"), Err(DecryptError::BadVector));
    assert_eq!(c.decrypt("xyz", &iv), Err(DecryptError::NotHex));
    assert_eq!(c.decrypt("00ff", &iv), Err(DecryptError::BadLength));
    assert_eq!(c.decrypt("", &iv), Err(DecryptError::BadLength));
    assert_eq!(
        Crypto::disabled().decrypt(&ct, &iv),
        Err(DecryptError::BadPadding)
    );
    assert!(Crypto::disabled().encrypt("x").is_none());
}

#[test]
fn ascii_json() {
    let v = serde_json::json!({"label": "café 🎥", "n": 1});
    let s = to_ascii_json(&v);
    assert!(s.is_ascii());
    assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
    assert!(s.contains(r"\u00e9"));
    assert!(s.contains(r"\ud83c\udfa5"));
}

#[test]
fn debug_hides_password() {
    let c = Crypto::new(Some("hunter2"), DEFAULT_SALT);
    assert!(!format!("{c:?}").contains("hunter2"));
}

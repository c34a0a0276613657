//! Recorded vectors: a whole `ipmitool -I lanplus -C 3 ... mc info`
//! conversation with OpenIPMI's `ipmi_sim` (user `admin`, password
//! `password`, BMC GUID a123456789abcdefa123456789abcdef), captured by a
//! UDP relay between them. This library must compute the same RAKP codes,
//! keys and integrity codes as both real implementations did, and decrypt
//! every packet of the session. Cipher suite 17, which no peer here speaks,
//! has vectors derived by an independent implementation.

use crate::crypto::{CipherSuite, SessionKeys};
use crate::packet::{self, PayloadType};
use crate::rakp::{Credentials, Handshake, OpenSession, Privilege};

/// `>` console to BMC, `<` BMC to console, hex.
const CAPTURE: &str = "
> 0600ff07000000000000000000092018c88100388e04b5
< 0600ff0700000000000000000010811c6320003800019704030000000009
> 0600ff0706100000000000000000200000000000a4a3a2a0000000080100000001000008010000000200000801000000
< 0600ff0706110000000000000000240000000000a4a3a2a002040000000000080100000001000008010000000200000801000000
> 0600ff070612000000000000000021000000000002040000e26dd2284699cc2f1d6b016c14c964b81400000561646d696e
< 0600ff07061300000000000000003c0000000000a4a3a2a04d58718950c174f5adc55306e973f0d2a123456789abcdefa123456789abcdef36c76ddcd02dfe1aeb0284d54b4d49042e263640
> 0600ff07061400000000000000001c0000000000020400005b5eb1270cac389e2417635c45ad66e5cd38c03a
< 0600ff0706150000000000000000140000000000a4a3a2a0075d92ff3a531b1992f780ec
> 0600ff0706c0020400000300000020004d4b5e4da32e16783076a9319115f4fd33a9dcbe334b0f27f8a0f0f2d906ae0effff0207449c29fb61cb808f5e9bb3e2
< 0600ff0706c0a4a3a2a00100000020003bb0edc7e893cecec0386ecb6da5220fb805d951001fc2d3ac8b7c1fda1f5ba5ffff02079fb89368c084d5e06fad2270
> 0600ff0706c002040000040000002000042e1dd75e487ebda7ba9075496005d19fa5e310bcb6d0df69622978c2252232ffff02073a258186422ec83f8901702e
< 0600ff0706c0a4a3a2a0020000002000474ab5d383fd6bc90189725c9aa7858c1bce83cd9866ba30e4b2b664f5cffbfdffff0207e469dc07fd10d4e8c35d989b
> 0600ff0706c0020400000500000020003929f530314169ac9e4cf42d83397e3cadde38bc5acf1fc50efa63616c47a51fffff020707ae1a8d67bc95ffa3793c8a
< 0600ff0706c0a4a3a2a0030000003000d74354497af0d0e2aed900b12304463d03ed63cb209ede2aa2ecf48f4d2334b9110f02f97f3f617e4e2444ba285a91b7ffff02076246a10cd69d716ff88bfb1d
> 0600ff0706c002040000060000002000fe49a966d8cc2d289afc801dfd4d11a1bec27f60f557dd806ead8fdf63a0299effff0207a8de2bc434d474ef482ce430
< 0600ff0706c0a4a3a2a004000000200026d2b557a0c6140f2d2f46498ce7c6b55a5e9a5f4e37442bb958c5c61d71d06effff020725abdc41138b3dac648c03d6
> 0600ff0706c00204000007000000200054f1134468af067e5aa064602e3d5f36b0c1df0fe604720b5aea7c850813df22ffff02077331f078b902df64e2edf90a
< 0600ff0706c0a4a3a2a0050000002000911085949afec6ac4c00eef028a4769bb213157be5592f7782112622f815fd3effff02079cd95729ee91964650a2c9c3
> 0600ff0706c002040000080000002000b6475f0339a24c98dca742b8a0d4cefa948b723d436f833b5669286c778ed4d1ffff0207b495d1febef3d5ca94f1bfd5
< 0600ff0706c0a4a3a2a0060000003000bc380a50c4f92a0f31dcf03510f44f43429bc8864e1d7d1e6676875652565157ab5ad083c429526b4707ce95bfe47c9bffff0207fa3599e125bf2fc8cbcd07b5
> 0600ff0706c002040000090000002000241ecbd048c2eae624c6443409a44927397b74d6e05982f4ce0e3a9cdb9f944bffff020733d2e13f27ef1a71a21d05d2
< 0600ff0706c0a4a3a2a00700000020006b4d767f4a3d4a44b769a8a76e51692e3ef9c442815da98d39a5c53d351045d3ffff02075def8a2a161ca9f38b8ce82c
";

fn capture() -> Vec<(bool, Vec<u8>)> {
    CAPTURE
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (dir, hex) = l.split_at(2);
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (dir.starts_with('>'), bytes)
        })
        .collect()
}

fn credentials() -> Credentials {
    Credentials {
        username: "admin".into(),
        password: "password".into(),
    }
}

/// The console's choices as ipmitool made them (read from its packets).
fn handshake(packets: &[(bool, Vec<u8>)]) -> (Handshake, OpenSession) {
    let open_request = packet::decode(&packets[2].1, None).unwrap().payload;
    let rakp1 = packet::decode(&packets[4].1, None).unwrap().payload;
    let open_response = packet::decode(&packets[3].1, None).unwrap().payload;
    let hs = Handshake {
        suite: CipherSuite::Suite3,
        privilege: Privilege::Administrator,
        console_session_id: u32::from_le_bytes(open_request[4..8].try_into().unwrap()),
        console_random: rakp1[8..24].try_into().unwrap(),
        tag: open_request[0],
    };
    let open = hs
        .open_session_response(&open_response, "ipmi_sim")
        .unwrap();
    (hs, open)
}

#[test]
fn the_first_packet_is_byte_for_byte_ipmitools() {
    let packets = capture();
    let message = packet::encode_request(0x06, 0x38, 0, &[0x8E, 0x04]);
    assert_eq!(packet::encode_v15(&message), packets[0].1);
    let answer = packet::decode_response(&packet::decode_v15(&packets[1].1).unwrap()).unwrap();
    assert_eq!(answer.completion, 0);
    assert_eq!(answer.data[1] & 0x80, 0x80, "extended capabilities");
    assert_eq!(answer.data[3] & 0x02, 0x02, "IPMI 2.0");
}

#[test]
fn rakp_codes_and_keys_match_ipmitool_and_ipmi_sim() {
    let packets = capture();
    let (hs, open) = handshake(&packets);
    assert_eq!(open.bmc_session_id, 0x0000_0402);
    let c = credentials();
    // RAKP 1 as we would send it is what ipmitool sent.
    let rakp1 = packet::encode(PayloadType::Rakp1, 0, 0, &hs.rakp1(&open, &c), None);
    assert_eq!(rakp1, packets[4].1);
    // ipmi_sim's RAKP 2 code verifies against the password...
    let rakp2_payload = packet::decode(&packets[5].1, None).unwrap().payload;
    let rakp2 = hs.rakp2(&rakp2_payload, &open, &c, "ipmi_sim").unwrap();
    // ...and not against another one.
    let wrong = Credentials {
        password: "Password".into(),
        ..c.clone()
    };
    let err = hs
        .rakp2(&rakp2_payload, &open, &wrong, "ipmi_sim")
        .unwrap_err();
    assert_eq!(err.kind, crate::ErrorKind::Auth);
    // RAKP 3 is byte for byte ipmitool's.
    let rakp3 = packet::encode(PayloadType::Rakp3, 0, 0, &hs.rakp3(&open, &rakp2, &c), None);
    assert_eq!(rakp3, packets[6].1);
    // ipmi_sim's RAKP 4 integrity check value verifies.
    let rakp4_payload = packet::decode(&packets[7].1, None).unwrap().payload;
    let keys = hs
        .rakp4(&rakp4_payload, &open, &rakp2, &c, "ipmi_sim")
        .unwrap();
    let mut bad = rakp4_payload.clone();
    bad[10] ^= 1;
    assert!(hs.rakp4(&bad, &open, &rakp2, &c, "ipmi_sim").is_err());

    // Every packet of the session verifies and decrypts with our keys.
    let mut commands = Vec::new();
    for (to_bmc, bytes) in &packets[8..] {
        let p = packet::decode(bytes, Some(&keys)).unwrap();
        assert!(p.encrypted && p.authenticated);
        let expected_id = if *to_bmc {
            open.bmc_session_id
        } else {
            hs.console_session_id
        };
        assert_eq!(p.session_id, expected_id);
        if *to_bmc {
            // Re-encrypting with ipmitool's IV gives ipmitool's packet.
            let iv: [u8; 16] = bytes[16..32].try_into().unwrap();
            let again = packet::encode(
                PayloadType::Ipmi,
                p.session_id,
                p.sequence,
                &p.payload,
                Some((&keys, iv)),
            );
            assert_eq!(&again, bytes);
            commands.push((p.payload[1] >> 2, p.payload[5]));
        } else {
            let r = packet::decode_response(&p.payload).unwrap();
            if r.cmd == 0x01 && r.netfn == 0x07 {
                assert_eq!(r.completion, 0);
                assert_eq!(&r.data[..6], &[0x00, 0x03, 0x09, 0x08, 0x02, 0x9F]);
            }
        }
    }
    // Set Session Privilege Level, Get Device ID, ..., Close Session.
    assert_eq!(commands.first(), Some(&(0x06, 0x3B)));
    assert!(commands.contains(&(0x06, 0x01)));
    assert_eq!(commands.last(), Some(&(0x06, 0x3C)));
    let _: &SessionKeys = &keys;
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Cipher suite 17 has no peer here (ipmi_sim refuses it, pyghmi ignores
/// it), so its vectors are derived: computed by Python's `hmac`/`hashlib`
/// and the `cryptography` package's AES-CBC from IPMI 2.0's formulas for
/// RAKP-HMAC-SHA256, HMAC-SHA256-128 and AES-CBC-128, on these inputs.
#[test]
fn suite_17_matches_an_independent_implementation() {
    let c = Credentials {
        username: "operator".into(),
        password: "s3cret-pass".into(),
    };
    let hs = Handshake {
        suite: CipherSuite::Suite17,
        privilege: Privilege::Administrator,
        console_session_id: 0x1122_3344,
        console_random: std::array::from_fn(|i| i as u8),
        tag: 7,
    };
    let open = OpenSession {
        bmc_session_id: 0x5566_7788,
        privilege: 4,
    };
    let rc: Vec<u8> = (16..32).collect();
    let guid: Vec<u8> = (0xA0..0xB0).collect();
    let mut rakp2 = vec![7, 0, 0, 0];
    rakp2.extend_from_slice(&0x1122_3344u32.to_le_bytes());
    rakp2.extend_from_slice(&rc);
    rakp2.extend_from_slice(&guid);
    rakp2.extend(hex(
        "786e8cfcd981b73a97b1ee3aa67b2af47bf30d7e1b78a90e398feed9e0d6e92e",
    ));
    let r2 = hs.rakp2(&rakp2, &open, &c, "bmc").unwrap();
    assert_eq!(
        hs.rakp3(&open, &r2, &c)[8..],
        hex("7d9a6df4d735b4a04ee73e3bd716d26af0a78ec69366ffff8f1eb766c56fdc77")
    );
    assert_eq!(
        hs.sik(&r2, &c),
        hex("71a0118991f56c88ff921844f7bfdcbe2211f5ef835918391e739bceaf092bba")
    );
    let mut rakp4 = vec![7, 0, 0, 0];
    rakp4.extend_from_slice(&0x1122_3344u32.to_le_bytes());
    rakp4.extend(hex("2c355db193a67b5d8428ce3b18728154"));
    let keys = hs.rakp4(&rakp4, &open, &r2, &c, "bmc").unwrap();
    assert_eq!(
        keys.k1,
        hex("91b0e3c68918f9107640cbfdada7ae529cf1a6b157ee1b59a1e8a9b15b02cc93")
    );
    assert_eq!(
        keys.aes_key[..],
        hex("76127044fb3c249d80138a5ceafc490f")[..]
    );
    let iv: [u8; 16] = std::array::from_fn(|i| 0x40 + i as u8);
    let sealed = keys.encrypt(iv, &[0x20, 0x00, 0xE0, 0x81, 0x04, 0x01, 0x7B]);
    assert_eq!(sealed[16..], hex("0651ac51d71e48db0e6e078771478f03")[..]);
    assert_eq!(
        keys.auth_code(b"covered bytes"),
        hex("b7c06eb2abc0aae74918aee6f5b17dfb")
    );
}

/// Every decoder takes arbitrary bytes (what a hostile or broken BMC could
/// send) and answers an error or a value, never a panic: random datagrams,
/// and every truncation and single-byte corruption of real ones.
#[test]
fn hostile_datagrams_never_panic() {
    let packets = capture();
    let (hs, open) = handshake(&packets);
    let c = credentials();
    let rakp2 = packet::decode(&packets[5].1, None).unwrap().payload;
    let r2 = hs.rakp2(&rakp2, &open, &c, "bmc").unwrap();
    let rakp4 = packet::decode(&packets[7].1, None).unwrap().payload;
    let keys = hs.rakp4(&rakp4, &open, &r2, &c, "bmc").unwrap();
    let feed = |bytes: &[u8]| {
        let _ = packet::decode(bytes, None);
        let _ = packet::decode(bytes, Some(&keys));
        let _ = packet::decode_v15(bytes);
        let _ = packet::decode_response(bytes);
        let _ = hs.open_session_response(bytes, "bmc");
        let _ = hs.rakp2(bytes, &open, &c, "bmc");
        let _ = hs.rakp4(bytes, &open, &r2, &c, "bmc");
        let _ = keys.decrypt(bytes);
        let _ = crate::fru::parse(bytes);
    };
    // A small xorshift generator: reproducible, no dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 160) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half of them look like RMCP+ so the deeper paths run.
        if len >= 16 && next() % 2 == 0 {
            bytes[..5].copy_from_slice(&[0x06, 0x00, 0xFF, 0x07, 0x06]);
            let body = (len - 16) as u16;
            bytes[14..16].copy_from_slice(&body.to_le_bytes());
        }
        feed(&bytes);
    }
    for (_, real) in &packets {
        for cut in 0..real.len() {
            feed(&real[..cut]);
        }
        for i in 0..real.len() {
            let mut bad = real.clone();
            bad[i] ^= 0xA5;
            feed(&bad);
        }
    }
}

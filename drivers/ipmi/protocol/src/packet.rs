//! Datagram framing: the RMCP header, IPMI 2.0 (RMCP+) session packets
//! with their integrity trailer and encrypted payloads, the IPMI 1.5
//! sessionless packet (for Get Channel Authentication Capabilities), and
//! IPMI LAN request/response messages with their checksums (IPMI 2.0
//! §13.6-13.8, figure 13-4).
//!
//! Decoding checks every length against the datagram before reading it and
//! refuses what it cannot verify; it never panics on input.

use crate::crypto::SessionKeys;
use crate::error::Error;

/// RMCP version 1.0, reserved, sequence 0xFF (no RMCP ack), class IPMI.
pub const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xFF, 0x07];
/// Authentication type byte of an IPMI 2.0 (RMCP+) packet.
const AUTH_TYPE_RMCP_PLUS: u8 = 0x06;
/// Authentication type byte of an IPMI 1.5 packet without authentication.
const AUTH_TYPE_NONE: u8 = 0x00;
/// Payload-type flag: the payload is encrypted.
const ENCRYPTED: u8 = 0x80;
/// Payload-type flag: the packet carries an integrity trailer.
const AUTHENTICATED: u8 = 0x40;
/// The next-header byte of the integrity trailer.
const NEXT_HEADER: u8 = 0x07;
/// Bytes of the IPMI 2.0 session header (auth type through payload length).
const SESSION_HEADER: usize = 12;

/// The BMC's IPMB address (responder).
pub const BMC_ADDRESS: u8 = 0x20;
/// A remote console's software id (requester).
pub const CONSOLE_ADDRESS: u8 = 0x81;

/// RMCP+ payload types this library sends or accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PayloadType {
    /// An IPMI message.
    Ipmi = 0x00,
    /// RMCP+ Open Session Request.
    OpenSessionRequest = 0x10,
    /// RMCP+ Open Session Response.
    OpenSessionResponse = 0x11,
    /// RAKP Message 1.
    Rakp1 = 0x12,
    /// RAKP Message 2.
    Rakp2 = 0x13,
    /// RAKP Message 3.
    Rakp3 = 0x14,
    /// RAKP Message 4.
    Rakp4 = 0x15,
}

/// A decoded IPMI 2.0 session packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Payload type (without the flags).
    pub payload_type: u8,
    /// Session id in the header (the receiver's id for the session).
    pub session_id: u32,
    /// Session sequence number.
    pub sequence: u32,
    /// Whether it was encrypted.
    pub encrypted: bool,
    /// Whether it carried an integrity trailer (verified when decoded).
    pub authenticated: bool,
    /// The payload, decrypted.
    pub payload: Vec<u8>,
}

/// Encodes an IPMI 2.0 session packet. With `keys`, the payload is
/// encrypted with `iv` (AES-CBC-128) and the packet carries an integrity
/// trailer under K1; without, it goes in the clear (session setup).
pub fn encode(
    payload_type: PayloadType,
    session_id: u32,
    sequence: u32,
    payload: &[u8],
    keys: Option<(&SessionKeys, [u8; 16])>,
) -> Vec<u8> {
    let (flags, body) = match keys {
        Some((keys, iv)) => (ENCRYPTED | AUTHENTICATED, keys.encrypt(iv, payload)),
        None => (0, payload.to_vec()),
    };
    let mut out = Vec::with_capacity(4 + SESSION_HEADER + body.len() + 24);
    out.extend_from_slice(&RMCP_HEADER);
    out.push(AUTH_TYPE_RMCP_PLUS);
    out.push(payload_type as u8 | flags);
    out.extend_from_slice(&session_id.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
    if let Some((keys, _)) = keys {
        // Pad so that auth type .. next header is a multiple of 4 bytes.
        let pad = (4 - (body.len() + 2) % 4) % 4;
        out.extend(std::iter::repeat_n(0xFF, pad));
        out.push(pad as u8);
        out.push(NEXT_HEADER);
        let code = keys.auth_code(&out[4..]);
        out.extend_from_slice(&code);
    }
    out
}

/// Decodes an IPMI 2.0 session packet. An authenticated packet is verified
/// with `keys` (and refused without them); an encrypted one is decrypted.
pub fn decode(datagram: &[u8], keys: Option<&SessionKeys>) -> Result<Packet, Error> {
    let rest = strip_rmcp(datagram)?;
    if rest.len() < SESSION_HEADER {
        return Err(Error::malformed(format!(
            "a {}-byte datagram is too short for an IPMI 2.0 session header",
            datagram.len()
        )));
    }
    if rest[0] != AUTH_TYPE_RMCP_PLUS {
        return Err(Error::malformed(format!(
            "answer has authentication type {:#04x}, not RMCP+ (IPMI 2.0)",
            rest[0]
        )));
    }
    let flags = rest[1];
    let session_id = u32::from_le_bytes(rest[2..6].try_into().expect("4 bytes"));
    let sequence = u32::from_le_bytes(rest[6..10].try_into().expect("4 bytes"));
    let len = u16::from_le_bytes([rest[10], rest[11]]) as usize;
    let end = SESSION_HEADER + len;
    if rest.len() < end {
        return Err(Error::malformed(format!(
            "payload length {len} runs past the end of a {}-byte datagram",
            datagram.len()
        )));
    }
    let authenticated = flags & AUTHENTICATED != 0;
    let encrypted = flags & ENCRYPTED != 0;
    if authenticated {
        let keys = keys.ok_or_else(|| {
            Error::malformed("an authenticated packet arrived before the session was established")
        })?;
        let code_len = keys.suite.auth_code_len();
        if rest.len() < end + 2 + code_len {
            return Err(Error::malformed("integrity trailer is truncated"));
        }
        let covered = &rest[..rest.len() - code_len];
        let code = &rest[rest.len() - code_len..];
        if !crate::crypto::constant_time_eq(&keys.auth_code(covered), code) {
            return Err(Error::malformed(
                "answer's integrity code does not verify (not from this session)",
            ));
        }
        let trailer = &covered[end..];
        let pad = trailer[trailer.len() - 2] as usize;
        if trailer.len() != pad + 2 || trailer[trailer.len() - 1] != NEXT_HEADER {
            return Err(Error::malformed("integrity trailer is malformed"));
        }
    } else if rest.len() != end {
        return Err(Error::malformed(format!(
            "{} bytes follow an unauthenticated payload",
            rest.len() - end
        )));
    }
    let body = &rest[SESSION_HEADER..end];
    let payload = if encrypted {
        let keys = keys.ok_or_else(|| {
            Error::malformed("an encrypted packet arrived before the session was established")
        })?;
        keys.decrypt(body)?
    } else {
        body.to_vec()
    };
    Ok(Packet {
        payload_type: flags & 0x3F,
        session_id,
        sequence,
        encrypted,
        authenticated,
        payload,
    })
}

fn strip_rmcp(datagram: &[u8]) -> Result<&[u8], Error> {
    match datagram.split_first_chunk::<4>() {
        Some((header, rest)) if header[0] == 0x06 && header[3] & 0x1F == 0x07 => Ok(rest),
        _ => Err(Error::malformed(format!(
            "a {}-byte datagram is not an RMCP/IPMI packet",
            datagram.len()
        ))),
    }
}

/// Whether a datagram is an IPMI 1.5 (not RMCP+) packet.
pub fn is_ipmi15(datagram: &[u8]) -> bool {
    datagram.len() > 4 && datagram[..4] == RMCP_HEADER && datagram[4] != AUTH_TYPE_RMCP_PLUS
}

/// Encodes a sessionless IPMI 1.5 packet (authentication type none).
pub fn encode_v15(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + message.len());
    out.extend_from_slice(&RMCP_HEADER);
    out.push(AUTH_TYPE_NONE);
    out.extend_from_slice(&0u32.to_le_bytes()); // session sequence
    out.extend_from_slice(&0u32.to_le_bytes()); // session id
    out.push(message.len() as u8);
    out.extend_from_slice(message);
    out
}

/// Decodes a sessionless IPMI 1.5 packet; returns its message.
pub fn decode_v15(datagram: &[u8]) -> Result<Vec<u8>, Error> {
    let rest = strip_rmcp(datagram)?;
    // auth type, sequence (4), session id (4), [auth code (16)], length.
    let header = match rest.first() {
        Some(&AUTH_TYPE_NONE) => 9,
        Some(_) => 25,
        None => return Err(Error::malformed("empty IPMI 1.5 packet")),
    };
    let len = *rest
        .get(header)
        .ok_or_else(|| Error::malformed("IPMI 1.5 packet is truncated"))? as usize;
    rest.get(header + 1..header + 1 + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::malformed("IPMI 1.5 message runs past the datagram"))
}

/// The two's-complement checksum IPMI messages carry.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

/// Encodes an IPMI LAN request message from the console to the BMC.
pub fn encode_request(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(7 + data.len());
    out.push(BMC_ADDRESS);
    out.push(netfn << 2);
    out.push(checksum(&out[..2]));
    out.push(CONSOLE_ADDRESS);
    out.push((rq_seq & 0x3F) << 2);
    out.push(cmd);
    out.extend_from_slice(data);
    out.push(checksum(&out[3..]));
    out
}

/// A decoded IPMI LAN response message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Network function (the request's plus one).
    pub netfn: u8,
    /// Command.
    pub cmd: u8,
    /// The requester sequence number it answers.
    pub rq_seq: u8,
    /// Completion code.
    pub completion: u8,
    /// Response data after the completion code.
    pub data: Vec<u8>,
}

/// Decodes an IPMI LAN response message, checking both checksums.
pub fn decode_response(message: &[u8]) -> Result<Response, Error> {
    if message.len() < 8 {
        return Err(Error::malformed(format!(
            "a {}-byte IPMI response is too short",
            message.len()
        )));
    }
    if checksum(&message[..2]) != message[2]
        || checksum(&message[3..message.len() - 1]) != message[message.len() - 1]
    {
        return Err(Error::malformed("IPMI response checksum does not match"));
    }
    Ok(Response {
        netfn: message[1] >> 2,
        cmd: message[5],
        rq_seq: message[4] >> 2,
        completion: message[6],
        data: message[7..message.len() - 1].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CipherSuite;

    #[test]
    fn get_channel_auth_caps_is_framed_as_ipmitool_frames_it() {
        // Get Channel Authentication Capabilities, channel "this one" with
        // IPMI 2.0 data, administrator: the bytes every lanplus client
        // sends first (as captured from `ipmitool -I lanplus`).
        let msg = encode_request(0x06, 0x38, 0, &[0x8E, 0x04]);
        assert_eq!(msg, [0x20, 0x18, 0xC8, 0x81, 0x00, 0x38, 0x8E, 0x04, 0xB5]);
        let packet = encode_v15(&msg);
        assert_eq!(
            packet,
            [
                0x06, 0x00, 0xFF, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, 0x20, 0x18, 0xC8, 0x81,
                0x00, 0x38, 0x8E, 0x04, 0xB5
            ]
        );
        assert_eq!(decode_v15(&packet).unwrap(), msg);
    }

    #[test]
    fn responses_decode_and_bad_checksums_are_refused() {
        // A Get Device ID response with ipmi_sim's values (device 0, rev 3, fw 9.08,
        // IPMI 2.0, manufacturer 0x001291, product 0x0F02).
        let body = [
            0x81, 0x1C, 0x63, 0x20, 0x04, 0x01, 0x00, 0x00, 0x03, 0x09, 0x08, 0x02, 0x9F, 0x91,
            0x12, 0x00, 0x02, 0x0F,
        ];
        let mut msg = body.to_vec();
        msg.push(checksum(&body[3..]));
        let r = decode_response(&msg).unwrap();
        assert_eq!((r.netfn, r.cmd, r.rq_seq, r.completion), (0x07, 0x01, 1, 0));
        assert_eq!(r.data, &body[7..]);
        msg[9] ^= 0xFF;
        assert!(decode_response(&msg).is_err());
        assert!(decode_response(&msg[..5]).is_err());
    }

    #[test]
    fn session_packets_round_trip_and_tampering_is_detected() {
        let keys = SessionKeys::derive(CipherSuite::Suite3, b"sik");
        let msg = encode_request(0x00, 0x01, 5, &[]);
        let bytes = encode(
            PayloadType::Ipmi,
            0xA1B2C3D4,
            7,
            &msg,
            Some((&keys, [9; 16])),
        );
        // 12-byte header + 32 encrypted (IV + one block) + pad 2 + 2 + 12.
        assert_eq!(bytes.len(), 4 + 12 + 32 + 2 + 2 + 12);
        assert_eq!((bytes.len() - 4 - 12) % 4, 0);
        let p = decode(&bytes, Some(&keys)).unwrap();
        assert_eq!(p.payload, msg);
        assert_eq!((p.session_id, p.sequence), (0xA1B2C3D4, 7));
        assert!(p.encrypted && p.authenticated);
        for i in [5, 10, 20, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad, Some(&keys)).is_err(), "byte {i} flipped");
        }
        let other = SessionKeys::derive(CipherSuite::Suite3, b"other");
        assert!(decode(&bytes, Some(&other)).is_err());
        assert!(decode(&bytes, None).is_err());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], Some(&keys)).is_err());
        }
    }

    #[test]
    fn clear_packets_round_trip() {
        let bytes = encode(PayloadType::Rakp1, 0, 0, &[1, 2, 3], None);
        assert_eq!(
            bytes,
            [
                6, 0, 0xFF, 7, 6, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 2, 3
            ]
        );
        let p = decode(&bytes, None).unwrap();
        assert_eq!((p.payload_type, p.payload), (0x12, vec![1, 2, 3]));
        assert!(
            decode(
                &[6, 0, 0xFF, 7, 6, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0],
                None
            )
            .is_err()
        );
    }
}

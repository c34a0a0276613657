//! The FRU inventory format (Platform Management FRU Information Storage
//! Definition v1.0): the common header and the chassis, board and product
//! info areas, as the strings an interrogation reports. Every offset and
//! length is checked against the data; a malformed area is skipped, never
//! a panic.

/// What the FRU inventory says, as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Chassis info area: part number and serial number.
    pub chassis_part_number: Option<String>,
    /// Chassis serial number.
    pub chassis_serial: Option<String>,
    /// Board info area: manufacturer.
    pub board_manufacturer: Option<String>,
    /// Board product name.
    pub board_product: Option<String>,
    /// Board serial number.
    pub board_serial: Option<String>,
    /// Board part number.
    pub board_part_number: Option<String>,
    /// Product info area: manufacturer.
    pub product_manufacturer: Option<String>,
    /// Product name.
    pub product_name: Option<String>,
    /// Product part or model number.
    pub product_part_number: Option<String>,
    /// Product version.
    pub product_version: Option<String>,
    /// Product serial number.
    pub product_serial: Option<String>,
    /// Asset tag.
    pub asset_tag: Option<String>,
}

/// Parses a FRU inventory. `None` if the common header is not valid.
pub fn parse(data: &[u8]) -> Option<Inventory> {
    let header = data.get(..8)?;
    if header[0] & 0x0F != 0x01 || checksum(header) != 0 {
        return None;
    }
    let mut inventory = Inventory::default();
    if let Some(fields) = area(data, header[2], 2) {
        let mut fields = fields.into_iter();
        inventory.chassis_part_number = fields.next().flatten();
        inventory.chassis_serial = fields.next().flatten();
    }
    if let Some(fields) = area(data, header[3], 6) {
        let mut fields = fields.into_iter();
        inventory.board_manufacturer = fields.next().flatten();
        inventory.board_product = fields.next().flatten();
        inventory.board_serial = fields.next().flatten();
        inventory.board_part_number = fields.next().flatten();
    }
    if let Some(fields) = area(data, header[4], 3) {
        let mut fields = fields.into_iter();
        inventory.product_manufacturer = fields.next().flatten();
        inventory.product_name = fields.next().flatten();
        inventory.product_part_number = fields.next().flatten();
        inventory.product_version = fields.next().flatten();
        inventory.product_serial = fields.next().flatten();
        inventory.asset_tag = fields.next().flatten();
    }
    Some(inventory)
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
}

/// The fields of the info area at `offset` (in 8-byte units; 0 = absent)
/// whose fixed part is `skip` bytes (version, length and the area's own
/// fixed bytes). `None` if the area is absent or malformed.
fn area(data: &[u8], offset: u8, skip: usize) -> Option<Vec<Option<String>>> {
    if offset == 0 {
        return None;
    }
    let start = offset as usize * 8;
    let len = *data.get(start + 1)? as usize * 8;
    let area = data.get(start..start + len)?;
    if len < skip || checksum(area) != 0 {
        return None;
    }
    let mut fields = Vec::new();
    let mut at = skip;
    while let Some(&type_length) = area.get(at) {
        if type_length == 0xC1 {
            break;
        }
        let n = (type_length & 0x3F) as usize;
        let bytes = area.get(at + 1..at + 1 + n)?;
        fields.push(decode(type_length >> 6, bytes));
        at += 1 + n;
    }
    Some(fields)
}

/// A type/length field's value as text (empty fields are `None`).
fn decode(kind: u8, bytes: &[u8]) -> Option<String> {
    let text: String = match kind {
        // Binary: hex.
        0 => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        // BCD plus.
        1 => bytes
            .iter()
            .flat_map(|b| [b >> 4, b & 0x0F])
            .map(|d| b"0123456789 -.:,_"[d as usize] as char)
            .collect(),
        // 6-bit packed ASCII: four characters in three bytes.
        2 => {
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let mut word = 0u32;
                for (i, b) in chunk.iter().enumerate() {
                    word |= (*b as u32) << (8 * i);
                }
                for i in 0..(chunk.len() * 8 / 6) {
                    out.push((((word >> (6 * i)) & 0x3F) as u8 + 0x20) as char);
                }
            }
            out
        }
        // 8-bit ASCII + Latin-1.
        _ => bytes.iter().map(|&b| b as char).collect(),
    };
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends a text field (type 3) to an area being built.
    fn field(area: &mut Vec<u8>, text: &str) {
        area.push(0xC0 | text.len() as u8);
        area.extend_from_slice(text.as_bytes());
    }

    /// Closes an area: end marker, padding to 8 bytes, length, checksum.
    fn close(mut area: Vec<u8>) -> Vec<u8> {
        area.push(0xC1);
        while !(area.len() + 1).is_multiple_of(8) {
            area.push(0);
        }
        area[1] = ((area.len() + 1) / 8) as u8;
        area.push(checksum(&area).wrapping_neg());
        area
    }

    #[test]
    fn board_and_product_areas_are_read() {
        let mut board = vec![0x01, 0, 0x00, 0, 0, 0];
        for f in ["Acme", "X100 board", "BRD123", "P-1"] {
            field(&mut board, f);
        }
        let board = close(board);
        let mut product = vec![0x01, 0, 0x00];
        for f in ["Acme Corp", "X100", "X100-A", "1.0", "SN0042", ""] {
            field(&mut product, f);
        }
        let product = close(product);
        let mut data = vec![0x01, 0, 0, 1, 1 + board.len() as u8 / 8, 0, 0];
        data.push(checksum(&data).wrapping_neg());
        data.extend(&board);
        data.extend(&product);
        let inv = parse(&data).unwrap();
        assert_eq!(inv.board_manufacturer.as_deref(), Some("Acme"));
        assert_eq!(inv.board_serial.as_deref(), Some("BRD123"));
        assert_eq!(inv.product_manufacturer.as_deref(), Some("Acme Corp"));
        assert_eq!(inv.product_name.as_deref(), Some("X100"));
        assert_eq!(inv.product_serial.as_deref(), Some("SN0042"));
        assert_eq!(inv.asset_tag, None);
        assert_eq!(inv.chassis_serial, None);
        // Every truncation parses or is refused, never panics.
        for cut in 0..data.len() {
            let _ = parse(&data[..cut]);
        }
    }

    #[test]
    fn packed_and_bcd_fields_decode() {
        // "IPMI" in 6-bit packed ASCII: 0x29 0xDC 0xA6.
        assert_eq!(decode(2, &[0x29, 0xDC, 0xA6]).as_deref(), Some("IPMI"));
        assert_eq!(decode(1, &[0x12, 0x3B]).as_deref(), Some("123-"));
        assert_eq!(decode(0, &[0xAB]).as_deref(), Some("ab"));
        assert_eq!(decode(3, b"  \0"), None);
    }

    #[test]
    fn a_bad_header_is_not_an_inventory() {
        assert_eq!(parse(&[0x01, 0, 0, 1, 0, 0, 0, 0]), None);
        assert_eq!(parse(&[0; 4]), None);
    }
}

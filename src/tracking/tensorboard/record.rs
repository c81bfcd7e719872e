//! The framing of an event file: TensorFlow's TFRecord. Each record is its length (8 bytes,
//! little-endian), a masked CRC-32C of those 8 bytes, the data, and a masked CRC-32C of the
//! data. No maintained crate writes it without bringing TensorFlow's whole protobuf set along
//! (tensorboard-rs pins protobuf 2 and image 0.23), and it is these few lines.

/// `data` framed as one TFRecord.
pub fn framed(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(data.len() + 16);
    record.extend_from_slice(&length);
    record.extend_from_slice(&masked_crc(&length).to_le_bytes());
    record.extend_from_slice(data);
    record.extend_from_slice(&masked_crc(data).to_le_bytes());
    record
}

/// TFRecord's masking of a CRC, which keeps a CRC of data that itself holds CRCs from being
/// weak: rotated right by 15 bits, plus a constant.
fn masked_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_its_length_its_data_and_their_masked_checksums() {
        // Worked out apart, bit by bit, from CRC-32C's polynomial and TFRecord's mask, on
        // CRC-32C's check string (whose plain checksum is 0xe3069283).
        let expected = [
            "0900000000000000",
            "37f97139",
            "313233343536373839",
            "e5b08ac7",
        ]
        .concat();
        let hex: String = framed(b"123456789")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
    }
}

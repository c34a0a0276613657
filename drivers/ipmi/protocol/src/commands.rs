//! The IPMI commands an out-of-band driver needs, typed: Get Device ID,
//! Get System GUID, chassis status and control, system boot options
//! (boot flags) and FRU inventory reads (IPMI 2.0 §20, §28, §34).

use crate::error::Error;
use crate::fru::{self, Inventory};
use crate::session::{Session, Transport, completion_error, netfn};

/// What Get Device ID reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceId {
    /// Device id.
    pub device_id: u8,
    /// Device revision (low nibble).
    pub device_revision: u8,
    /// Firmware revision, `major.minor` (minor in BCD, two digits).
    pub firmware: String,
    /// IPMI version, e.g. `2.0`.
    pub ipmi_version: String,
    /// IANA enterprise number of the manufacturer.
    pub manufacturer_id: u32,
    /// Product id.
    pub product_id: u16,
    /// Whether the device supports FRU inventory (device support bit 3).
    pub fru_inventory: bool,
}

/// Reads Get Device ID.
pub fn device_id<T: Transport>(s: &mut Session<T>) -> Result<DeviceId, Error> {
    let d = s.command("Get Device ID", netfn::APP, 0x01, &[])?;
    if d.len() < 6 {
        return Err(Error::malformed(format!(
            "BMC {}: Get Device ID answered {} bytes",
            s.bmc(),
            d.len()
        )));
    }
    let byte = |i: usize| d.get(i).copied().unwrap_or(0);
    Ok(DeviceId {
        device_id: d[0],
        device_revision: d[1] & 0x0F,
        firmware: format!("{}.{:02x}", d[2] & 0x7F, d[3]),
        ipmi_version: format!("{}.{}", d[4] & 0x0F, d[4] >> 4),
        manufacturer_id: u32::from_le_bytes([byte(6), byte(7), byte(8) & 0x0F, 0]),
        product_id: u16::from_le_bytes([byte(9), byte(10)]),
        fru_inventory: d[5] & 0x08 != 0,
    })
}

/// Reads Get System GUID, formatted as a UUID; `None` if the BMC does not
/// support it.
pub fn system_guid<T: Transport>(s: &mut Session<T>) -> Result<Option<String>, Error> {
    let answer = s.request(netfn::APP, 0x37, &[])?;
    if answer.completion != 0 || answer.data.len() < 16 {
        return Ok(None);
    }
    // Stored least significant byte first (SMBIOS order).
    let g = &answer.data;
    let mut fields = [g[..4].to_vec(), g[4..6].to_vec(), g[6..8].to_vec()];
    for f in &mut fields {
        f.reverse();
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    Ok(Some(format!(
        "{}-{}-{}-{}-{}",
        hex(&fields[0]),
        hex(&fields[1]),
        hex(&fields[2]),
        hex(&g[8..10]),
        hex(&g[10..16])
    )))
}

/// What Get Chassis Status reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChassisStatus {
    /// System power is on.
    pub power_on: bool,
    /// A power fault or overload is reported.
    pub power_fault: bool,
    /// Power restore policy: `always-off`, `previous`, `always-on` or
    /// `unknown`.
    pub restore_policy: &'static str,
}

/// Reads Get Chassis Status.
pub fn chassis_status<T: Transport>(s: &mut Session<T>) -> Result<ChassisStatus, Error> {
    let d = s.command("Get Chassis Status", netfn::CHASSIS, 0x01, &[])?;
    let Some(&current) = d.first() else {
        return Err(Error::malformed(format!(
            "BMC {}: Get Chassis Status answered no data",
            s.bmc()
        )));
    };
    Ok(ChassisStatus {
        power_on: current & 0x01 != 0,
        power_fault: current & 0x16 != 0,
        restore_policy: match (current >> 5) & 0x03 {
            0 => "always-off",
            1 => "previous",
            2 => "always-on",
            _ => "unknown",
        },
    })
}

/// A Chassis Control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChassisControl {
    /// Power down (hard).
    PowerDown = 0,
    /// Power up.
    PowerUp = 1,
    /// Power cycle (off, then on after a BMC-defined interval).
    PowerCycle = 2,
    /// Hard reset.
    HardReset = 3,
    /// Soft shutdown through ACPI.
    SoftShutdown = 5,
}

/// Sends Chassis Control.
pub fn chassis_control<T: Transport>(
    s: &mut Session<T>,
    control: ChassisControl,
) -> Result<(), Error> {
    s.command("Chassis Control", netfn::CHASSIS, 0x02, &[control as u8])
        .map(drop)
}

/// A boot device selector of the boot flags (parameter 5, data 2 bits
/// 5:2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootDevice {
    /// No override.
    NoOverride,
    /// Force PXE.
    Pxe,
    /// Force boot from the default hard drive.
    Disk,
    /// Force boot from CD/DVD.
    Cdrom,
    /// Force boot into BIOS setup.
    BiosSetup,
    /// Another selector value.
    Other(u8),
}

impl BootDevice {
    fn selector(self) -> u8 {
        match self {
            Self::NoOverride => 0x0,
            Self::Pxe => 0x1,
            Self::Disk => 0x2,
            Self::Cdrom => 0x5,
            Self::BiosSetup => 0x6,
            Self::Other(v) => v & 0x0F,
        }
    }

    fn from_selector(v: u8) -> Self {
        match v & 0x0F {
            0x0 => Self::NoOverride,
            0x1 => Self::Pxe,
            0x2 => Self::Disk,
            0x5 => Self::Cdrom,
            0x6 => Self::BiosSetup,
            v => Self::Other(v),
        }
    }
}

/// The boot flags (system boot options parameter 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootFlags {
    /// The flags are valid (an override is set).
    pub valid: bool,
    /// For all future boots rather than the next one.
    pub persistent: bool,
    /// EFI boot rather than legacy.
    pub efi: bool,
    /// The device.
    pub device: BootDevice,
}

/// Reads the boot flags (Get System Boot Options, parameter 5).
pub fn boot_flags<T: Transport>(s: &mut Session<T>) -> Result<BootFlags, Error> {
    let d = s.command(
        "Get System Boot Options",
        netfn::CHASSIS,
        0x09,
        &[0x05, 0x00, 0x00],
    )?;
    // Parameter version, parameter selector, then 5 data bytes.
    if d.len() < 4 || d[1] & 0x7F != 0x05 {
        return Err(Error::malformed(format!(
            "BMC {}: Get System Boot Options answered {} bytes for another parameter",
            s.bmc(),
            d.len()
        )));
    }
    Ok(BootFlags {
        valid: d[2] & 0x80 != 0,
        persistent: d[2] & 0x40 != 0,
        efi: d[2] & 0x20 != 0,
        device: BootDevice::from_selector(d[3] >> 2),
    })
}

/// Sets the boot override: stops the BMC clearing it after its 60 s
/// timeout (parameter 3), then writes the flags (parameter 5), keeping
/// `efi` as given.
pub fn set_boot_flags<T: Transport>(
    s: &mut Session<T>,
    device: BootDevice,
    persistent: bool,
    efi: bool,
) -> Result<(), Error> {
    // Parameter 3 bit 3: don't clear the valid bit when no chassis control
    // follows within 60 s. Optional: a BMC that lacks it still boots once.
    let answer = s.request(netfn::CHASSIS, 0x08, &[0x03, 0x08])?;
    if answer.completion != 0 && answer.completion != 0x80 && answer.completion != 0xCC {
        return Err(completion_error(
            s.bmc(),
            "Set System Boot Options (valid bit clearing)",
            answer.completion,
        ));
    }
    let mut flags = 0x80;
    if persistent {
        flags |= 0x40;
    }
    if efi {
        flags |= 0x20;
    }
    s.command(
        "Set System Boot Options (boot flags)",
        netfn::CHASSIS,
        0x08,
        &[0x05, flags, device.selector() << 2, 0, 0, 0],
    )
    .map(drop)
}

/// Largest FRU inventory read: enough for the info areas of any real
/// device, bounded so a BMC cannot make a call read forever.
pub const MAX_FRU_BYTES: usize = 4096;

/// Reads FRU device 0's inventory and parses it; `None` when the device
/// has none (completion codes "not present", "invalid data field",
/// "invalid command").
pub fn fru_inventory<T: Transport>(
    s: &mut Session<T>,
) -> Result<Option<(Inventory, usize)>, Error> {
    let info = s.request(netfn::STORAGE, 0x10, &[0])?;
    match info.completion {
        0 => {}
        0xCB | 0xCC | 0xC1 | 0xC9 => return Ok(None),
        code => {
            return Err(completion_error(
                s.bmc(),
                "Get FRU Inventory Area Info",
                code,
            ));
        }
    }
    if info.data.len() < 3 {
        return Ok(None);
    }
    let size = (u16::from_le_bytes([info.data[0], info.data[1]]) as usize).min(MAX_FRU_BYTES);
    let words = info.data[2] & 0x01 != 0;
    let mut data = Vec::with_capacity(size);
    let mut chunk: usize = 32;
    while data.len() < size {
        let want = chunk.min(size - data.len());
        let offset = if words { data.len() / 2 } else { data.len() } as u16;
        let count = if words { want.div_ceil(2) } else { want } as u8;
        let [lo, hi] = offset.to_le_bytes();
        let answer = s.request(netfn::STORAGE, 0x11, &[0, lo, hi, count])?;
        match answer.completion {
            0 => {}
            // Too much at once for this BMC: ask for less.
            0xC7 | 0xC8 | 0xCA if chunk > 8 => {
                chunk /= 2;
                continue;
            }
            code => return Err(completion_error(s.bmc(), "Read FRU Data", code)),
        }
        let got = answer.data.first().copied().unwrap_or(0) as usize;
        let bytes = answer.data.get(1..1 + got).unwrap_or_default();
        if bytes.is_empty() {
            break;
        }
        data.extend_from_slice(bytes);
        if header_says_done(&data) {
            break;
        }
    }
    data.truncate(size);
    Ok(fru::parse(&data).map(|inventory| (inventory, data.len())))
}

/// Stops reading early once every info area the common header names has
/// been read (their ends are known from their length bytes).
fn header_says_done(data: &[u8]) -> bool {
    let Some(header) = data.get(..8) else {
        return false;
    };
    if header[0] & 0x0F != 0x01 {
        return true;
    }
    header[2..5].iter().filter(|&&o| o != 0).all(|&o| {
        let start = o as usize * 8;
        data.get(start + 1)
            .is_some_and(|&len| data.len() >= start + len as usize * 8)
    })
}

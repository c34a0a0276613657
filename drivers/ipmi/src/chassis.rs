//! What the oob actions do over a session: power on, off and cycle with
//! waits for the BMC to report the new state (as the Redfish driver waits),
//! the boot override, and the facts `interrogate_oob` reports.

use drydock_ipmi::commands::{self, BootDevice as IpmiBoot, BootFlags, ChassisControl};
use drydock_sdk::prelude::*;
use serde_json::{Value, json};

use crate::bmc::{Bmc, driver_error};

fn power_name(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// Reads the power state: `Some(true)` for on. A retryable failure (a BMC
/// briefly unresponsive while it switches power) is "not known yet".
fn read_power(bmc: &mut Bmc) -> Result<Option<bool>> {
    match commands::chassis_status(&mut bmc.session) {
        Ok(status) => Ok(Some(status.power_on)),
        Err(e) if e.kind.is_retryable() => {
            bmc.ctx.warn(format!("reading power state: {}", e.message));
            Ok(None)
        }
        Err(e) => Err(driver_error(e)),
    }
}

/// Polls until the BMC reports power `on`, within the call's deadline.
fn wait_power(bmc: &mut Bmc, on: bool) -> Result<()> {
    let what = format!(
        "node {} to report power {} (BMC {})",
        bmc.node,
        power_name(on),
        bmc.addr
    );
    let interval = bmc.settings.poll_interval;
    let ctx = bmc.ctx;
    ctx.poll_until(interval, &what, || {
        Ok((read_power(bmc)? == Some(on)).then_some(()))
    })?;
    ctx.status(format!("{} is powered {}", bmc.node, power_name(on)), false);
    Ok(())
}

/// Polls until the BMC reports power `on` or `window` has passed; true if
/// it got there.
fn wait_power_within(bmc: &mut Bmc, on: bool, window: Duration) -> Result<bool> {
    let start = bmc.ctx.deadline_remaining();
    loop {
        if read_power(bmc)? == Some(on) {
            return Ok(true);
        }
        let elapsed = start.saturating_sub(bmc.ctx.deadline_remaining());
        if elapsed >= window {
            return Ok(false);
        }
        let nap = bmc.settings.poll_interval.min(window - elapsed);
        if bmc.ctx.sleep(nap).is_err() {
            return Ok(false);
        }
    }
}

fn control_name(what: ChassisControl) -> &'static str {
    match what {
        ChassisControl::PowerDown => "power down",
        ChassisControl::PowerUp => "power up",
        ChassisControl::PowerCycle => "power cycle",
        ChassisControl::HardReset => "hard reset",
        ChassisControl::SoftShutdown => "soft shutdown",
    }
}

fn control(bmc: &mut Bmc, what: ChassisControl) -> Result<()> {
    commands::chassis_control(&mut bmc.session, what).map_err(driver_error)?;
    bmc.ctx.status(
        format!(
            "{}: {} sent to BMC {}",
            bmc.node,
            control_name(what),
            bmc.addr
        ),
        false,
    );
    Ok(())
}

fn current_power(bmc: &mut Bmc) -> Result<bool> {
    commands::chassis_status(&mut bmc.session)
        .map(|s| s.power_on)
        .map_err(driver_error)
}

/// Powers off: a soft shutdown first when the `graceful` setting asks,
/// then a hard power down if the node is still on after
/// `graceful_timeout_s`. Waits until the BMC reports off.
pub fn power_off(bmc: &mut Bmc) -> Result<()> {
    if !current_power(bmc)? {
        bmc.ctx
            .status(format!("{} is already off", bmc.node), false);
        return Ok(());
    }
    turn_off(bmc)
}

fn turn_off(bmc: &mut Bmc) -> Result<()> {
    if bmc.settings.graceful {
        match commands::chassis_control(&mut bmc.session, ChassisControl::SoftShutdown) {
            Ok(()) => bmc.ctx.status(
                format!("{}: soft shutdown sent to BMC {}", bmc.node, bmc.addr),
                false,
            ),
            // A BMC without ACPI soft-off (ipmi_sim without a VM) refuses
            // it: power down instead.
            Err(e) if !e.kind.is_retryable() && e.kind != drydock_ipmi::ErrorKind::Auth => {
                bmc.ctx.status(
                    format!(
                        "{}: no soft shutdown ({}); powering it down",
                        bmc.node, e.message
                    ),
                    false,
                );
                control(bmc, ChassisControl::PowerDown)?;
                return wait_power(bmc, false);
            }
            Err(e) => return Err(driver_error(e)),
        }
        let window = bmc.settings.graceful_timeout;
        if wait_power_within(bmc, false, window)? {
            bmc.ctx
                .status(format!("{} is powered off", bmc.node), false);
            return Ok(());
        }
        bmc.ctx.status(
            format!(
                "{} did not shut down within {} s; powering it down",
                bmc.node,
                window.as_secs()
            ),
            false,
        );
    }
    control(bmc, ChassisControl::PowerDown)?;
    wait_power(bmc, false)
}

/// Powers on and waits until the BMC reports on.
pub fn power_on(bmc: &mut Bmc) -> Result<()> {
    if current_power(bmc)? {
        bmc.ctx.status(format!("{} is already on", bmc.node), false);
        return Ok(());
    }
    control(bmc, ChassisControl::PowerUp)?;
    wait_power(bmc, true)
}

/// Power-cycles: Chassis Control "power cycle" (or off then on with the
/// `cycle = off-on` setting); a node that is off is powered on. Waits until
/// the BMC reports on (a BMC that never reports off during the cycle is
/// done at once).
pub fn power_cycle(bmc: &mut Bmc) -> Result<()> {
    if !current_power(bmc)? {
        bmc.ctx
            .status(format!("{} is not on; powering it on", bmc.node), false);
        control(bmc, ChassisControl::PowerUp)?;
        return wait_power(bmc, true);
    }
    if bmc.settings.cycle_command {
        control(bmc, ChassisControl::PowerCycle)?;
    } else {
        turn_off(bmc)?;
        control(bmc, ChassisControl::PowerUp)?;
    }
    wait_power(bmc, true)
}

fn ipmi_device(device: BootDevice) -> IpmiBoot {
    match device {
        BootDevice::Pxe => IpmiBoot::Pxe,
        BootDevice::Disk => IpmiBoot::Disk,
        BootDevice::Cdrom => IpmiBoot::Cdrom,
        BootDevice::BiosSetup => IpmiBoot::BiosSetup,
    }
}

/// Sets the boot override (device, once or persistent), keeping the
/// BMC's current EFI/legacy choice.
pub fn set_boot(bmc: &mut Bmc, target: BootTarget) -> Result<()> {
    let efi = match commands::boot_flags(&mut bmc.session) {
        Ok(flags) => flags.efi,
        Err(e) if e.kind == drydock_ipmi::ErrorKind::Unsupported => false,
        Err(e) => return Err(driver_error(e)),
    };
    commands::set_boot_flags(
        &mut bmc.session,
        ipmi_device(target.device),
        target.persistent,
        efi,
    )
    .map_err(driver_error)?;
    let device = match target.device {
        BootDevice::Pxe => "PXE",
        BootDevice::Disk => "disk",
        BootDevice::Cdrom => "CD/DVD",
        BootDevice::BiosSetup => "BIOS setup",
    };
    bmc.ctx.status(
        format!(
            "{}: boot override set to {device} ({})",
            bmc.node,
            if target.persistent {
                "persistent"
            } else {
                "next boot"
            }
        ),
        false,
    );
    Ok(())
}

/// The boot override the flags describe, if they are valid and name a
/// device the WIT knows.
fn boot_override(flags: &BootFlags) -> Option<BootTarget> {
    let device = match flags.device {
        IpmiBoot::Pxe => BootDevice::Pxe,
        IpmiBoot::Disk => BootDevice::Disk,
        IpmiBoot::Cdrom => BootDevice::Cdrom,
        IpmiBoot::BiosSetup => BootDevice::BiosSetup,
        IpmiBoot::NoOverride | IpmiBoot::Other(_) => return None,
    };
    flags.valid.then_some(BootTarget {
        device,
        persistent: flags.persistent,
    })
}

/// Names of a few IANA enterprise numbers BMCs report, for a manufacturer
/// when the FRU inventory gives none.
fn manufacturer_name(id: u32) -> Option<&'static str> {
    Some(match id {
        2 => "IBM",
        11 => "Hewlett Packard Enterprise",
        343 => "Intel Corporation",
        674 => "Dell Inc.",
        2011 => "Huawei",
        4753 => "MontaVista Software",
        10876 => "Super Micro Computer",
        19046 => "Lenovo",
        20974 => "American Megatrends",
        _ => return None,
    })
}

/// The node's facts and the raw data read: device id, system GUID,
/// chassis status, boot flags and the FRU inventory where present.
pub fn facts(bmc: &mut Bmc) -> Result<(OobFacts, Value)> {
    let s = &mut bmc.session;
    let device = commands::device_id(s).map_err(driver_error)?;
    let guid = commands::system_guid(s).map_err(driver_error)?;
    let chassis = commands::chassis_status(s).map_err(driver_error)?;
    let boot = match commands::boot_flags(s) {
        Ok(flags) => Some(flags),
        Err(e) if !e.kind.is_retryable() && e.kind != drydock_ipmi::ErrorKind::Auth => None,
        Err(e) => return Err(driver_error(e)),
    };
    let fru = commands::fru_inventory(s).map_err(driver_error)?;
    let inventory = fru.as_ref().map(|(inv, _)| inv);
    let pick = |f: &dyn Fn(&drydock_ipmi::fru::Inventory) -> Option<String>| inventory.and_then(f);
    let facts = OobFacts {
        power: if chassis.power_on {
            PowerState::On
        } else {
            PowerState::Off
        },
        boot_override: boot.as_ref().and_then(boot_override),
        manufacturer: pick(&|i| {
            i.product_manufacturer
                .clone()
                .or(i.board_manufacturer.clone())
        })
        .or_else(|| manufacturer_name(device.manufacturer_id).map(str::to_string)),
        model: pick(&|i| i.product_name.clone().or(i.board_product.clone())),
        serial: pick(&|i| {
            i.product_serial
                .clone()
                .or(i.board_serial.clone())
                .or(i.chassis_serial.clone())
        }),
        bios_version: None,
        macs: Vec::new(),
    };
    let raw = json!({
        "device_id": {
            "device_id": device.device_id,
            "device_revision": device.device_revision,
            "firmware": device.firmware,
            "ipmi_version": device.ipmi_version,
            "manufacturer_id": device.manufacturer_id,
            "product_id": device.product_id,
        },
        "system_guid": guid,
        "chassis": {
            "power_on": chassis.power_on,
            "power_fault": chassis.power_fault,
            "restore_policy": chassis.restore_policy,
        },
        "boot_flags": boot.map(|b| json!({
            "valid": b.valid,
            "persistent": b.persistent,
            "efi": b.efi,
            "device": format!("{:?}", b.device),
        })),
        "fru": fru.map(|(i, len)| json!({
            "bytes": len,
            "chassis_part_number": i.chassis_part_number,
            "chassis_serial": i.chassis_serial,
            "board_manufacturer": i.board_manufacturer,
            "board_product": i.board_product,
            "board_serial": i.board_serial,
            "board_part_number": i.board_part_number,
            "product_manufacturer": i.product_manufacturer,
            "product_name": i.product_name,
            "product_part_number": i.product_part_number,
            "product_version": i.product_version,
            "product_serial": i.product_serial,
            "asset_tag": i.asset_tag,
        })),
        "cipher_suite": bmc.session.suite().id(),
    });
    Ok((facts, raw))
}

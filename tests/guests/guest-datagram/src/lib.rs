//! Test guest `datagram`: an oob driver declaring node-BMC access that talks
//! UDP to the node's BMC through the host's `datagram` interface.
//!
//! - `power_on_node`: `exchange`s `ping` on the port in setting `port` (else
//!   the node's `oob.port`, else 623) and reports the answer as a status
//!   message `answer: <text>`; a failure is the action's error.
//! - `power_off_node`: sends setting `count` (default 1) datagrams with
//!   `send`, then reads one with `receive`, reporting `sent N` and the answer.
//! - `power_cycle_node`: a datagram of setting `bytes` bytes.

use drydock_sdk::prelude::*;

struct DatagramProbe;

impl Driver for DatagramProbe {
    const NAME: &'static str = "datagram";
    const VERSION: &'static str = "0.1.0";
    const VENDOR: &'static str = "Drydock tests";
    const DESCRIPTION: &'static str = "UDP to the node's BMC";
    const OOB_TYPES: &'static [&'static str] = &["datagram"];
    const NODE_BMC: bool = true;
}

fn port(ctx: &Ctx, node: &Node) -> Result<u16> {
    Ok(ctx
        .config_parse("port")?
        .or(node.oob.port)
        .unwrap_or(datagram::IPMI_PORT))
}

impl OobDriver for DatagramProbe {
    fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
        let answer = datagram::exchange(port(ctx, node)?, b"ping", Duration::from_secs(2))?;
        ctx.status(
            format!("answer: {}", String::from_utf8_lossy(&answer)),
            false,
        );
        Ok(())
    }

    fn power_off_node(ctx: &Ctx, node: &Node) -> Result<()> {
        let port = port(ctx, node)?;
        let count: u32 = ctx.config_or("count", 1)?;
        for i in 0..count {
            datagram::send(port, format!("n{i}").as_bytes())?;
        }
        ctx.status(format!("sent {count}"), false);
        let answer = datagram::receive(port, Duration::from_secs(2))?;
        ctx.status(
            format!("answer: {}", String::from_utf8_lossy(&answer)),
            false,
        );
        Ok(())
    }

    fn power_cycle_node(ctx: &Ctx, node: &Node) -> Result<()> {
        let bytes: usize = ctx.config_or("bytes", 1)?;
        datagram::send(port(ctx, node)?, &vec![7u8; bytes])?;
        Ok(())
    }
}

drydock_sdk::export_driver!(DatagramProbe: oob);

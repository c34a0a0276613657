//! Test guest: a plain `wasi:cli` command. It exports no Drydock interface;
//! the host must refuse it as a driver.

fn main() {
    println!("hi");
}

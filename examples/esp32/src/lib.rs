//! Bring-up shared by the sansock firmware binaries in `src/bin`: board and heap, the
//! esp-rtos scheduler, WiFi station, DHCP. A new binary (say `ws-client`) is one more file in
//! `src/bin` that calls [`net::init_board`] and [`net::wifi_dhcp`] and then does its own thing
//! with the returned [`embassy_net::Stack`].
//!
//! Build-time settings, read with `option_env!` (defaults keep CI builds working):
//! `WIFI_SSID`, `WIFI_PASSWORD` (empty: open network), `SERVER_ADDR` (`a.b.c.d:port`).
#![no_std]

pub mod net;

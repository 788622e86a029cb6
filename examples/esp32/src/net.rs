//! Board, scheduler, WiFi and DHCP bring-up.

use core::net::SocketAddrV4;

use embassy_executor::Spawner;
use embassy_net::{Config, DhcpConfig, Runner, Stack, StackResources};
use embassy_time::{Duration, Timer};
use esp_hal::clock::CpuClock;
use esp_hal::peripherals::{FROM_CPU_INTR0, Peripherals, TIMG0, WIFI};
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_println::println;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, ControllerConfig, Interface, Password, Ssid,
    WifiController,
};
use static_cell::StaticCell;

/// WiFi network to join (build-time `WIFI_SSID`).
pub const WIFI_SSID: &str = match option_env!("WIFI_SSID") {
    Some(ssid) => ssid,
    None => "sansock-test",
};
/// WPA2/WPA3-personal password (build-time `WIFI_PASSWORD`); empty means an open network.
pub const WIFI_PASSWORD: &str = match option_env!("WIFI_PASSWORD") {
    Some(password) => password,
    None => "",
};
/// The peer the example binaries talk to (build-time `SERVER_ADDR`, `a.b.c.d:port`). The
/// default is a documentation address (TEST-NET-1): set it for a real run.
pub const SERVER_ADDR: &str = match option_env!("SERVER_ADDR") {
    Some(addr) => addr,
    None => "192.0.2.1:7000",
};

/// Sockets the stack can hold at once: DHCP plus a few TCP connections.
pub const SOCKETS: usize = 4;

/// [`SERVER_ADDR`], parsed.
///
/// # Panics
/// If `SERVER_ADDR` is not `a.b.c.d:port`.
pub fn server_addr() -> SocketAddrV4 {
    match SERVER_ADDR.parse() {
        Ok(addr) => addr,
        Err(_) => panic!("SERVER_ADDR must be a.b.c.d:port"),
    }
}

/// Initializes esp-hal at full CPU speed and the heap esp-radio needs.
pub fn init_board() -> Peripherals {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // esp-radio allocates its buffers (and the WiFi blobs their state) on this heap.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 36 * 1024);
    peripherals
}

/// Starts the esp-rtos scheduler and WiFi, joins [`WIFI_SSID`], runs DHCP, and returns the
/// network stack once it has an IPv4 address. Spawns two tasks: the WiFi connection keeper
/// (reconnects after a drop) and the embassy-net runner.
pub async fn wifi_dhcp(
    spawner: Spawner,
    timg0: TIMG0<'static>,
    sw_interrupt: FROM_CPU_INTR0<'static>,
    wifi: WIFI<'static>,
) -> Stack<'static> {
    // The scheduler must run before the radio starts.
    let timg0 = TimerGroup::new(timg0);
    esp_rtos::start(timg0.timer0, sw_interrupt);

    let station = StationConfig::default()
        .with_ssid(Ssid::try_from(WIFI_SSID).expect("WIFI_SSID: at most 32 bytes"))
        .with_authentication(if WIFI_PASSWORD.is_empty() {
            AuthenticationMethodConfig::Open
        } else {
            AuthenticationMethodConfig::WpaWpa2Personal(
                Password::try_from(WIFI_PASSWORD).expect("WIFI_PASSWORD: at most 64 bytes"),
            )
        });
    let controller = WifiController::new(
        wifi,
        ControllerConfig::default().with_initial_config(WifiConfig::Station(station)),
    )
    .expect("start WiFi");
    let interface = Interface::station();

    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        interface,
        Config::dhcpv4(DhcpConfig::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );

    spawner.spawn(keep_connected(controller).expect("keep_connected task is free"));
    spawner.spawn(run_network(runner).expect("run_network task is free"));

    println!("wifi: joining {:?}", WIFI_SSID);
    stack.wait_link_up().await;
    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        println!("net: got {} (gateway {:?})", config.address, config.gateway);
    }
    stack
}

/// Joins the access point, and joins it again whenever the connection drops.
#[embassy_executor::task]
async fn keep_connected(mut controller: WifiController<'static>) {
    loop {
        match controller.connect_async().await {
            Ok(info) => {
                println!("wifi: connected, channel {}", info.channel);
                let lost = controller.wait_for_disconnect_async().await;
                println!("wifi: disconnected: {:?}", lost);
            }
            Err(e) => println!("wifi: connect failed: {:?}", e),
        }
        Timer::after(Duration::from_secs(5)).await;
    }
}

/// Drives embassy-net (DHCP, ARP, TCP timers, the WiFi interface).
#[embassy_executor::task]
async fn run_network(mut runner: Runner<'static, Interface>) -> ! {
    runner.run().await
}

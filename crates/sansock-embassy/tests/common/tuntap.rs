//! An embassy-net stack on a Linux TAP device, talking to the host kernel's TCP stack.
//!
//! Everything happens inside a throw-away network namespace: the test binary re-executes
//! itself under `unshare -n` (new, empty network namespace that disappears with the process),
//! brings `lo` up, creates the TAP device [`TAP_NAME`] with `embassy-net-tuntap`, gives the
//! kernel side [`HOST_IP`] and the embassy-net stack [`STACK_IP`]. No packet can leave the
//! namespace. Requires root (`CAP_SYS_ADMIN` for `unshare`, `CAP_NET_ADMIN` for the TAP) and
//! `/dev/net/tun`; without them [`netns_test`] prints why and skips.
//!
//! ```ignore
//! #[test]
//! fn my_interop_test() {
//!     tuntap::netns_test("my_interop_test", || {
//!         let tap = tuntap::open_tap();
//!         let listener = std::net::TcpListener::bind((tuntap::HOST_IP, 0)).unwrap();
//!         // ... serve on a std thread ...
//!         tuntap::run_on_tap(tap, |stack| async move { /* embassy-net client */ });
//!     });
//! }
//! ```

use std::future::Future;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use embassy_futures::select::{Either, select};
use embassy_net::{Config, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;

/// Name of the TAP interface inside the namespace.
pub const TAP_NAME: &str = "sansock0";
/// The host kernel's address on the TAP interface (inside the throw-away namespace only).
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The embassy-net stack's address (inside the throw-away namespace only).
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Prefix length of the TAP subnet.
pub const PREFIX_LEN: u8 = 24;
/// How long the re-executed child may run before it is killed.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Set (to the test name) in the environment of the re-executed child.
const CHILD_ENV: &str = "SANSOCK_NETNS_CHILD";

/// Runs `body` inside a fresh network namespace, or skips the test with a message saying why.
///
/// `test_name` must be the test's full libtest name (for a test function at the top of an
/// integration test file, just the function name): the binary re-executes itself as
/// `unshare -n -- <test binary> <test_name> --exact --nocapture --test-threads=1`, and in that
/// child `body` runs. The parent fails if the child fails, times out after
/// [`CHILD_TIMEOUT`], or did not run the test.
pub fn netns_test(test_name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(test_name) {
        run_cmd("ip", &["link", "set", "lo", "up"]);
        body();
        return;
    }
    if let Err(why) = netns_available() {
        eprintln!("SKIPPED {test_name}: {why}");
        return;
    }

    let exe = std::env::current_exe().expect("path of the test binary");
    let mut child = Command::new("unshare")
        .arg("-n")
        .arg("--")
        .arg(&exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start `unshare -n` (util-linux)");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the netns child") {
            break status;
        }
        if started.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let out = child
                .wait_with_output()
                .expect("collect the killed child's output");
            print_child(&out);
            panic!("{test_name}: the netns child did not finish within {CHILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child
        .wait_with_output()
        .expect("collect the child's output");
    print_child(&out);
    assert!(
        status.success(),
        "{test_name} failed inside the network namespace ({status})"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("test {test_name} ... ok")),
        "the netns child did not run `{test_name}` (wrong test name?)"
    );
}

/// Why a network namespace with a TAP device cannot be made here, if it cannot.
pub fn netns_available() -> Result<(), String> {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        return Err(format!(
            "cannot open /dev/net/tun ({e}); the TAP test needs root and the tun module"
        ));
    }
    match Command::new("unshare")
        .args(["-n", "--", "ip", "link", "set", "lo", "up"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Err(format!(
            "cannot run `unshare` / `ip` (util-linux, iproute2): {e}"
        )),
        Ok(out) if !out.status.success() => Err(format!(
            "`unshare -n` or `ip` failed ({}): {} (needs root / CAP_SYS_ADMIN)",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => Ok(()),
    }
}

/// Creates the TAP device [`TAP_NAME`] and configures the kernel side ([`HOST_IP`]/24, up).
///
/// Call only inside [`netns_test`]'s body: outside a private namespace it would change the
/// host's network configuration (it refuses to, unless the child marker is set).
pub fn open_tap() -> TunTapDevice {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "open_tap() outside netns_test(): refusing to configure the host's network"
    );
    let device = TunTapDevice::new(TAP_NAME).expect("create the TAP device");
    let cidr = format!("{HOST_IP}/{PREFIX_LEN}");
    run_cmd("ip", &["addr", "add", &cidr, "dev", TAP_NAME]);
    run_cmd("ip", &["link", "set", TAP_NAME, "up"]);
    device
}

/// Runs `f(stack)` with an embassy-net stack on `tap` ([`STACK_IP`]/24), on a harness executor
/// thread with [`super::DEFAULT_TIMEOUT`].
pub fn run_on_tap<F, Fut, T>(tap: TunTapDevice, f: F) -> T
where
    F: FnOnce(Stack<'static>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    super::run_on_executor(super::DEFAULT_TIMEOUT, move || async move {
        let config = Config::ipv4_static(StaticConfigV4 {
            address: Ipv4Cidr::new(STACK_IP, PREFIX_LEN),
            gateway: None,
            dns_servers: Default::default(),
        });
        let resources: &'static mut StackResources<{ super::SOCKETS }> =
            Box::leak(Box::new(StackResources::new()));
        let (stack, mut runner) = embassy_net::new(tap, config, resources, 0x7a9_0001);
        let test = async move {
            stack.wait_config_up().await;
            f(stack).await
        };
        match select(test, runner.run()).await {
            Either::First(value) => value,
            Either::Second(never) => match never {},
        }
    })
}

fn run_cmd(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn print_child(out: &std::process::Output) {
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}

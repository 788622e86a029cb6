//! Host test harness: real embassy-net stacks inside one test process.
//!
//! * [`run_pair`]: two embassy-net stacks (server at [`SERVER_IP`], client at [`CLIENT_IP`])
//!   joined in memory by a pair of `embassy-net-driver-channel` drivers, running on an
//!   `embassy-executor` thread executor with `embassy-time`'s std driver. No privileges, no
//!   kernel networking: every frame is copied from one driver's TX queue to the other's RX
//!   queue by two pump futures.
//! * [`run_on_executor`]: the same executor thread and timeout for any future.
//! * [`spawn`]: spawn more tasks (an accept loop, a second client) next to the test future.
//! * [`tuntap`]: one embassy-net stack on a TAP device, talking to the host kernel's TCP stack
//!   inside a throw-away network namespace (needs root and `/dev/net/tun`; skips otherwise).
//!
//! Every run has a timeout: a test that hangs fails with a message instead of blocking.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, unreachable_pub)]
// Test support reports skips and child-process output on the console.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod tuntap;
pub mod ws;

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use embassy_executor::raw::TaskStorage;
use embassy_executor::{Executor, Spawner};
use embassy_futures::join::join4;
use embassy_futures::select::{Either, select};
use embassy_net::{Config, Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_driver_channel as ch;
use embassy_net_driver_channel::driver::{HardwareAddress, LinkState};

/// Ethernet frame size of the in-memory link (1500-byte IP MTU plus the 14-byte header).
pub const MTU: usize = 1514;
/// Frames queued per direction in each channel driver.
const QUEUE: usize = 4;
/// Sockets each in-memory stack can hold at once.
pub const SOCKETS: usize = 8;

/// Address of the "server" stack of [`run_pair`] (in-process only, never on a real network).
pub const SERVER_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
/// Address of the "client" stack of [`run_pair`] (in-process only, never on a real network).
pub const CLIENT_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
/// Prefix length of the in-memory subnet.
pub const PREFIX_LEN: u8 = 24;

/// Timeout of [`run_pair`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra wall-clock time granted past the embassy-time timeout before the executor thread
/// is declared stuck (a blocking call inside a future stops embassy-time's timeout too).
const STUCK_GRACE: Duration = Duration::from_secs(5);

thread_local! {
    static SPAWNER: Cell<Option<Spawner>> = const { Cell::new(None) };
}

/// Runs the future made by `make` on a fresh `embassy-executor` thread executor and returns
/// its output.
///
/// Panics if it has not finished after `timeout` (embassy-time), or if the executor thread is
/// stuck `timeout` + 5 s of wall-clock time; a panic inside the future is passed on to the
/// caller with its own message. The executor thread ends when the future does, and every task
/// that [`spawn`] started on it is abandoned then.
pub fn run_on_executor<F, Fut, T>(timeout: Duration, make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (result_tx, result_rx) = mpsc::channel::<Outcome<T>>();
    let panic_tx = result_tx.clone();
    let embassy_timeout = embassy_time::Duration::from_micros(
        u64::try_from(timeout.as_micros()).expect("timeout fits in u64 microseconds"),
    );
    let thread = std::thread::Builder::new()
        .name("embassy-executor".into())
        .spawn(move || {
            // `run_until` needs `&'static mut`: one small leak per run.
            let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
            let done = Rc::new(Cell::new(false));
            let done_task = done.clone();
            // A panic in any task unwinds out of the executor's poll; the task's future (and
            // the sender it holds) is never dropped, so report the panic from here.
            let run = std::panic::catch_unwind(AssertUnwindSafe(move || {
                executor.run_until(
                    move |spawner| {
                        SPAWNER.set(Some(spawner));
                        spawn(async move {
                            let outcome =
                                match embassy_time::with_timeout(embassy_timeout, make()).await {
                                    Ok(value) => Outcome::Done(value),
                                    Err(embassy_time::TimeoutError) => Outcome::TimedOut,
                                };
                            // The receiver is gone only if the caller already gave up.
                            let _ = result_tx.send(outcome);
                            done_task.set(true);
                        });
                    },
                    move || done.get(),
                )
            }));
            SPAWNER.set(None);
            if let Err(panic) = run {
                let _ = panic_tx.send(Outcome::Panicked(panic));
            }
        })
        .expect("spawn the executor thread");

    match result_rx.recv_timeout(timeout + STUCK_GRACE) {
        Ok(Outcome::Done(value)) => {
            thread.join().expect("executor thread ended cleanly");
            value
        }
        Ok(Outcome::TimedOut) => {
            panic!("harness timeout: the test future did not finish within {timeout:?}")
        }
        Ok(Outcome::Panicked(panic)) => std::panic::resume_unwind(panic),
        Err(RecvTimeoutError::Disconnected) => panic!("executor thread ended without a result"),
        Err(RecvTimeoutError::Timeout) => panic!(
            "harness timeout: the executor thread is stuck (a blocking call inside a future?) \
             after {:?}",
            timeout + STUCK_GRACE
        ),
    }
}

/// What the executor thread reports back.
enum Outcome<T> {
    Done(T),
    TimedOut,
    Panicked(Box<dyn Any + Send>),
}

/// Spawns `fut` as a new task on the executor of the current harness thread.
///
/// Only callable from code running under [`run_on_executor`] / [`run_pair`] (it panics
/// elsewhere). The task is never joined: when the test future finishes, the executor stops
/// and the task is abandoned. Use it for servers or background loops; to wait for a result,
/// prefer `embassy_futures::join`.
pub fn spawn<F: Future<Output = ()> + 'static>(fut: F) {
    let spawner = SPAWNER
        .get()
        .expect("common::spawn called outside a harness executor thread");
    // A fresh storage per task: no task pool to exhaust, and generic futures are fine.
    let storage: &'static TaskStorage<F> = Box::leak(Box::new(TaskStorage::new()));
    let token = storage.spawn(|| fut).expect("a fresh task storage is free");
    spawner.spawn(token);
}

/// Runs `f(server_stack, client_stack)` on two in-memory embassy-net stacks and returns its
/// output, with [`DEFAULT_TIMEOUT`].
///
/// The server stack has [`SERVER_IP`], the client stack [`CLIENT_IP`] (static, /24, link up,
/// configured before `f` starts). Both stacks and their runners live until `f`'s future ends.
pub fn run_pair<F, Fut, T>(f: F) -> T
where
    F: FnOnce(Stack<'static>, Stack<'static>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    run_pair_timeout(DEFAULT_TIMEOUT, f)
}

/// [`run_pair`] with an explicit timeout.
pub fn run_pair_timeout<F, Fut, T>(timeout: Duration, f: F) -> T
where
    F: FnOnce(Stack<'static>, Stack<'static>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    run_on_executor(timeout, move || async move {
        let (server, mut server_runner, server_wire) =
            channel_stack([0x02, 0, 0, 0, 0, 0x01], SERVER_IP, 0x5e4e_0001);
        let (client, mut client_runner, client_wire) =
            channel_stack([0x02, 0, 0, 0, 0, 0x02], CLIENT_IP, 0x5e4e_0002);

        let (server_state, server_rx, server_tx) = server_wire.split();
        let (client_state, client_rx, client_tx) = client_wire.split();
        server_state.set_link_state(LinkState::Up);
        client_state.set_link_state(LinkState::Up);

        let network = join4(
            server_runner.run(),
            client_runner.run(),
            pump(server_tx, client_rx),
            pump(client_tx, server_rx),
        );
        let test = async move {
            server.wait_config_up().await;
            client.wait_config_up().await;
            f(server, client).await
        };
        match select(test, network).await {
            Either::First(value) => value,
            Either::Second(never) => match never.0 {},
        }
    })
}

/// An embassy-net stack on one end of an in-memory channel driver; the returned
/// `ch::Runner` is the "wire" side to pump frames in and out of.
fn channel_stack(
    mac: [u8; 6],
    ip: Ipv4Address,
    seed: u64,
) -> (
    Stack<'static>,
    embassy_net::Runner<'static, ch::Device<'static, MTU>>,
    ch::Runner<'static, MTU>,
) {
    let state: &'static mut ch::State<MTU, QUEUE, QUEUE> = Box::leak(Box::new(ch::State::new()));
    let (wire, device) = ch::new(state, HardwareAddress::Ethernet(mac));
    let config = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ip, PREFIX_LEN),
        gateway: None,
        dns_servers: Default::default(),
    });
    let resources: &'static mut StackResources<SOCKETS> =
        Box::leak(Box::new(StackResources::new()));
    let (stack, runner) = embassy_net::new(device, config, resources, seed);
    (stack, runner, wire)
}

/// Moves every frame one stack transmits into the other stack's receive queue, in order,
/// without loss.
async fn pump(mut from: ch::TxRunner<'static, MTU>, mut to: ch::RxRunner<'static, MTU>) -> ! {
    loop {
        let frame = from.tx_buf().await;
        let slot = to.rx_buf().await;
        let len = frame.len();
        slot[..len].copy_from_slice(frame);
        to.rx_done(len);
        from.tx_done();
    }
}

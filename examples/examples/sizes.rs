//! Prints the in-memory size of the connection types (for the memory notes in the docs).
#![allow(clippy::print_stdout)]

fn main() {
    println!(
        "sansock::Connection (server): {} B",
        std::mem::size_of::<sansock::Connection>()
    );
    println!(
        "sansock_tokio::WebSocket<TcpStream>: {} B",
        std::mem::size_of::<sansock_tokio::WebSocket<tokio::net::TcpStream>>()
    );
    let fut = async {
        let (s, _) = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .accept()
            .await
            .unwrap();
        let mut ws = sansock_tokio::accept(s).await.unwrap();
        while let Some(Ok(m)) = ws.recv().await {
            let _ = ws.send(m).await;
        }
    };
    println!("echo task future: {} B", std::mem::size_of_val(&fut));
}

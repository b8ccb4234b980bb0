use std::time::Duration;

use hello::Host;
use hello::pb::{Greeter, GreeterClient, GreeterServer, HelloRequest};
use protowright::Transport;
use protowright_sim::{Cases, Schedule, Sim, Space, check};

#[test]
fn every_greeting_is_answered_correctly_under_faults() {
    let faults = Space::new(&["server", "client"], Duration::from_secs(3)).restart(&["server"]);
    Cases::new(Schedule::strategy(faults), 16).run(|case| {
        Sim::new(case.seed)
            .schedule(case.schedule)
            .host("server", |ctx| async move {
                let server = ctx.server(Transport::Udp, 9000).await?;
                server.serve(GreeterServer::new(Host)).await;
                Ok(())
            })
            .client("client", |ctx| async move {
                let client = ctx.client(Transport::Udp, ctx.addr("server", 9000)).await?;
                let greeter = GreeterClient::new(client).with_timeout(Duration::from_millis(500));
                for n in 0..60 {
                    let name = format!("guest {n}");
                    let call = ctx.call(Some(Duration::from_millis(500)));
                    let reply = greeter.say_hello(HelloRequest { name: name.clone() }).await;
                    call.outcome(&reply, |reply| reply.message == format!("Hello, {name}!"));
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                Ok(())
            })
            .check(check::calls())
            .run()
    });
}

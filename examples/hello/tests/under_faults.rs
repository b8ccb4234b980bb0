use hello::{Host, pb::*};
use protowright::Transport::Udp;
use protowright_sim::{Cases, Schedule, Sim, Space, check};
use std::time::Duration;

#[test]
fn every_greeting_is_answered_correctly_under_faults() {
    let faults = Space::new(&["server", "client"], Duration::from_secs(3)).restart(&["server"]);
    Cases::new(Schedule::strategy(faults), 16).run(|case| {
        Sim::for_case(case)
            .host("server", |ctx| async move {
                ctx.serve(Udp, 9000, GreeterServer::new(Host)).await
            })
            .client("client", |ctx| async move {
                let client = ctx.client(Udp, ctx.addr("server", 9000)).await?;
                let greeter = GreeterClient::new(client).with_timeout(Duration::from_millis(500));
                for n in 0..60 {
                    let name = format!("guest {n}");
                    let call = ctx.call(Some(Duration::from_millis(500)));
                    let reply = greeter.say_hello(HelloRequest { name: name.clone() }).await;
                    call.outcome(&reply, |r| r.message == format!("Hello, {name}!"));
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                Ok(())
            })
            .check(check::calls())
            .run()
    });
}

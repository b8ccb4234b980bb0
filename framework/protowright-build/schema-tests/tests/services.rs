//! A generated service runs end to end in memory: the user's implementation
//! behind the generated dispatcher, called through the generated client.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use protowright::rpc::{self, Code, Service, Status};
use protowright_schema_tests::showcase::common::Id;
use protowright_schema_tests::showcase::inventory::Item;
use protowright_schema_tests::showcase::store::{
    PriceChange, Purchase, Receipt, Store, StoreClient, StoreServer, store_methods,
};

/// A store with prices in memory.
#[derive(Default)]
struct Shop {
    prices: Mutex<BTreeMap<u64, u64>>,
}

impl Shop {
    fn price_of(&self, id: &Option<Id>) -> Result<(u64, u64), Status> {
        let id = id
            .ok_or_else(|| Status::invalid_argument("an item id is required"))?
            .value;
        let prices = self.prices.lock().unwrap_or_else(|e| e.into_inner());
        let price = prices.get(&id).copied();
        price
            .map(|p| (id, p))
            .ok_or_else(|| Status::new(Code::NotFound, format!("no item {id}")))
    }
}

impl Store for Shop {
    async fn get_item(&self, request: Id) -> Result<Item, Status> {
        let (id, _) = self.price_of(&Some(request))?;
        Ok(Item {
            id: Some(Id { value: id }),
            name: format!("item {id}"),
            ..Default::default()
        })
    }

    async fn set_price(&self, request: PriceChange) -> Result<(), Status> {
        let id = request
            .item
            .ok_or_else(|| Status::invalid_argument("an item id is required"))?;
        self.prices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.value, request.price);
        Ok(())
    }

    async fn buy(&self, request: Purchase) -> Result<Receipt, Status> {
        let (_, price) = self.price_of(&request.item)?;
        let item = self.get_item(request.item.unwrap_or_default()).await?;
        Ok(Receipt {
            total: price * u64::from(request.quantity),
            item: Some(item),
        })
    }

    async fn health(&self, _request: ()) -> Result<(), Status> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    }
}

/// Code written against the generated trait, not a concrete type.
async fn stock_and_buy(store: &impl Store) -> Result<u64, Status> {
    store
        .set_price(PriceChange {
            item: Some(Id { value: 5 }),
            price: 30,
        })
        .await?;
    let receipt = store
        .buy(Purchase {
            item: Some(Id { value: 5 }),
            quantity: 3,
        })
        .await?;
    Ok(receipt.total)
}

#[tokio::test(start_paused = true)]
async fn the_typed_client_calls_the_implementation_through_the_protocol() {
    let client = StoreClient::in_memory(Shop::default());
    client
        .set_price(PriceChange {
            item: Some(Id { value: 1 }),
            price: 12,
        })
        .await
        .unwrap();
    let item = client.get_item(Id { value: 1 }).await.unwrap();
    assert_eq!(item.name, "item 1");
    let receipt = client
        .buy(Purchase {
            item: Some(Id { value: 1 }),
            quantity: 2,
        })
        .await
        .unwrap();
    assert_eq!(receipt.total, 24);
}

#[tokio::test(start_paused = true)]
async fn the_same_code_runs_against_the_implementation_and_the_client() {
    let direct = stock_and_buy(&Shop::default()).await;
    let remote = stock_and_buy(&StoreClient::in_memory(Shop::default())).await;
    assert_eq!(direct, Ok(90));
    assert_eq!(remote, Ok(90));
}

#[tokio::test(start_paused = true)]
async fn a_status_from_the_implementation_reaches_the_client_intact() {
    let client = StoreClient::in_memory(Shop::default());
    let status = client.get_item(Id { value: 404 }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "no item 404");
}

#[tokio::test(start_paused = true)]
async fn a_client_timeout_is_a_deadline_exceeded_status() {
    let client = StoreClient::in_memory(Shop::default()).with_timeout(Duration::from_secs(1));
    let status = client.health(()).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_refuses_an_unknown_method_id() {
    let server = StoreServer::new(Shop::default());
    let status = server
        .call(0xdead_beef, Default::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(
        status.message().contains("showcase.store.Store"),
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_refuses_an_undecodable_request() {
    let server = StoreServer::new(Shop::default());
    let garbage = protowright::__private::Bytes::from_static(&[0xff, 0xff, 0xff]);
    let status = server
        .call(store_methods::BUY.id, garbage)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("/showcase.store.Store/Buy"),
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_works_over_any_channel() {
    // The generic constructor: here over an explicitly configured session.
    let config = rpc::Config {
        max_in_flight: 4,
        ..rpc::Config::default()
    };
    let channel = protowright::memory::connect(StoreServer::new(Shop::default()), config);
    let client = StoreClient::new(channel);
    assert_eq!(stock_and_buy(&client).await, Ok(90));
    assert_eq!(client.channel().peer(), "in-memory server");
}

#[test]
fn idempotency_levels_from_the_schema_flag_methods_for_retry() {
    // GET_ITEM is NO_SIDE_EFFECTS, SET_PRICE IDEMPOTENT, BUY has no level.
    let flags = [
        store_methods::GET_ITEM,
        store_methods::SET_PRICE,
        store_methods::BUY,
    ]
    .map(|method| method.idempotent);
    assert_eq!(flags, [true, true, false]);
}

#[test]
fn method_ids_derive_from_the_path_unless_pinned() {
    assert_eq!(store_methods::HEALTH.id, 1, "pinned in the schema");
    for method in [
        store_methods::GET_ITEM,
        store_methods::SET_PRICE,
        store_methods::BUY,
    ] {
        // The build step and the runtime derive ids the same way.
        assert_eq!(
            method.id,
            protowright::schema::method_id(method.path),
            "{}",
            method.path
        );
    }
    assert_eq!(store_methods::ALL.len(), 4);
}

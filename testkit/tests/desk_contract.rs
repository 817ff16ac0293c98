//! The desk store on DynamoDB (moto): conversations enter their app's waiting list when the user
//! writes, accept is atomic and bounded by capacity under many concurrent agents, release and close
//! move them between lists, and a closed conversation reopens on the user's next message.
//!
//! Skipped without `AWS_ENDPOINT_URL`; run with
//! `infra/local/with-moto.sh cargo test -p testkit --test desk_contract`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use shared::desk::{self, Agent, AgentStatus, DeskEvent, DeskList, Role};
use shared::ids::ConversationKey;
use shared::ports::desk::{AcceptOutcome, Actor, DeskStore};
use shared::ports::{MessageStore, StoreError};
use shared::records::Direction;

mod common;

use common::{T0, push, store};

const APP: &str = "wechat#wx_app_1";

fn agent(i: usize, capacity: u32) -> Agent {
    Agent {
        id: format!("agent-{i:02}"),
        name: format!("Agent {i}"),
        apps: [(APP.to_owned(), Role::Agent)].into(),
        capacity,
        active: 0,
        auto_accept: false,
        status: AgentStatus::Online,
        heartbeat_at: 0,
    }
}

fn key(open_id: &str) -> ConversationKey {
    push(open_id, T0, T0, "1").key().conversation
}

fn waiting_list() -> String {
    DeskList::Waiting(&key("x")).value()
}

async fn user_writes<S: MessageStore>(s: &S, open_id: &str, t: u64, msg_id: &str) {
    store(s, &push(open_id, t, t, msg_id)).await;
}

fn by(agent: &str, now_secs: u64) -> Actor<'_> {
    Actor {
        agent,
        now_ms: now_secs * 1000,
    }
}

#[tokio::test]
async fn twenty_agents_accepting_ten_conversations_at_once() {
    let Some(store) = common::dynamodb().await else {
        return;
    };
    let store = Arc::new(store);
    for c in 0..10 {
        user_writes(
            &*store,
            &format!("oUser{c}"),
            T0 + c,
            &format!("{}", 100 + c),
        )
        .await;
    }
    let waiting = store.list(&waiting_list(), 100).await.unwrap();
    assert_eq!(waiting.len(), 10, "every new conversation waits");
    assert!(
        waiting.windows(2).all(|w| w[0].list_at <= w[1].list_at),
        "oldest first"
    );
    // Capacities 1, 2, 3, 1, 2, 3, …: 39 in all, so every conversation finds an agent.
    let capacity = |i: usize| 1 + (i % 3) as u32;
    for i in 0..20 {
        store.put_agent(&agent(i, capacity(i))).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("agent-{i:02}");
            let mut won = Vec::new();
            // Each agent walks the list from a different start, as pages do.
            for step in 0..10 {
                let c = (i + step) % 10;
                let k = key(&format!("oUser{c}"));
                match store.accept(&k, by(&id, T0 + 100)).await.unwrap() {
                    AcceptOutcome::Accepted => won.push(c),
                    AcceptOutcome::Taken { assignee } => assert!(assignee.is_some()),
                    AcceptOutcome::AtCapacity => {}
                    AcceptOutcome::NotFound => panic!("conversation {c} not found"),
                }
            }
            (id, won)
        }));
    }
    let mut owner: HashMap<usize, String> = HashMap::new();
    let mut held: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        let (id, won) = t.await.unwrap();
        for c in &won {
            assert!(
                owner.insert(*c, id.clone()).is_none(),
                "conversation {c} accepted twice"
            );
        }
        held.insert(id, won.len());
    }
    assert_eq!(
        owner.len(),
        10,
        "every conversation has exactly one assignee"
    );
    for (i, (id, n)) in held.iter().enumerate() {
        let a = store.agent(id).await.unwrap().unwrap();
        assert!(*n as u32 <= capacity(i), "{id} holds {n} > {}", capacity(i));
        assert_eq!(a.active, *n as u32, "{id}'s count matches what it won");
        let mine = store.list(&DeskList::Agent(id).value(), 100).await.unwrap();
        assert_eq!(mine.len(), *n, "{id}'s list");
        assert!(
            mine.iter()
                .all(|c| c.assignee.as_deref() == Some(id.as_str()))
        );
        assert!(mine.iter().all(|c| c.status == "active"));
    }
    assert!(store.list(&waiting_list(), 100).await.unwrap().is_empty());
    // Each conversation's timeline records exactly one acceptance, by its assignee.
    for (c, id) in &owner {
        let messages = store
            .messages(&key(&format!("oUser{c}")), None)
            .await
            .unwrap();
        let accepted: Vec<_> = messages
            .iter()
            .filter(|m| m.msg_type == DeskEvent::Accepted.as_str())
            .collect();
        assert_eq!(accepted.len(), 1, "{messages:?}");
        assert_eq!(accepted[0].direction, Direction::Desk);
        assert_eq!(accepted[0].agent.as_deref(), Some(id.as_str()));
    }
}

#[tokio::test]
async fn release_close_and_reopen_move_a_conversation_between_lists() {
    let Some(store) = common::dynamodb().await else {
        return;
    };
    store.put_agent(&agent(1, 1)).await.unwrap();
    let a = "agent-01";
    user_writes(&store, "oRelease", T0, "1").await;
    user_writes(&store, "oOther", T0 + 1, "2").await;
    let k = key("oRelease");
    assert_eq!(
        store.accept(&k, by(a, T0 + 10)).await.unwrap(),
        AcceptOutcome::Accepted
    );
    assert_eq!(
        store.accept(&key("oOther"), by(a, T0 + 11)).await.unwrap(),
        AcceptOutcome::AtCapacity,
        "capacity 1"
    );
    // The user writes again while it is active: it stays the agent's.
    user_writes(&store, "oRelease", T0 + 20, "3").await;
    let c = store.conversation(&k).await.unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.assignee.as_deref()),
        ("active", Some(a))
    );

    // Not idle yet: an idle release does nothing; a plain release puts it back.
    assert!(
        !store
            .release(&k, a, DeskEvent::IdleReleased, by("system", T0 + 60))
            .await
            .unwrap()
    );
    assert!(
        store
            .release(&k, a, DeskEvent::Released, by(a, T0 + 61))
            .await
            .unwrap()
    );
    assert_eq!(store.agent(a).await.unwrap().unwrap().active, 0);
    let waiting = store.list(&waiting_list(), 10).await.unwrap();
    assert_eq!(waiting.len(), 2);
    assert!(
        !store
            .release(&k, a, DeskEvent::Released, by(a, T0 + 62))
            .await
            .unwrap()
    );

    // Accepted again, then idle for 30 minutes: the sweep releases it.
    assert_eq!(
        store.accept(&k, by(a, T0 + 100)).await.unwrap(),
        AcceptOutcome::Accepted
    );
    let later = T0 + 100 + desk::IDLE_SECS;
    assert!(
        store
            .release(&k, a, DeskEvent::IdleReleased, by("system", later))
            .await
            .unwrap()
    );

    // Closed from waiting; the next message reopens it.
    assert!(store.close(&k, None, by(a, later + 1)).await.unwrap());
    let c = store.conversation(&k).await.unwrap().unwrap();
    assert_eq!((c.status.as_str(), c.assignee), ("closed", None));
    assert_eq!(
        store
            .list(&DeskList::Closed(&k).value(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        !store.close(&k, None, by(a, later + 2)).await.unwrap(),
        "already closed"
    );
    user_writes(&store, "oRelease", later + 10, "4").await;
    let c = store.conversation(&k).await.unwrap().unwrap();
    assert_eq!(c.status, "waiting", "reopened by the user's message");
    assert!(
        store
            .list(&DeskList::Closed(&k).value(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let events: Vec<String> = store
        .messages(&k, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Desk)
        .map(|m| m.msg_type)
        .collect();
    assert_eq!(
        events,
        [
            "accepted",
            "released",
            "accepted",
            "idle_released",
            "closed"
        ]
    );
    // Closed while active releases the agent's slot.
    assert_eq!(
        store.accept(&k, by(a, later + 20)).await.unwrap(),
        AcceptOutcome::Accepted
    );
    assert!(store.close(&k, Some(a), by(a, later + 30)).await.unwrap());
    assert_eq!(store.agent(a).await.unwrap().unwrap().active, 0);
}

#[tokio::test]
async fn memberships_follow_the_profile() {
    let Some(store) = common::dynamodb().await else {
        return;
    };
    let mut a = agent(7, 3);
    a.apps.insert("wechat#wx_other".into(), Role::Admin);
    store.put_agent(&a).await.unwrap();
    store.heartbeat(&a.id, AgentStatus::Away, T0).await.unwrap();
    let read = store.agent(&a.id).await.unwrap().unwrap();
    assert_eq!(read.apps, a.apps);
    assert_eq!((read.status, read.heartbeat_at), (AgentStatus::Away, T0));
    assert_eq!(store.members("wechat#wx_other").await.unwrap().len(), 1);
    a.capacity = 4;
    store.put_agent(&a).await.unwrap();
    let read = store.agent(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (read.capacity, read.status),
        (4, AgentStatus::Away),
        "status kept"
    );
    // Taking an app away is refused, and the membership stays.
    let mut fewer = a.clone();
    fewer.apps.remove("wechat#wx_other");
    assert!(matches!(
        store.put_agent(&fewer).await,
        Err(StoreError::Contention(_))
    ));
    assert_eq!(store.members("wechat#wx_other").await.unwrap().len(), 1);
    // Two admins adding the same agent from one read: the second is refused, nothing is lost.
    let stale = store.agent(&a.id).await.unwrap().unwrap();
    let mut first = stale.clone();
    first.apps.insert("wechat#wx_x".into(), Role::Agent);
    store.put_agent(&first).await.unwrap();
    let mut second = stale;
    second.apps.insert("wechat#wx_z".into(), Role::Agent);
    assert!(matches!(
        store.put_agent(&second).await,
        Err(StoreError::Contention(_))
    ));
    let read = store.agent(&a.id).await.unwrap().unwrap();
    assert!(read.apps.contains_key("wechat#wx_x") && !read.apps.contains_key("wechat#wx_z"));
    assert!(store.members("wechat#wx_z").await.unwrap().is_empty());
    assert!(
        store
            .heartbeat("nobody", AgentStatus::Online, T0)
            .await
            .is_err()
    );
}

//! Audit queries against a brute-force filter of the same events, for
//! random logs appended in random batches (so index entries hold from one
//! to many seqs, and windows start and end inside them), random filters,
//! windows, orders and page sizes. `stride store verify` must pass on every
//! such log too.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use stride_log::event::condition::Condition;
use stride_log::event::{
    Actor, AppId, AppScaled, CallbackSubscribed, Envelope, Event, Seq, TaskExpunged, TaskId,
    TaskKillRequested, TaskStatusRecorded,
};
use stride_log::store::{EventLog, LogWriter};
use stride_server::audit::{self, AuditQuery, Bound, Order};
use stride_server::stream::AppMatch;

const APPS: [&str; 4] = ["/prod/a", "/prod/b", "/dev/a", "/dev/c"];
const TASKS: [&str; 5] = ["prod_a.1", "prod_a.2", "prod_b.1", "dev_a.1", "dev_c.1"];
const ACTORS: [&str; 3] = ["alice", "bob", "mesos"];

/// (event shape, app, task, actor, microseconds after the previous event)
type Spec = (u8, usize, usize, usize, u64);

fn event(shape: u8, app: usize, task: usize) -> Event {
    let app = AppId::from(APPS[app]);
    let task = TaskId::from(TASKS[task]);
    match shape {
        0 => Event::AppScaled(AppScaled {
            app,
            previous: 1,
            instances: 2,
        }),
        1 => Event::TaskStatusRecorded(TaskStatusRecorded {
            task,
            app: Some(app),
            condition: Condition::Running,
            mesos_state: "TASK_RUNNING".into(),
            reason: None,
            message: None,
            agent: None,
            healthy: None,
            status_uuid: None,
            mesos_timestamp: None,
        }),
        2 => Event::TaskKillRequested(TaskKillRequested {
            task,
            app,
            reason: "scale".into(),
        }),
        3 => Event::TaskExpunged(TaskExpunged { task, app }),
        _ => Event::CallbackSubscribed(CallbackSubscribed {
            callback_url: "http://127.0.0.1:1/cb".into(),
        }),
    }
}

fn envelopes(specs: &[Spec]) -> Vec<Arc<Envelope>> {
    let mut at = 1_700_000_000_000_000;
    specs
        .iter()
        .enumerate()
        .map(|(i, &(shape, app, task, actor, step))| {
            at += step;
            let actor = match ACTORS[actor] {
                "mesos" => Actor::Mesos,
                principal => Actor::Api {
                    principal: principal.into(),
                    remote: "127.0.0.1:1".into(),
                },
            };
            Arc::new(Envelope {
                seq: Seq(i as u64 + 1),
                id: uuid::Uuid::now_v7(),
                recorded_at: at,
                actor,
                command_id: uuid::Uuid::now_v7(),
                event: event(shape, app, task),
            })
        })
        .collect()
}

fn matches(query: &AuditQuery, e: &Envelope) -> bool {
    let app = e.event.app().map(|a| a.as_str().to_string());
    let app_ok = match &query.app {
        None => true,
        Some(AppMatch::Exact(id)) => app.as_deref() == Some(id.as_str()),
        Some(AppMatch::Prefix(prefix)) => app.is_some_and(|a| a.starts_with(prefix.as_str())),
    };
    let task_ok = query
        .task
        .as_ref()
        .is_none_or(|t| e.event.task().is_some_and(|task| task.as_str() == t));
    let actor_ok = query
        .actor
        .as_ref()
        .is_none_or(|a| *a == e.actor.index_key());
    let type_ok = query.types.is_empty() || query.types.contains(&e.event.kind());
    let since_ok = match query.since {
        None => true,
        Some(Bound::Seq(seq)) => e.seq >= seq,
        Some(Bound::Time(t)) => e.recorded_at >= t,
    };
    let until_ok = match query.until {
        None => true,
        Some(Bound::Seq(seq)) => e.seq <= seq,
        Some(Bound::Time(t)) => e.recorded_at <= t,
    };
    app_ok && task_ok && actor_ok && type_ok && since_ok && until_ok
}

fn bound(kind: u8, value: u64, events: &[Arc<Envelope>]) -> Option<Bound> {
    let e = &events[value as usize % events.len()];
    match kind {
        0 => None,
        1 => Some(Bound::Seq(e.seq)),
        // Exactly an event's time, or just past it.
        2 => Some(Bound::Time(e.recorded_at)),
        _ => Some(Bound::Time(e.recorded_at + 1)),
    }
}

/// A query in terms of indexes into the fixed names, before it meets a log.
#[derive(Debug, Clone)]
struct QuerySpec {
    app: usize,
    task: usize,
    actor: usize,
    types: BTreeSet<u8>,
    since: (u8, u64),
    until: (u8, u64),
    descending: bool,
    limit: usize,
}

prop_compose! {
    fn query_spec()(
        app in 0usize..7,
        task in 0usize..8,
        actor in 0usize..5,
        types in prop::collection::btree_set(0u8..5, 0..3),
        since in (0u8..4, any::<u64>()),
        until in (0u8..4, any::<u64>()),
        descending in any::<bool>(),
        limit in 1usize..9,
    ) -> QuerySpec {
        QuerySpec { app, task, actor, types, since, until, descending, limit }
    }
}

fn build_query(spec: &QuerySpec, events: &[Arc<Envelope>]) -> AuditQuery {
    AuditQuery {
        app: match spec.app {
            0..4 => Some(AppMatch::Exact(APPS[spec.app].into())),
            4 => Some(AppMatch::Prefix("/prod/".into())),
            5 => Some(AppMatch::Prefix("/dev/".into())),
            _ => None,
        },
        task: TASKS.get(spec.task).map(|t| t.to_string()),
        actor: match spec.actor {
            0 => Some("api:alice".into()),
            1 => Some("api:bob".into()),
            2 => Some("mesos".into()),
            _ => None,
        },
        types: spec.types.iter().map(|&t| event(t, 0, 0).kind()).collect(),
        since: bound(spec.since.0, spec.since.1, events),
        until: bound(spec.until.0, spec.until.1, events),
        order: if spec.descending {
            Order::Desc
        } else {
            Order::Asc
        },
        limit: spec.limit,
        cursor: None,
    }
}

/// Every page of `query`, following cursors.
fn all_pages(log: &EventLog, head: Seq, mut query: AuditQuery) -> Vec<Seq> {
    let mut seqs = Vec::new();
    loop {
        let page = audit::run(log, head, &query).expect("audit runs");
        assert!(page.events.len() <= query.limit);
        seqs.extend(page.events.iter().map(|e| e.seq));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => return seqs,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn audit_pages_return_exactly_the_matching_events_in_order(
        specs in prop::collection::vec((0u8..5, 0usize..4, 0usize..5, 0usize..3, 0u64..3), 1..160),
        batch_sizes in prop::collection::vec(1usize..40, 1..20),
        queries in prop::collection::vec(query_spec(), 12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = LogWriter::open(dir.path()).unwrap();
        let events = envelopes(&specs);
        let mut rest = &events[..];
        for size in batch_sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, tail) = rest.split_at((*size).min(rest.len()));
            log.append(batch, &[]).unwrap();
            rest = tail;
        }
        let head = events.last().unwrap().seq;
        let report = stride_server::verify::verify(&log).unwrap();
        prop_assert!(report.is_ok(), "{:?}", report.report);
        for spec in &queries {
            let query = build_query(spec, &events);
            let mut want: Vec<Seq> = events.iter().filter(|e| matches(&query, e)).map(|e| e.seq).collect();
            if query.order == Order::Desc {
                want.reverse();
            }
            prop_assert_eq!(all_pages(&log, head, query.clone()), want, "{:?}", query);
        }
    }
}

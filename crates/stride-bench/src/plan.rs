//! The planner at scale: plans over 10,000 apps / 100,000 tasks with an
//! offer from each of 1,000 agents, in steady state and when every app
//! wants one more task. Baseline, same run: one bare pass over the state
//! counting each app's live tasks, the least any planner must do.

use super::world::World;
use std::time::Instant;
use stride_core::projection::State;
use stride_log::event::{Actor, AppScaled, Envelope, Event};
use stride_server::reconciler::plan::{Agents, Drain, PlanInput, plan};

#[derive(clap::Args)]
pub struct PlanBench {
    #[arg(long, default_value_t = 10_000)]
    apps: usize,
    #[arg(long, default_value_t = 10)]
    per_app: usize,
    #[arg(long, default_value_t = 1_000)]
    agents: usize,
    /// Plans timed per workload.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

pub fn run(args: PlanBench) -> anyhow::Result<()> {
    let world = World {
        apps: args.apps,
        per_app: args.per_app,
        agents: args.agents,
    };
    let mut state = State::default();
    for envelope in world.events() {
        state.apply(&envelope);
    }
    let offers = world.offers();
    let mut agents = Agents::default();
    offers.iter().for_each(|o| agents.learn(o));
    let now = state.seq.0;
    let rounds = args.rounds.max(1);

    let scan = time(rounds, || {
        let live: usize = state
            .apps
            .keys()
            .map(|id| {
                state
                    .tasks_of(id)
                    .filter(|(_, t)| !t.condition.is_terminal())
                    .count()
            })
            .sum();
        std::hint::black_box(live);
    });
    println!(
        "{} apps, {} tasks, {} offers; {rounds} plans each\n",
        state.apps.len(),
        state.tasks.len(),
        offers.len()
    );
    println!("| workload | per plan | plans/s | launches decided/s | vs baseline |");
    println!("|---|---|---|---|---|");
    println!(
        "| baseline: count live tasks per app | {:.1} ms | {:.1} | - | 1.0 |",
        scan * 1e3,
        1.0 / scan
    );
    let steady = time(rounds, || {
        let plan = plan(&PlanInput {
            state: &state,
            offers: &offers,
            agents: &agents,
            now,
            drain: Drain::default(),
            passed_readiness: &Default::default(),
        });
        assert!(plan.launches.is_empty(), "steady state launches nothing");
    });
    println!(
        "| steady state (every offer declined) | {:.1} ms | {:.1} | - | {:.1} |",
        steady * 1e3,
        1.0 / steady,
        steady / scan
    );
    // Every app wants one more task.
    let ids: Vec<_> = state.apps.keys().cloned().collect();
    for (n, app) in ids.into_iter().enumerate() {
        let seq = state.seq.next();
        state.apply(&Envelope {
            seq,
            id: uuid::Uuid::now_v7(),
            recorded_at: now + n as u64 + 1,
            actor: Actor::Reconciler,
            command_id: uuid::Uuid::nil(),
            event: Event::AppScaled(AppScaled {
                app,
                previous: args.per_app as u32,
                instances: args.per_app as u32 + 1,
            }),
        });
    }
    let mut launches = 0;
    let scale = time(rounds, || {
        let plan = plan(&PlanInput {
            state: &state,
            offers: &offers,
            agents: &agents,
            now,
            drain: Drain::default(),
            passed_readiness: &Default::default(),
        });
        launches = plan.launches.len();
    });
    println!(
        "| every app one short ({launches} launches) | {:.1} ms | {:.1} | {:.0} | {:.1} |",
        scale * 1e3,
        1.0 / scale,
        launches as f64 / scale,
        scale / scan
    );
    Ok(())
}

/// Mean seconds per call of `f` over `rounds` calls.
fn time(rounds: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed().as_secs_f64() / rounds as f64
}

//! Offers: allocation of free agent resources, decline filters, SUPPRESS
//! and REVIVE, rescinds, and ACCEPT with the master's task validation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stride_mesos::types::{
    Accept, Address, AllocationInfo, Decline, Event, Filters, FrameworkCapabilityType, FrameworkId,
    Offer, OfferId, Offers, OperationType, Rescind, TaskInfo, TaskState, Url,
};

use super::agent::ResourceSet;
use super::master::{Master, MasterState};
use super::tasks::{master_status, update_event};

/// Mesos' `Filters.refuse_seconds` default and cap.
const DEFAULT_REFUSE: Duration = Duration::from_secs(5);
const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);

pub(crate) struct OutstandingOffer {
    pub(crate) framework_id: FrameworkId,
    pub(crate) agent: usize,
    pub(crate) resources: ResourceSet,
    created: Instant,
}

/// Declined resources on one agent are not offered to the framework again
/// until `until`, unless more than them become free (as Mesos' filters).
pub(crate) struct DeclineFilter {
    agent: usize,
    resources: ResourceSet,
    until: Instant,
}

fn refuse_duration(filters: Option<&Filters>) -> Duration {
    match filters.and_then(|f| f.refuse_seconds) {
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Duration::from_secs_f64(seconds).min(MAX_REFUSE)
        }
        _ => DEFAULT_REFUSE,
    }
}

impl MasterState {
    /// Offers each agent's free resources to the next eligible framework.
    pub(crate) fn allocate(&mut self, master: &Master, now: Instant) {
        let mut candidates: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.is_connected() && !f.removed && !f.suppressed)
            .map(|f| f.id.clone())
            .collect();
        if candidates.is_empty() {
            return;
        }
        candidates.sort();
        let mut batches: HashMap<FrameworkId, Vec<Offer>> = HashMap::new();
        for agent_index in 0..self.agents.len() {
            let free = self.agents[agent_index].free();
            if !free.is_allocatable() {
                continue;
            }
            let turn = self.allocation_turn;
            let chosen = (0..candidates.len())
                .map(|step| &candidates[(turn + step) % candidates.len()])
                .find(|id| {
                    self.frameworks.get(*id).is_some_and(|f| {
                        !f.filters.iter().any(|filter| {
                            filter.agent == agent_index
                                && filter.until > now
                                && filter.resources.contains(&free)
                        })
                    })
                })
                .cloned();
            let Some(framework_id) = chosen else {
                continue;
            };
            self.allocation_turn = self.allocation_turn.wrapping_add(1);
            let offer = self.make_offer(master, &framework_id, agent_index, free, now);
            batches.entry(framework_id).or_default().push(offer);
        }
        for (framework_id, offers) in batches {
            if let Some(framework) = self.frameworks.get(&framework_id) {
                tracing::debug!(%framework_id, offers = offers.len(), "sending offers");
                framework.send(&Event::Offers(Offers { offers }));
            }
        }
    }

    fn make_offer(
        &mut self,
        master: &Master,
        framework_id: &FrameworkId,
        agent_index: usize,
        resources: ResourceSet,
        now: Instant,
    ) -> Offer {
        let id = OfferId::new(format!("{}-O{}", master.identity.id, self.next_offer));
        self.next_offer += 1;
        let agent = &mut self.agents[agent_index];
        agent.offered.add(&resources);
        let allocation_role = self
            .frameworks
            .get(framework_id)
            .filter(|f| f.has_capability(&FrameworkCapabilityType::MultiRole))
            .map(|f| f.role().to_string());
        let address = master.identity.address;
        let offer = Offer {
            id: id.clone(),
            framework_id: framework_id.clone(),
            agent_id: agent.id.clone(),
            hostname: agent.hostname.clone(),
            url: Some(Url {
                scheme: "http".to_string(),
                address: Address {
                    hostname: Some(agent.hostname.clone()),
                    ip: Some(address.ip().to_string()),
                    port: u32::from(address.port()),
                },
                path: Some(format!("/{}", agent.pid_name)),
            }),
            resources: resources.to_mesos(allocation_role.as_deref()),
            attributes: agent.attributes.clone(),
            executor_ids: Vec::new(),
            allocation_info: allocation_role.map(|role| AllocationInfo { role: Some(role) }),
        };
        self.offers.insert(
            id.value,
            OutstandingOffer {
                framework_id: framework_id.clone(),
                agent: agent_index,
                resources,
                created: now,
            },
        );
        offer
    }

    /// Takes an offer back from the agent's `offered` pool.
    fn recover_offer(&mut self, offer_id: &str) -> Option<OutstandingOffer> {
        let offer = self.offers.remove(offer_id)?;
        if let Some(agent) = self.agents.get_mut(offer.agent) {
            agent.offered.subtract(&offer.resources);
        }
        Some(offer)
    }

    /// Drops all offers of a framework; `notify` sends RESCIND for each.
    pub(crate) fn rescind_offers_of(&mut self, framework_id: &FrameworkId, notify: bool) {
        let ids: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, offer)| offer.framework_id == *framework_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.rescind(&id, notify);
        }
    }

    fn rescind(&mut self, offer_id: &str, notify: bool) {
        let Some(offer) = self.recover_offer(offer_id) else {
            return;
        };
        if notify && let Some(framework) = self.frameworks.get(&offer.framework_id) {
            framework.send(&Event::Rescind(Rescind {
                offer_id: OfferId::new(offer_id),
            }));
        }
    }

    pub(crate) fn rescind_stale_offers(&mut self, now: Instant, timeout: Duration) {
        let stale: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, offer)| now.saturating_duration_since(offer.created) >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            tracing::debug!(offer_id = %id, "rescinding stale offer");
            self.rescind(&id, true);
        }
    }

    fn add_filter(
        &mut self,
        framework_id: &FrameworkId,
        agent: usize,
        resources: ResourceSet,
        refuse: Duration,
    ) {
        if refuse.is_zero() {
            return;
        }
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            let now = Instant::now();
            framework.filters.retain(|filter| filter.until > now);
            framework.filters.push(DeclineFilter {
                agent,
                resources,
                until: now + refuse,
            });
        }
    }
}

impl Master {
    pub(crate) fn decline(&self, framework_id: &FrameworkId, decline: &Decline) {
        let refuse = refuse_duration(decline.filters.as_ref());
        let mut state = self.lock();
        for offer_id in &decline.offer_ids {
            let owned = state
                .offers
                .get(&offer_id.value)
                .is_some_and(|offer| offer.framework_id == *framework_id);
            if !owned {
                continue;
            }
            if let Some(offer) = state.recover_offer(&offer_id.value) {
                state.add_filter(framework_id, offer.agent, offer.resources, refuse);
            }
        }
    }

    pub(crate) fn suppress(&self, framework_id: &FrameworkId) {
        if let Some(framework) = self.lock().frameworks.get_mut(framework_id) {
            framework.suppressed = true;
        }
    }

    /// REVIVE clears every decline filter and offers again right away.
    pub(crate) fn revive(self: &Arc<Self>, framework_id: &FrameworkId) {
        let mut state = self.lock();
        if let Some(framework) = state.frameworks.get_mut(framework_id) {
            framework.suppressed = false;
            framework.filters.clear();
        }
        state.allocate(self, Instant::now());
    }

    /// ACCEPT with LAUNCH operations. Invalid offers drop every task
    /// (TASK_DROPPED); a task that fails validation gets TASK_ERROR; what
    /// no task used is declined with the call's filter.
    pub(crate) fn accept(self: &Arc<Self>, framework_id: &FrameworkId, accept: Accept) {
        let refuse = refuse_duration(accept.filters.as_ref());
        let tasks: Vec<TaskInfo> = accept
            .operations
            .into_iter()
            .filter(|operation| {
                let is_launch = operation.kind == OperationType::Launch;
                if !is_launch {
                    tracing::warn!(operation = %operation.kind, "ignoring unsupported offer operation");
                }
                is_launch
            })
            .filter_map(|operation| operation.launch)
            .flat_map(|launch| launch.task_infos)
            .collect();
        let mut state = self.lock();
        let state = &mut *state;
        let invalid = accept.offer_ids.iter().find(|id| {
            state
                .offers
                .get(&id.value)
                .is_none_or(|offer| offer.framework_id != *framework_id)
        });
        let mut agents = accept
            .offer_ids
            .iter()
            .filter_map(|id| state.offers.get(&id.value).map(|offer| offer.agent));
        let first_agent = agents.next();
        let message = match (invalid, first_agent) {
            (Some(offer_id), _) => Some(format!("Offer {offer_id} is no longer valid")),
            (None, None) => Some("No offers specified".to_string()),
            (None, Some(agent)) if agents.any(|other| other != agent) => {
                Some("Aggregated offers must belong to one single agent".to_string())
            }
            _ => None,
        };
        let mut available = ResourceSet::default();
        for offer_id in &accept.offer_ids {
            let owned = state
                .offers
                .get(&offer_id.value)
                .is_some_and(|offer| offer.framework_id == *framework_id);
            if owned && let Some(offer) = state.recover_offer(&offer_id.value) {
                available.add(&offer.resources);
            }
        }
        let Some(framework) = state.frameworks.get(framework_id) else {
            return;
        };
        let lost_state = if framework.has_capability(&FrameworkCapabilityType::PartitionAware) {
            TaskState::Dropped
        } else {
            TaskState::Lost
        };
        if let Some(message) = message {
            for task in tasks {
                let status = master_status(
                    task.task_id,
                    lost_state.clone(),
                    format!("Task launched with invalid offers: {message}"),
                    "REASON_INVALID_OFFERS",
                    Some(task.agent_id),
                );
                framework.send(&update_event(status));
            }
            return;
        }
        let Some(agent) = first_agent else { return };
        let role = framework.role().to_string();
        for task in tasks {
            let resources = ResourceSet::from_mesos(&task.resources);
            let error = validate_task(
                state,
                framework_id,
                agent,
                &task,
                &resources,
                &available,
                &role,
            );
            if let Some(message) = error {
                let status = master_status(
                    task.task_id.clone(),
                    TaskState::Error,
                    message,
                    "REASON_TASK_INVALID",
                    Some(task.agent_id.clone()),
                );
                if let Some(framework) = state.frameworks.get(framework_id) {
                    framework.send(&update_event(status));
                }
                continue;
            }
            available.subtract(&resources);
            self.start_task(state, framework_id, task, agent, resources);
        }
        state.add_filter(framework_id, agent, available, refuse);
    }
}

/// The master's task checks that matter for command tasks, worded as
/// Mesos words them.
fn validate_task(
    state: &MasterState,
    framework_id: &FrameworkId,
    agent: usize,
    task: &TaskInfo,
    resources: &ResourceSet,
    available: &ResourceSet,
    role: &str,
) -> Option<String> {
    let duplicate = state
        .frameworks
        .get(framework_id)
        .is_some_and(|f| f.tasks.contains_key(&task.task_id));
    if duplicate {
        return Some(format!("Task has duplicate ID: {}", task.task_id));
    }
    if state
        .agents
        .get(agent)
        .is_none_or(|a| a.id != task.agent_id)
    {
        return Some(format!("Task uses invalid agent: {}", task.agent_id));
    }
    if task.command.is_none() {
        return Some(
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                .to_string(),
        );
    }
    if !available.contains(resources) {
        return Some(format!(
            "Total resources {} required by task and its executor is more than available {}",
            resources.describe(role),
            available.describe(role)
        ));
    }
    None
}

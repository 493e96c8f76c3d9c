//! The dispatcher's index: each agent's load, status and presence, the
//! agents with room ordered by load, and the waiting queue in arrival order.
//! Every event costs O(log n) in agents and waiting tasks; nothing here
//! scans. It is only a view: the database stays the truth, and the index is
//! rebuilt from it when a worker becomes the dispatcher.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One agent as the dispatcher sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Agent {
    /// Open tasks, including those reserved and not yet written.
    pub load: i64,
    pub available: bool,
    pub online: bool,
}

/// A task in the queue, by arrival: `(created_at ms, task id)`, the order
/// the database gives them too.
pub(crate) type Place = (i64, i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waiting {
    pub task_id: i64,
    pub customer_id: String,
    /// Put back because its agent was gone or silent: the next agent is
    /// told why.
    pub reason: Option<String>,
    /// The agent it was taken from, given it again only when no one else
    /// has room.
    pub avoid: Option<String>,
}

/// A queue-position notice to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tell {
    pub task_id: i64,
    pub customer_id: String,
    pub position: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    capacity: i64,
    agents: HashMap<String, Agent>,
    /// Online, available agents below capacity, least loaded first.
    room: BTreeSet<(i64, String)>,
    queue: BTreeMap<Place, Waiting>,
    places: HashMap<i64, Place>,
    /// The position each waiting task was last told.
    told: HashMap<i64, usize>,
    /// Opens that were told to wait and whose task is not written yet:
    /// while any is, a newer open must not overtake it.
    pending_waits: usize,
    /// Bumped by every change, so a rebuild read from the database can tell
    /// whether the index moved while it read.
    pub generation: u64,
}

impl Index {
    pub fn new(capacity: i64) -> Index {
        Index {
            capacity,
            ..Index::default()
        }
    }

    /// An index from the database's view: every agent, the waiting tasks
    /// oldest first, and the place each was last told (`told`, by task id).
    /// A new dispatcher repeats no place already told; a task its
    /// predecessor had not told yet (it left between the open and the
    /// telling) is told at the next round.
    pub fn rebuilt(
        capacity: i64,
        agents: impl IntoIterator<Item = (String, Agent)>,
        waiting: impl IntoIterator<Item = (Place, Waiting)>,
        told: &HashMap<i64, usize>,
    ) -> Index {
        let mut index = Index::new(capacity);
        for (id, agent) in agents {
            index.put(&id, agent);
        }
        for (place, waiting) in waiting {
            if let Some(&told) = told.get(&waiting.task_id) {
                index.told.insert(waiting.task_id, told);
            }
            index.enqueue(place, waiting);
        }
        index
    }

    pub fn agent(&self, id: &str) -> Agent {
        self.agents.get(id).copied().unwrap_or_default()
    }

    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    pub fn is_queued(&self, task_id: i64) -> bool {
        self.places.contains_key(&task_id)
    }

    /// Sets what is known of an agent, keeping `room` in step.
    pub fn put(&mut self, id: &str, agent: Agent) {
        self.generation += 1;
        if let Some(old) = self.agents.get(id) {
            self.room.remove(&(old.load, id.to_owned()));
        }
        if agent.online && agent.available && agent.load < self.capacity {
            self.room.insert((agent.load, id.to_owned()));
        }
        self.agents.insert(id.to_owned(), agent);
    }

    fn change(&mut self, id: &str, f: impl FnOnce(&mut Agent)) {
        let mut agent = self.agent(id);
        f(&mut agent);
        self.put(id, agent);
    }

    /// A new customer: the least loaded agent with room, reserved, if no
    /// one waits; None when they must wait (counted as a pending wait
    /// until [`Index::waited`]).
    pub fn open(&mut self) -> Option<String> {
        if self.queue.is_empty() && self.pending_waits == 0 {
            if let Some(agent) = self.take_room() {
                return Some(agent);
            }
        }
        self.pending_waits += 1;
        None
    }

    /// A pending wait was written (`Some`: it is queued) or failed.
    pub fn waited(&mut self, task: Option<(Place, Waiting)>) {
        self.pending_waits = self.pending_waits.saturating_sub(1);
        if let Some((place, waiting)) = task {
            self.enqueue(place, waiting);
        }
    }

    fn take_room(&mut self) -> Option<String> {
        self.take_room_avoiding(None)
    }

    /// The least loaded agent with room other than `avoid`, or `avoid`
    /// when no one else has room: the first two entries, O(log n).
    fn take_room_avoiding(&mut self, avoid: Option<&str>) -> Option<String> {
        let mut first_two = self.room.iter().take(2).map(|(_, id)| id);
        let first = first_two.next()?;
        let agent = match first_two.next() {
            Some(second) if avoid == Some(first.as_str()) => second,
            _ => first,
        }
        .clone();
        self.change(&agent, |a| a.load += 1);
        Some(agent)
    }

    /// Reserves a slot of one agent (a transfer's target); false when they
    /// are offline, away or full.
    pub fn reserve(&mut self, id: &str) -> bool {
        let agent = self.agent(id);
        if !agent.online || agent.load >= self.capacity {
            return false;
        }
        self.change(id, |a| a.load += 1);
        true
    }

    /// A task left `id` (ended, transferred, put back) or a reservation was
    /// not used.
    pub fn release(&mut self, id: &str) {
        self.change(id, |a| a.load = (a.load - 1).max(0));
    }

    /// The agent was found full by the database: the index trusts that.
    pub fn full(&mut self, id: &str) {
        let capacity = self.capacity;
        self.change(id, |a| a.load = a.load.max(capacity));
    }

    pub fn enqueue(&mut self, place: Place, waiting: Waiting) {
        self.generation += 1;
        if let Some(old) = self.places.insert(waiting.task_id, place) {
            self.queue.remove(&old);
        }
        self.queue.insert(place, waiting);
    }

    /// Takes a task out of the queue (ended, left, or assigned elsewhere).
    pub fn dequeue(&mut self, task_id: i64) -> Option<Waiting> {
        self.generation += 1;
        self.told.remove(&task_id);
        let place = self.places.remove(&task_id)?;
        self.queue.remove(&place)
    }

    /// The assignments that can be made now: the oldest waiting task to the
    /// least loaded agent with room, while both exist. Each agent's slot is
    /// reserved.
    pub fn assignments(&mut self) -> Vec<(Place, Waiting, String)> {
        let mut out = Vec::new();
        while !self.queue.is_empty() && !self.room.is_empty() {
            let Some((place, waiting)) = self.queue.pop_first() else {
                break;
            };
            self.places.remove(&waiting.task_id);
            self.told.remove(&waiting.task_id);
            let Some(agent) = self.take_room_avoiding(waiting.avoid.as_deref()) else {
                break;
            };
            out.push((place, waiting, agent));
        }
        out
    }

    /// Whether opens told to wait are still being written: their places
    /// are not known yet, so positions told now could change.
    pub fn settling(&self) -> bool {
        self.pending_waits > 0
    }

    /// The positions to tell: a waiting task's first position, and each one
    /// lower than the last it was told. A position that rose (a task put
    /// back ahead of it) is not told; the customer hears again once it is
    /// below what they were told. O(waiting).
    pub fn positions_to_tell(&mut self) -> Vec<Tell> {
        let mut out = Vec::new();
        for (i, waiting) in self.queue.values().enumerate() {
            let position = i + 1;
            let told = self.told.get(&waiting.task_id).copied();
            if told.is_none_or(|t| position < t) {
                self.told.insert(waiting.task_id, position);
                out.push(Tell {
                    task_id: waiting.task_id,
                    customer_id: waiting.customer_id.clone(),
                    position,
                });
            }
        }
        out
    }

    /// Whether the index holds an agent with room.
    #[cfg(test)]
    pub fn has_room(&self) -> bool {
        !self.room.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online(load: i64) -> Agent {
        Agent {
            load,
            available: true,
            online: true,
        }
    }

    fn waiting(id: i64) -> Waiting {
        Waiting {
            task_id: id,
            customer_id: format!("c{id}"),
            reason: None,
            avoid: None,
        }
    }

    #[test]
    fn a_new_customer_goes_to_the_least_loaded_agent_with_room() {
        let mut index = Index::new(2);
        index.put("a", online(1));
        index.put("b", online(0));
        index.put(
            "away",
            Agent {
                available: false,
                ..online(0)
            },
        );
        index.put(
            "gone",
            Agent {
                online: false,
                ..online(0)
            },
        );
        assert_eq!(index.open().as_deref(), Some("b"));
        let picks: Vec<_> = (0..2).filter_map(|_| index.open()).collect();
        assert_eq!(picks.len(), 2, "a and b each had one slot left: {picks:?}");
        assert_eq!(index.open(), None, "everyone is full");
        assert_eq!(index.agent("a").load, 2);
        assert_eq!(index.agent("b").load, 2);
    }

    #[test]
    fn nobody_overtakes_a_waiting_customer() {
        let mut index = Index::new(1);
        assert_eq!(index.open(), None);
        index.put("a", online(0));
        assert_eq!(
            index.open(),
            None,
            "the first customer's wait is not written yet; the second waits behind"
        );
        index.waited(Some(((10, 1), waiting(1))));
        index.waited(Some(((11, 2), waiting(2))));
        let first = index.assignments();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1.task_id, 1, "oldest first");
        assert_eq!(first[0].2, "a");
        assert_eq!(index.waiting(), 1);
    }

    #[test]
    fn positions_are_told_once_and_only_when_they_go_down() {
        let mut index = Index::new(1);
        for id in 1..=3 {
            assert_eq!(index.open(), None);
            index.waited(Some(((id, id), waiting(id))));
        }
        let first: Vec<_> = index
            .positions_to_tell()
            .into_iter()
            .map(|t| t.position)
            .collect();
        assert_eq!(first, [1, 2, 3]);
        assert!(index.positions_to_tell().is_empty(), "nothing changed");

        // A task put back ahead of everyone: the others' places rise, which
        // is not told.
        index.enqueue((0, 9), waiting(9));
        let told: Vec<_> = index
            .positions_to_tell()
            .into_iter()
            .map(|t| (t.task_id, t.position))
            .collect();
        assert_eq!(told, [(9, 1)]);

        index.put("a", online(0));
        let taken = index.assignments();
        assert_eq!(taken[0].1.task_id, 9);
        assert!(
            index.positions_to_tell().is_empty(),
            "back where they were told"
        );
        index.release("a");
        index.assignments();
        let told: Vec<_> = index
            .positions_to_tell()
            .into_iter()
            .map(|t| (t.task_id, t.position))
            .collect();
        assert_eq!(told, [(2, 1), (3, 2)]);
    }

    #[test]
    fn a_transfer_reserves_only_an_online_agent_with_room() {
        let mut index = Index::new(1);
        index.put("a", online(0));
        index.put(
            "b",
            Agent {
                online: false,
                ..online(0)
            },
        );
        assert!(!index.reserve("b"), "offline");
        assert!(!index.reserve("nobody"));
        assert!(index.reserve("a"));
        assert!(!index.reserve("a"), "full");
        assert!(!index.has_room());
        index.release("a");
        assert!(index.has_room());
    }

    #[test]
    fn a_task_put_back_goes_to_another_agent_when_one_has_room() {
        let mut index = Index::new(2);
        index.put("a", online(0));
        index.put("b", online(1));
        let back = Waiting {
            avoid: Some("a".into()),
            ..waiting(1)
        };
        index.enqueue((1, 1), back.clone());
        assert_eq!(
            index.assignments()[0].2,
            "b",
            "a is less loaded, but avoided"
        );
        index.enqueue((1, 1), back);
        assert_eq!(index.assignments()[0].2, "a", "b is full: back to a");
    }

    #[test]
    fn a_rebuilt_index_tells_nothing_until_a_position_changes() {
        let agents = [("a".to_owned(), online(1))];
        let queue = (1..=3).map(|id| ((id, id), waiting(id)));
        let told = HashMap::from([(1, 1), (2, 2), (3, 3)]);
        let mut index = Index::rebuilt(1, agents, queue, &told);
        assert!(index.positions_to_tell().is_empty());
        assert!(index.open().is_none(), "a is full and three wait");
        index.waited(Some(((4, 4), waiting(4))));
        let told: Vec<_> = index.positions_to_tell();
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].position, 4);
        index.dequeue(1);
        assert_eq!(index.positions_to_tell().len(), 3);
    }

    #[test]
    fn a_rebuilt_index_tells_the_places_its_predecessor_left_untold() {
        // The previous dispatcher queued four and left before telling
        // the last two; the second was told 3 when a task ahead of it
        // was still waiting.
        let agents = [("a".to_owned(), online(1))];
        let queue = (1..=4).map(|id| ((id, id), waiting(id)));
        let told = HashMap::from([(1, 1), (2, 3)]);
        let mut index = Index::rebuilt(1, agents, queue, &told);
        let tells: Vec<(i64, usize)> = index
            .positions_to_tell()
            .into_iter()
            .map(|t| (t.task_id, t.position))
            .collect();
        assert_eq!(tells, [(2, 2), (3, 3), (4, 4)]);
        assert!(index.positions_to_tell().is_empty(), "each told once");
    }
}

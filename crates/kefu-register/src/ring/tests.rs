use super::*;

#[test]
fn shards_spread_evenly_and_move_only_from_a_leaving_worker() {
    let three = Ring::new(["w1", "w2", "w3"]);
    let two = Ring::new(["w1", "w2"]);
    let mut counts = std::collections::HashMap::new();
    for shard in 0..65_536u32 {
        let owner = three.owner(shard).unwrap();
        *counts.entry(owner).or_insert(0) += 1;
        if owner != "w3" {
            assert_eq!(
                two.owner(shard),
                Some(owner),
                "shard {shard} moved needlessly"
            );
        }
    }
    for (worker, n) in counts {
        assert!((15_000..30_000).contains(&n), "{worker} owns {n} shards");
    }
}

#[test]
fn an_empty_ring_has_no_owner() {
    assert_eq!(Ring::default().owner(1), None);
}

mod properties {
    use super::super::Ring;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn workers() -> impl Strategy<Value = BTreeSet<String>> {
        proptest::collection::btree_set("w[a-z0-9]{1,8}", 1..8)
    }

    proptest! {
        #[test]
        fn every_shard_has_one_owner_among_the_workers(
            workers in workers(),
            shards in proptest::collection::vec(any::<u32>(), 1..64),
        ) {
            let ring = Ring::new(&workers);
            for shard in shards {
                let owner = ring.owner(shard).expect("an owner");
                prop_assert!(workers.contains(owner));
            }
        }

        #[test]
        fn the_order_workers_are_listed_in_changes_nothing(
            workers in workers(),
            shards in proptest::collection::vec(any::<u32>(), 1..64),
        ) {
            let forward = Ring::new(&workers);
            let backward = Ring::new(workers.iter().rev());
            for shard in shards {
                prop_assert_eq!(forward.owner(shard), backward.owner(shard));
            }
        }

        /// A worker that leaves gives up only its own shards; one that
        /// joins takes shards only for itself.
        #[test]
        fn a_membership_change_moves_only_the_changed_worker_s_shards(
            workers in workers(),
            newcomer in "n[a-z0-9]{1,8}",
            shards in proptest::collection::vec(any::<u32>(), 1..256),
        ) {
            let before = Ring::new(&workers);
            let mut grown = workers.clone();
            grown.insert(newcomer.clone());
            let after = Ring::new(&grown);
            for &shard in &shards {
                let (old, new) = (before.owner(shard), after.owner(shard));
                prop_assert!(old == new || new == Some(newcomer.as_str()));
            }
            let leaving = workers.iter().next().expect("a worker").clone();
            if workers.len() > 1 {
                let rest: Vec<&String> = workers.iter().filter(|w| **w != leaving).collect();
                let shrunk = Ring::new(rest);
                for &shard in &shards {
                    let (old, new) = (before.owner(shard), shrunk.owner(shard));
                    prop_assert!(old == new || old == Some(leaving.as_str()));
                }
            }
        }
    }
}

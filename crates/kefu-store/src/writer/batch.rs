//! What both ways of writing a batch share: dedup keys, which rows are new,
//! their marks, and one answer per message in order.

use super::{NewMessage, Written};
use crate::entity::message;
use crate::{Result, StoreError};
use std::collections::{HashMap, HashSet};

/// A message's dedup key, `(sender, client_msg_id)`.
pub(super) type Key<'a> = (&'a str, &'a str);

pub(super) fn key(m: &NewMessage) -> Option<Key<'_>> {
    m.client_msg_id.as_deref().map(|c| (m.sender.as_str(), c))
}

fn stored_key(m: &message::Model) -> Option<Key<'_>> {
    m.client_msg_id.as_deref().map(|c| (m.sender.as_str(), c))
}

/// The first occurrence in the batch of each key not among `stored`, and
/// every message without a key.
pub(super) fn first_occurrences<'a>(
    batch: &[&'a NewMessage],
    stored: &[message::Model],
) -> Vec<&'a NewMessage> {
    let mut seen: HashSet<Key> = stored.iter().filter_map(stored_key).collect();
    batch
        .iter()
        .copied()
        .filter(|m| key(m).is_none_or(|k| seen.insert(k)))
        .collect()
}

/// Pairs each inserted message with its new row, and lists the keys an
/// insert skipped as already stored (`None` ids).
pub(super) fn inserted_and_skipped<'a>(
    fresh: &[&'a NewMessage],
    ids: Vec<Option<i64>>,
) -> (Vec<(&'a NewMessage, message::Model)>, Vec<Key<'a>>) {
    let mut inserted = Vec::with_capacity(fresh.len());
    let mut skipped = Vec::new();
    for (&m, id) in fresh.iter().zip(ids) {
        match id {
            Some(id) => inserted.push((m, model(id, m))),
            None => skipped.extend(key(m)),
        }
    }
    (inserted, skipped)
}

/// The undelivered marks of new rows: one per recipient who has not got it.
pub(super) fn marks<'a>(inserted: &[(&'a NewMessage, message::Model)]) -> Vec<(&'a str, i64)> {
    inserted
        .iter()
        .flat_map(|(m, row)| m.undelivered_for.iter().map(|u| (u.as_str(), row.id)))
        .collect()
}

/// Every receipt of the batch as `(user, message id)` marks to delete, for
/// a few statements rather than one per frame: agents confirm every few
/// milliseconds, so frames outnumber batches.
pub(super) fn confirmed(receipts: &[(String, Vec<i64>)]) -> Vec<(&str, i64)> {
    receipts
        .iter()
        .flat_map(|(user, ids)| ids.iter().map(move |&id| (user.as_str(), id)))
        .collect()
}

/// One answer per message of the batch, in order: its new row, or the row
/// first stored under its key (earlier in this batch, or before it).
pub(super) fn answers(
    batch: &[&NewMessage],
    inserted: Vec<(&NewMessage, message::Model)>,
    stored: &[message::Model],
) -> Result<Vec<Written>> {
    let stored: HashMap<Key, &message::Model> = stored
        .iter()
        .filter_map(|row| Some((stored_key(row)?, row)))
        .collect();
    let missing = || StoreError::Conflict("a resent message's first row is missing".into());
    // Keys inserted by this batch → the index of their answer.
    let mut first_in_batch: HashMap<Key, usize> = HashMap::new();
    let mut inserted = inserted.into_iter().peekable();
    let mut answers: Vec<Written> = Vec::with_capacity(batch.len());
    for &m in batch {
        if let Some((_, row)) = inserted.next_if(|(new, _)| std::ptr::eq(*new, m)) {
            if let Some(k) = key(m) {
                first_in_batch.insert(k, answers.len());
            }
            answers.push(Written {
                message: row,
                duplicate: false,
            });
            continue;
        }
        let k = key(m).ok_or_else(missing)?;
        let first = match first_in_batch.get(&k) {
            Some(&i) => answers[i].message.clone(),
            None => stored.get(&k).map(|&row| row.clone()).ok_or_else(missing)?,
        };
        answers.push(Written {
            message: first,
            duplicate: true,
        });
    }
    Ok(answers)
}

/// Rows per statement, well under every backend's parameter limit.
pub(super) const ROWS_PER_STATEMENT: usize = 100;

/// Rows per statement through the pool, where lengths are powers of two.
const SHAPED_ROWS: usize = 64;

/// `items` in chunks whose lengths are powers of two up to 64, largest
/// first. A server database's connection keeps a statement prepared per
/// text, and with one text per length from 1 to 100 its cache of 100
/// missed on a fifth of a cluster's statements, each miss a prepare (a
/// round trip, and a parse of up to 1,400 placeholders). Seven lengths per
/// shape stay prepared.
pub(super) fn shaped<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let n = items.len().min(SHAPED_ROWS);
        if n == 0 {
            return None;
        }
        let (chunk, rest) = items.split_at(1 << n.ilog2());
        items = rest;
        Some(chunk)
    })
}

/// `items` in chunks of up to 64, each padded to a power of two by
/// repeating its last item: one statement per chunk where a repeat changes
/// nothing (a lookup, a delete), with the lengths of [`shaped`].
pub(super) fn padded<T: Copy>(items: &[T]) -> impl Iterator<Item = Vec<T>> + '_ {
    items.chunks(SHAPED_ROWS).map(|chunk| {
        let mut padded = chunk.to_vec();
        if let Some(&last) = chunk.last() {
            padded.resize(chunk.len().next_power_of_two(), last);
        }
        padded
    })
}

/// What an insert that skips stored keys returns of a row it took:
/// `id, sender, client_msg_id`.
pub(super) type TakenRow = (i64, String, Option<String>);

/// Matches the rows an insert returned to the rows it was given: the ids
/// increase in the given order (RETURNING's own order is not promised), and
/// a keyed row that did not come back was skipped as already stored.
pub(super) fn returned_ids(rows: &[&NewMessage], taken: Vec<TakenRow>) -> Result<Vec<Option<i64>>> {
    let taken_keys: HashSet<Key> = taken
        .iter()
        .filter_map(|(_, s, c)| Some((s.as_str(), c.as_deref()?)))
        .collect();
    let mut ids: Vec<i64> = taken.iter().map(|(id, _, _)| *id).collect();
    ids.sort_unstable();
    let mut ids = ids.into_iter();
    let matched = rows
        .iter()
        .map(|m| match key(m) {
            Some(k) if !taken_keys.contains(&k) => Some(None),
            _ => ids.next().map(Some),
        })
        .collect::<Option<Vec<_>>>();
    match matched {
        Some(matched) if ids.next().is_none() => Ok(matched),
        _ => Err(StoreError::Conflict(
            "an insert returned rows it was not given".into(),
        )),
    }
}

fn model(id: i64, m: &NewMessage) -> message::Model {
    message::Model {
        id,
        task_id: m.task_id,
        sender: m.sender.clone(),
        recipient: m.recipient.clone(),
        category: m.category.clone(),
        style: m.style.clone(),
        kind: m.kind.clone(),
        content: m.content.clone(),
        url: m.url.clone(),
        quote: m.quote,
        ext: m.ext.clone(),
        client_msg_id: m.client_msg_id.clone(),
        created_at: m.created_at,
        is_read: false,
        is_revoke: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_in_seven_lengths() {
        for n in 0..300 {
            let items: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = shaped(&items).collect();
            assert_eq!(chunks.concat(), items, "every item once, in order");
            for c in &chunks {
                assert!(
                    c.len().is_power_of_two() && c.len() <= SHAPED_ROWS,
                    "{n}: {}",
                    c.len()
                );
            }
            let padded: Vec<Vec<usize>> = padded(&items).collect();
            assert_eq!(padded.len(), n.div_ceil(SHAPED_ROWS));
            for (p, c) in padded.iter().zip(items.chunks(SHAPED_ROWS)) {
                assert!(p.len().is_power_of_two() && p.len() <= SHAPED_ROWS);
                assert_eq!(&p[..c.len()], c);
                assert!(p[c.len()..].iter().all(|x| Some(x) == c.last()));
            }
        }
    }
}

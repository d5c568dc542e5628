//! `repeated_keys(event_id)`: the [`event_key`](super::event_key)s that more than one row has,
//! each once, in increasing order, as a list (empty when every key is unique). Null ids are
//! skipped. The first step of duplicate detection (docs/scoring.md, "Reading the input"): the rows whose key is in the list
//! are the only ones that can share an `event_id`, and the queries then compare those few rows on
//! the ids themselves.
//!
//! ```sql
//! select repeated_keys(id) from (values (3), (1), (3), (2), (1), (null), (null)) t(id);  -- [1, 3]
//! select unnest(repeated_keys(event_id)) as k from events;
//! ```
//!
//! How: each partition appends its keys to a flat vector (a few nanoseconds a row, where a hash
//! table of every id costs hundreds once it outgrows the caches), sorts them when it hands them
//! on, and the final step merges all partitions' keys and reports each run longer than one.
//! Dense keys (integer ids that count up, spanning at most [`DENSE_SPAN`] times their number)
//! are marked in two bitmaps, seen once and seen again: a partition hands on those bitmaps (two
//! bits per value of its range, not eight bytes per row), and the final step combines them word
//! by word (a key is repeated when marked again anywhere, or seen by two partitions); other keys
//! go through a radix sort and are merged as sorted runs. Memory: 8 bytes a row, twice while sorting; the
//! pipeline uses a grouping query instead (which spills) when a `--memory-limit` could not hold
//! that.

use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use super::coerce_id;
use super::event_key::keys;

const NAME: &str = "repeated_keys";

/// The `repeated_keys` SQL aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RepeatedKeysFunc {
    signature: Signature,
}

impl Default for RepeatedKeysFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `repeated_keys` as a registrable function.
pub fn repeated_keys_udaf() -> AggregateUDF {
    AggregateUDF::from(RepeatedKeysFunc::default())
}

fn key_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)))
}

impl AggregateUDFImpl for RepeatedKeysFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] => Ok(vec![coerce_id(NAME, "event_id", t)?]),
            _ => plan_err!("{NAME}(event_id) takes 1 argument"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(key_list())
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        // The keys a partition saw, sorted, a key it saw more than once at least twice; or, for
        // dense keys, two bitmaps from `lo` (see `Marks`), the list then empty.
        let field = |suffix: &str, t: DataType| {
            Arc::new(Field::new(format!("{}[{suffix}]", args.name), t, true))
        };
        Ok(vec![
            field("keys", key_list()),
            field("lo", DataType::Int64),
            field("seen", DataType::Binary),
            field("again", DataType::Binary),
        ])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RepeatedKeys::default()))
    }
}

/// The keys seen so far: rows' keys in arrival order (sorted when handed on), and the partial
/// states of other partitions, kept as they came (no copy) for one merge at the end.
#[derive(Debug, Default)]
struct RepeatedKeys {
    keys: Vec<u64>,
    /// Sorted runs of keys (each a partition's state), in unsigned order.
    runs: Vec<Int64Array>,
    /// Partitions' dense keys, as bitmaps.
    marks: Vec<Marks>,
}

/// Calls `f` with the place of every set bit of `words` (bit `b` of word `w` is `w * 64 + b`),
/// in increasing order.
fn for_each_bit(words: &[u64], mut f: impl FnMut(u64)) {
    for (w, &word) in words.iter().enumerate() {
        let mut left = word;
        while left != 0 {
            f(w as u64 * 64 + u64::from(left.trailing_zeros()));
            left &= left - 1;
        }
    }
}

/// Dense keys as two bitmaps over a range from `lo` (a multiple of 64): bit `k - lo` of `seen`
/// for each key `k` seen, of `again` for each key seen more than once. A partition of ids that
/// count up hands these on (two bits per value of its range) instead of its sorted keys (eight
/// bytes per row), and the final step combines them word by word.
#[derive(Debug, Default)]
struct Marks {
    lo: u64,
    seen: Vec<u64>,
    again: Vec<u64>,
}

impl Marks {
    /// The marks of `keys`, when they are dense: at least 4,096 keys spanning less than
    /// [`DENSE_SPAN`] times their number.
    fn of(keys: &[u64]) -> Option<Marks> {
        let (&min, &max) = (keys.iter().min()?, keys.iter().max()?);
        if keys.len() < 4096 || (max - min) / DENSE_SPAN >= keys.len() as u64 {
            return None;
        }
        let lo = min & !63;
        let words = ((max - lo) / 64 + 1) as usize;
        let mut marks = Marks {
            lo,
            seen: vec![0; words],
            again: vec![0; words],
        };
        for &k in keys {
            let at = k - lo;
            let (w, bit) = ((at / 64) as usize, 1u64 << (at % 64));
            marks.again[w] |= marks.seen[w] & bit;
            marks.seen[w] |= bit;
        }
        Some(marks)
    }

    /// The keys in order, each once, and twice when seen more than once (as [`sort_keys`] gives).
    fn keys(&self) -> Vec<u64> {
        let mut keys = Vec::new();
        for_each_bit(&self.seen, |at| {
            let k = self.lo + at;
            keys.push(k);
            if self.again[(at / 64) as usize] >> (at % 64) & 1 == 1 {
                keys.push(k);
            }
        });
        keys
    }

    fn word(&self) -> u64 {
        self.lo / 64
    }

    /// The repeated keys of all `marks` together (each once, ascending as unsigned numbers), or
    /// `None` when their ranges lie too far apart for one pair of bitmaps over all of them.
    fn repeats(marks: &[Marks]) -> Option<Vec<i64>> {
        let first = marks.iter().map(Marks::word).min()?;
        let end = marks.iter().map(|m| m.word() + m.seen.len() as u64).max()?;
        let words: u64 = marks.iter().map(|m| m.seen.len() as u64).sum();
        if end - first > 4 * words {
            return None;
        }
        let (mut seen, mut again) = (
            vec![0u64; (end - first) as usize],
            vec![0u64; (end - first) as usize],
        );
        for m in marks {
            let at = (m.word() - first) as usize;
            for (i, (&s, &a)) in m.seen.iter().zip(&m.again).enumerate() {
                again[at + i] |= a | (seen[at + i] & s);
                seen[at + i] |= s;
            }
        }
        let mut out = Vec::new();
        for_each_bit(&again, |at| out.push((first * 64 + at) as i64));
        Some(out)
    }

    fn to_bytes(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn from_bytes(bytes: &[u8]) -> Vec<u64> {
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    }

    fn bytes(&self) -> usize {
        (self.seen.capacity() + self.again.capacity()) * size_of::<u64>()
    }
}

impl RepeatedKeys {
    fn append(&mut self, keys: &Int64Array) {
        if keys.null_count() == 0 {
            self.keys.extend(keys.values().iter().map(|&k| k as u64));
        } else {
            self.keys.extend(keys.iter().flatten().map(|k| k as u64));
        }
    }
}

impl Accumulator for RepeatedKeys {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.append(&keys(&values[0], NAME)?);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for row in 0..lists.len() {
            if lists.is_valid(row) {
                let run = lists.value(row).as_primitive::<Int64Type>().clone();
                if !run.is_empty() {
                    self.runs.push(run);
                }
            }
        }
        if let [_, lo, seen, again] = states {
            let (lo, seen, again) = (
                lo.as_primitive::<Int64Type>(),
                seen.as_binary::<i32>(),
                again.as_binary::<i32>(),
            );
            for row in 0..lo.len() {
                if lo.is_valid(row) {
                    self.marks.push(Marks {
                        lo: lo.value(row) as u64,
                        seen: Marks::from_bytes(seen.value(row)),
                        again: Marks::from_bytes(again.value(row)),
                    });
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        // Marked or sorted here, in parallel across partitions, so that the final step only
        // combines.
        if self.runs.is_empty()
            && self.marks.is_empty()
            && let Some(marks) = Marks::of(&self.keys)
        {
            self.keys = Vec::new();
            return Ok(vec![
                list_scalar(Vec::new()),
                ScalarValue::Int64(Some(marks.lo as i64)),
                ScalarValue::Binary(Some(Marks::to_bytes(&marks.seen))),
                ScalarValue::Binary(Some(Marks::to_bytes(&marks.again))),
            ]);
        }
        let mut runs: Vec<Vec<u64>> = self.runs.drain(..).map(|r| unsigned(&r)).collect();
        runs.extend(self.marks.drain(..).map(|m| m.keys()));
        sort_keys(&mut self.keys);
        runs.push(std::mem::take(&mut self.keys));
        let keys = merge_all(runs);
        // The same allocation, reinterpreted: no copy of what can be the largest vector here.
        Ok(vec![
            list_scalar(keys.into_iter().map(|k| k as i64).collect()),
            ScalarValue::Int64(None),
            ScalarValue::Binary(None),
            ScalarValue::Binary(None),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.keys.is_empty()
            && self.runs.is_empty()
            && let Some(mut repeated) = Marks::repeats(&self.marks)
        {
            self.marks.clear();
            repeated.sort_unstable();
            return Ok(list_scalar(repeated));
        }
        // Marks that cannot be combined (or beside sorted keys) become sorted runs.
        for m in std::mem::take(&mut self.marks) {
            self.runs
                .push(m.keys().into_iter().map(|k| k as i64).collect());
        }
        sort_keys(&mut self.keys);
        let mut runs: Vec<Vec<u64>> = Vec::new();
        if !self.keys.is_empty() {
            runs.push(std::mem::take(&mut self.keys));
        }
        // One or two partial states (the usual case: one per partition) are walked together
        // without building the merged vector (at 20M rows, writing it cost more than the walk);
        // more are merged two at a time first.
        let states = std::mem::take(&mut self.runs);
        let mut repeated = Vec::new();
        let unsigned_key = |k: i64| k as u64;
        match (runs.len(), states.len()) {
            (0, 1) => repeats(
                sorted_pair(states[0].values(), &[], unsigned_key),
                &mut repeated,
            ),
            (0, 2) => repeats(
                sorted_pair(states[0].values(), states[1].values(), unsigned_key),
                &mut repeated,
            ),
            _ => {
                runs.extend(states.iter().map(unsigned));
                let keys = merge_all(runs);
                repeats(keys.into_iter(), &mut repeated);
            }
        }
        // The keys were ordered by their bits as unsigned numbers; report them as signed.
        repeated.sort_unstable();
        Ok(list_scalar(repeated))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.keys.capacity() * size_of::<u64>()
            + self.marks.iter().map(Marks::bytes).sum::<usize>()
            + self
                .runs
                .iter()
                .map(|r| r.len() * size_of::<i64>())
                .sum::<usize>()
    }
}

fn unsigned(run: &Int64Array) -> Vec<u64> {
    run.values().iter().map(|&k| k as u64).collect()
}

/// Pushes each key that occurs more than once in `sorted` (ascending) onto `out`, once.
fn repeats(sorted: impl Iterator<Item = u64>, out: &mut Vec<i64>) {
    let mut current: Option<(u64, bool)> = None;
    for k in sorted {
        match &mut current {
            Some((c, seen_twice)) if *c == k => *seen_twice = true,
            _ => {
                if let Some((c, true)) = current {
                    out.push(c as i64);
                }
                current = Some((k, false));
            }
        }
    }
    if let Some((c, true)) = current {
        out.push(c as i64);
    }
}

/// The keys of two runs, each sorted by `key`, in that order.
fn sorted_pair<'a, T: Copy>(
    a: &'a [T],
    b: &'a [T],
    key: impl Fn(T) -> u64 + 'a,
) -> impl Iterator<Item = u64> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let next = match (a.get(i).map(|&x| key(x)), b.get(j).map(|&y| key(y))) {
            (Some(x), Some(y)) if x <= y => {
                i += 1;
                x
            }
            (_, Some(y)) => {
                j += 1;
                y
            }
            (Some(x), None) => {
                i += 1;
                x
            }
            (None, None) => return None,
        };
        Some(next)
    })
}

/// One sorted vector of all `runs` (each sorted), merged two at a time.
fn merge_all(mut runs: Vec<Vec<u64>>) -> Vec<u64> {
    runs.retain(|r| !r.is_empty());
    while runs.len() > 1 {
        let mut next = Vec::with_capacity(runs.len().div_ceil(2));
        let mut pairs = runs.into_iter();
        while let Some(a) = pairs.next() {
            match pairs.next() {
                Some(b) => {
                    let mut merged = Vec::with_capacity(a.len() + b.len());
                    merged.extend(sorted_pair(&a, &b, |k| k));
                    next.push(merged);
                }
                None => next.push(a),
            }
        }
        runs = next;
    }
    runs.pop().unwrap_or_default()
}

fn list_scalar(values: Vec<i64>) -> ScalarValue {
    let values = Int64Array::from(values);
    let list = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Int64, true)),
        OffsetBuffer::from_lengths([values.len()]),
        Arc::new(values),
        None,
    );
    ScalarValue::List(Arc::new(list))
}

/// How many times the number of keys their range may span for [`sort_keys`] to sort them with
/// bitmaps: two bits per value of the range, against 16 bytes per key for the radix sort.
const DENSE_SPAN: u64 = 16;

/// Sorts `keys` (as unsigned numbers) for [`repeats`]: each key at least once, and at least twice
/// when it occurs more than once. Dense keys are marked in two bitmaps over their range (seen,
/// seen again) and read back in order, each key once or twice: a pass over the keys and one over
/// the bitmaps, which stay in cache where ids that count up arrive roughly in order. Other keys
/// are radix-sorted, repeats and all.
pub(crate) fn sort_keys(keys: &mut Vec<u64>) {
    if keys.is_empty() {
        return;
    }
    match Marks::of(keys) {
        Some(marks) => *keys = marks.keys(),
        None => radix_sort(keys),
    }
}

/// Sorts keys with a least-significant-digit radix sort on 11-bit digits, skipping the digits
/// that every key shares (ids that count up from zero to a few million need three passes, not
/// six). Each pass scatters into 2,048 places, few enough for the caches to follow (16-bit
/// digits took one pass fewer but were slower; see docs/architecture.md).
pub(crate) fn radix_sort(keys: &mut Vec<u64>) {
    const BITS: usize = 11;
    const BUCKETS: usize = 1 << BITS;
    const DIGITS: usize = 64_usize.div_ceil(BITS);
    if keys.len() < 4096 {
        keys.sort_unstable();
        return;
    }
    // One histogram per digit, all from one pass over the keys.
    let mut counts = vec![0usize; BUCKETS * DIGITS];
    for &k in keys.iter() {
        for d in 0..DIGITS {
            counts[d * BUCKETS + (((k >> (d * BITS)) as usize) & (BUCKETS - 1))] += 1;
        }
    }
    let n = keys.len();
    let mut other = vec![0u64; n];
    for (d, c) in counts.chunks_exact_mut(BUCKETS).enumerate() {
        if c.contains(&n) {
            continue;
        }
        let mut sum = 0;
        for slot in c.iter_mut() {
            let count = *slot;
            *slot = sum;
            sum += count;
        }
        let shift = d * BITS;
        for &k in keys.iter() {
            let b = ((k >> shift) as usize) & (BUCKETS - 1);
            other[c[b]] = k;
            c[b] += 1;
        }
        std::mem::swap(keys, &mut other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;

    fn run(batches: &[ArrayRef]) -> Vec<i64> {
        let mut acc = RepeatedKeys::default();
        for b in batches {
            acc.update_batch(std::slice::from_ref(b)).unwrap();
        }
        match acc.evaluate().unwrap() {
            ScalarValue::List(l) => l.value(0).as_primitive::<Int64Type>().values().to_vec(),
            other => panic!("{other:?}"),
        }
    }

    fn ints(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    #[test]
    fn reports_each_repeated_key_once() {
        let a = ints(&[Some(3), Some(1), None, Some(3)]);
        let b = ints(&[Some(2), Some(3), None, Some(-5), Some(-5)]);
        assert_eq!(run(&[a, b]), vec![-5, 3]);
        assert_eq!(run(&[ints(&[Some(1), Some(2)])]), Vec::<i64>::new());
        assert_eq!(run(&[ints(&[None, None])]), Vec::<i64>::new());
        assert_eq!(run(&[]), Vec::<i64>::new());
    }

    #[test]
    fn text_ids_by_their_keys() {
        let ids: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("x"),
            Some("y"),
            Some("x"),
            None,
            None,
        ]));
        let x = super::super::event_key::text_key(b"x");
        assert_eq!(run(&[ids]), vec![x]);
    }

    #[test]
    fn partial_states_merge() {
        // Two partitions that each see a key once: together it repeats.
        let mut p1 = RepeatedKeys::default();
        p1.update_batch(&[ints(&[Some(10), Some(20)])]).unwrap();
        let mut p2 = RepeatedKeys::default();
        p2.update_batch(&[ints(&[Some(30), Some(10), Some(40), Some(40)])])
            .unwrap();
        let mut fin = RepeatedKeys::default();
        for p in [&mut p1, &mut p2] {
            let state = p.state().unwrap();
            fin.merge_batch(&[state[0].to_array().unwrap()]).unwrap();
        }
        match fin.evaluate().unwrap() {
            ScalarValue::List(l) => {
                assert_eq!(l.value(0).as_primitive::<Int64Type>().values(), &[10, 40])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn any_number_of_partial_states_merge() {
        // Keys repeat within one partition, across two, or across all; negative keys sort
        // after the others as unsigned numbers and must still be found.
        let parts = [
            vec![Some(-7), Some(1), Some(5), None, Some(5)],
            vec![Some(2), Some(-7), Some(9)],
            vec![Some(9), Some(3), Some(-2), Some(1)],
            vec![],
        ];
        for n in 1..=parts.len() {
            let mut fin = RepeatedKeys::default();
            for keys in &parts[..n] {
                let mut p = RepeatedKeys::default();
                p.update_batch(&[ints(keys)]).unwrap();
                let state = p.state().unwrap();
                fin.merge_batch(&[state[0].to_array().unwrap()]).unwrap();
            }
            let expected: &[i64] = match n {
                1 => &[5],
                2 => &[-7, 5],
                _ => &[-7, 1, 5, 9],
            };
            match fin.evaluate().unwrap() {
                ScalarValue::List(l) => {
                    assert_eq!(
                        l.value(0).as_primitive::<Int64Type>().values(),
                        expected,
                        "{n}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// The states of partitions holding `parts`, merged in one final step.
    fn merged(parts: &[Vec<i64>]) -> Vec<i64> {
        let mut fin = RepeatedKeys::default();
        for keys in parts {
            let mut p = RepeatedKeys::default();
            p.update_batch(&[Arc::new(Int64Array::from(keys.clone())) as ArrayRef])
                .unwrap();
            let state: Vec<ArrayRef> = p
                .state()
                .unwrap()
                .iter()
                .map(|v| v.to_array().unwrap())
                .collect();
            fin.merge_batch(&state).unwrap();
        }
        match fin.evaluate().unwrap() {
            ScalarValue::List(l) => l.value(0).as_primitive::<Int64Type>().values().to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dense_partitions_hand_on_bitmaps_and_merge_with_any_others() {
        let range = |a: i64, b: i64| (a..b).collect::<Vec<i64>>();
        // Dense: a repeat inside, and a range that overlaps the next partition's.
        let a = [range(0, 10_000), range(5_000, 5_010)].concat();
        let b = [range(9_990, 20_000), vec![15_000]].concat();
        // Sparse, and dense but far away (negative: far up as unsigned numbers).
        let c = vec![3, 1 << 40, 3, 12_345];
        let d = [range(-6_000, -1_000), vec![-2_000]].concat();
        let mut p = RepeatedKeys::default();
        p.update_batch(&[Arc::new(Int64Array::from(a.clone())) as ArrayRef])
            .unwrap();
        let state = p.state().unwrap();
        assert!(
            matches!(state[1], ScalarValue::Int64(Some(0))),
            "{:?}",
            state[1]
        );
        for parts in [
            vec![a.clone(), b.clone()],
            vec![a.clone(), b.clone(), c.clone()],
            vec![a.clone(), d.clone()],
            vec![c.clone(), a.clone(), d.clone(), b.clone()],
            vec![d.clone()],
        ] {
            let all: Vec<u64> = parts.iter().flatten().map(|&k| k as u64).collect();
            let mut expected = expected_repeats(&all);
            expected.sort_unstable();
            assert_eq!(merged(&parts), expected, "{} partitions", parts.len());
        }
        assert_eq!(
            merged(&[a, b]),
            [range(5_000, 5_010), range(9_990, 10_000), vec![15_000]].concat()
        );
    }

    /// Repeated keys found by sorting a sequence the simple way.
    fn expected_repeats(keys: &[u64]) -> Vec<i64> {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        let mut out = Vec::new();
        repeats(sorted.into_iter(), &mut out);
        out
    }

    #[test]
    fn dense_and_sparse_keys_find_the_same_repeats() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Dense ids that count up in shuffled blocks, with some repeated two or three times
        // (a key seen three times must still come out, once); then the same ids spread out so
        // that the radix sort takes them; then ids around zero, far apart as unsigned numbers.
        let mut dense: Vec<u64> = (1000..60_000u64).collect();
        for i in 0..dense.len() {
            let j = (i / 64) * 64 + (next() % 64) as usize;
            if j < dense.len() {
                dense.swap(i, j);
            }
        }
        dense.extend([1000, 1000, 59_999, 31_337, 1000]);
        let sparse: Vec<u64> = dense.iter().map(|k| k * 1_000_003).collect();
        let around_zero: Vec<u64> = dense.iter().map(|&k| (k as i64 - 30_000) as u64).collect();
        for keys in [dense, sparse, around_zero] {
            let mut sorted = keys.clone();
            sort_keys(&mut sorted);
            assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
            let mut found = Vec::new();
            repeats(sorted.into_iter(), &mut found);
            assert_eq!(found, expected_repeats(&keys));
            assert_eq!(found.len(), 3);
        }
    }

    #[test]
    fn radix_sort_sorts() {
        // Large enough for the radix path, with keys that differ in every digit, negative ones
        // (high bits set) and runs.
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut keys: Vec<u64> = (0..50_000)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i % 3 == 0 { i / 3 } else { state }
            })
            .collect();
        keys.extend_from_slice(&[u64::MAX, 0, u64::MAX]);
        let mut expected = keys.clone();
        expected.sort_unstable();
        radix_sort(&mut keys);
        assert_eq!(keys, expected);
        // Small keys only: the shared high digits are skipped.
        let mut small: Vec<u64> = (0..10_000u64).rev().chain(0..10_000).collect();
        radix_sort(&mut small);
        assert!(small.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(small.len(), 20_000);
    }
}

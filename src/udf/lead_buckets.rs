//! Many leads per group: how `fold_events` folds when it is also given each row's `lead_id` and
//! `account_id` (its last two arguments), and its spec's `lead_bits`.
//!
//! Grouping by lead makes the engine keep a hash table with an entry per lead and probe it once
//! per event row: at a million leads the table outgrows the processor's caches and each probe is
//! a miss (7 % of a `score` run at 20M events in a profile). With integer ids, `lead_activity.sql`
//! groups by `lead_id >> lead_bits` instead — buckets of up to 2^`lead_bits` leads, a few
//! thousand groups whose table stays in cache — and the fold tells a bucket's leads apart by the
//! low bits of their ids: lead `id` of the bucket with group number `g` becomes the fold's own
//! group `(g << lead_bits) | (id mod 2^lead_bits)`. The fold keeps and walks each lead's events
//! exactly as when the engine groups by lead; the group's result lists its leads' snapshots in id
//! order, each with the lead's `lead_id` and `account_id` (the first non-null `account_id` of its
//! rows: its leads-table row's).
//!
//! With `lead_bits` = 0 (text ids, or a fold over rows sorted by lead, whose groups end one by
//! one) a group is one lead, of any id type; its id is recorded from the row that opened it.
//!
//! ```sql
//! select unnest(fold_events(ts, action, asset, product, value, fit, '[...]',
//!          '{"threshold":100, ..., "lead_bits":8}', dropped, lead_id, account_id)) as s
//! from lead_rows group by lead_id >> 8;
//! -- s['lead_id'], s['account_id'], s['engagement'], ...
//! ```
//!
//! The partial state is the fold's, one entry per lead of the group (lists of those lists), with
//! the group's bucket (or lead id) and its leads' accounts.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, StructArray, UInt32Array,
    new_null_array,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::{concat, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

use super::lead_fold::LeadFoldGroups;

/// The most bits of a lead id a bucket spans.
pub(crate) const MAX_LEAD_BITS: u32 = 16;
const NO_ACCOUNT: u32 = u32::MAX;
/// `fold_events`' account argument: the last one the fold reads.
const ACCOUNT_ARG: usize = 10;

/// `fields` (a fold's snapshot fields) and the two that `fold_events` adds when it is given lead
/// ids and accounts.
pub(crate) fn with_lead_fields(fields: &Fields, lead: &DataType, account: &DataType) -> Fields {
    fields
        .iter()
        .cloned()
        .chain([
            Arc::new(Field::new("lead_id", lead.clone(), true)),
            Arc::new(Field::new("account_id", account.clone(), true)),
        ])
        .collect()
}

/// `pieces` as one array.
fn joined(pieces: &[ArrayRef]) -> Result<ArrayRef> {
    let pieces: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref() as &dyn Array).collect();
    Ok(concat(&pieces)?)
}

/// The partial state of the bucketed fold: each of the fold's state fields as a list per group
/// (one entry per lead of the bucket), the group's bucket or lead id, and its leads' accounts.
pub(crate) fn state_fields(
    fold: Vec<FieldRef>,
    name: &str,
    lead: &DataType,
    account: &DataType,
) -> Vec<FieldRef> {
    let mut fields: Vec<FieldRef> = fold
        .into_iter()
        .map(|f| {
            Arc::new(Field::new(
                f.name(),
                DataType::List(Arc::new(Field::new_list_field(f.data_type().clone(), true))),
                true,
            ))
        })
        .collect();
    fields.push(Arc::new(Field::new(
        format!("{name}[lead]"),
        lead.clone(),
        true,
    )));
    fields.push(Arc::new(Field::new(
        format!("{name}[accounts]"),
        DataType::List(Arc::new(Field::new_list_field(account.clone(), true))),
        true,
    )));
    fields
}

/// The grouped accumulator of a fold over buckets of leads (see the module's text).
#[derive(Clone, Debug)]
pub(crate) struct LeadBuckets {
    inner: LeadFoldGroups,
    /// How many states of `inner` each row of a partial state holds.
    fold_state_fields: usize,
    bits: u32,
    lead_type: DataType,
    account_type: DataType,
    /// Groups seen so far.
    groups: usize,
    /// `lead_bits` > 0: each group's bucket, `lead_id >> lead_bits` (none for the null ids').
    buckets: Vec<Option<i64>>,
    /// `lead_bits` = 0: the groups' lead ids, in group order, in pieces.
    leads: Vec<ArrayRef>,
    lead_count: usize,
    /// Each lead's account (by the fold's group): its row in the pieces of `accounts`.
    account_of: Vec<u32>,
    accounts: Vec<ArrayRef>,
    account_rows: usize,
    /// The fold's groups of a batch's rows.
    slots: Vec<usize>,
}

impl LeadBuckets {
    pub(crate) fn new(
        inner: LeadFoldGroups,
        fold_state_fields: usize,
        bits: u32,
        lead_type: DataType,
        account_type: DataType,
    ) -> Result<Self> {
        if bits > MAX_LEAD_BITS {
            return plan_err!("fold_events: lead_bits is at most {MAX_LEAD_BITS}, got {bits}");
        }
        if bits > 0 && lead_type != DataType::Int64 {
            return plan_err!(
                "fold_events: lead_bits > 0 needs integer lead ids (grouped by lead_id >> \
                 lead_bits), got {lead_type}"
            );
        }
        Ok(Self {
            inner,
            fold_state_fields,
            bits,
            lead_type,
            account_type,
            groups: 0,
            buckets: Vec::new(),
            leads: Vec::new(),
            lead_count: 0,
            account_of: Vec::new(),
            accounts: Vec::new(),
            account_rows: 0,
            slots: Vec::new(),
        })
    }

    /// Leads per group.
    fn per_group(&self) -> usize {
        1 << self.bits
    }

    /// Makes room for groups `0..groups`, as a batch naming them would.
    pub(crate) fn reserve(&mut self, groups: usize) {
        if groups > self.groups {
            self.groups = groups;
        }
        if self.bits > 0 && self.buckets.len() < self.groups {
            self.buckets.resize(self.groups, None);
        }
        let slots = self.groups << self.bits;
        if self.account_of.len() < slots {
            self.account_of.resize(slots, NO_ACCOUNT);
        }
        self.inner.ensure_groups(slots);
    }

    /// Notes group `g`'s bucket from a lead id of it: the group's first row, or a row of another
    /// bucket (an error). Rows of the group's known bucket do not come here (see `update_batch`).
    #[cold]
    #[inline(never)]
    fn note_bucket(&mut self, g: usize, id: i64) -> Result<()> {
        let bucket = id >> self.bits;
        match self.buckets[g] {
            Some(b) if b == bucket => Ok(()),
            None => {
                self.buckets[g] = Some(bucket);
                Ok(())
            }
            Some(b) => exec_err!(
                "fold_events: one group holds lead ids {} and {id}, of different buckets: with \
                 lead_bits {}, group by lead_id >> {}",
                b << self.bits,
                self.bits,
                self.bits
            ),
        }
    }

    /// Records the lead ids of the groups that rows of `ids` open (`lead_bits` = 0): a new
    /// group's number is the count of groups before it.
    fn note_new_leads(&mut self, ids: &ArrayRef, groups: &[usize], total: usize) -> Result<()> {
        let mut rows: Vec<u32> = Vec::new();
        for (i, &g) in groups.iter().enumerate() {
            if g == self.lead_count + rows.len() {
                rows.push(i as u32);
            }
        }
        if !rows.is_empty() {
            self.lead_count += rows.len();
            self.leads.push(take(ids, &UInt32Array::from(rows), None)?);
        }
        if self.lead_count != total {
            return exec_err!(
                "fold_events: groups numbered out of order ({} lead ids for {total} groups)",
                self.lead_count
            );
        }
        Ok(())
    }

    /// Records the accounts of rows of `accounts`, each for the lead `slots` gives, when the lead
    /// has none yet.
    fn note_accounts(&mut self, accounts: &ArrayRef, slots: &[usize]) -> Result<()> {
        let nulls = accounts.logical_nulls();
        if nulls
            .as_ref()
            .is_some_and(|n| n.null_count() == accounts.len())
        {
            return Ok(());
        }
        let mut rows: Vec<u32> = Vec::new();
        for (i, &slot) in slots.iter().enumerate() {
            if nulls.as_ref().is_none_or(|n| n.is_valid(i)) && self.account_of[slot] == NO_ACCOUNT {
                self.account_of[slot] = (self.account_rows + rows.len()) as u32;
                rows.push(i as u32);
            }
        }
        if !rows.is_empty() {
            self.account_rows += rows.len();
            self.accounts
                .push(take(accounts, &UInt32Array::from(rows), None)?);
        }
        Ok(())
    }

    /// What names each of groups `0..n`, as one array: its bucket (`lead_bits` > 0), or its
    /// lead id (null for a group no row has opened yet).
    fn group_keys(&self, n: usize) -> Result<ArrayRef> {
        if self.bits > 0 {
            return Ok(Arc::new(Int64Array::from(self.buckets[..n].to_vec())));
        }
        let missing = new_null_array(&self.lead_type, n.saturating_sub(self.lead_count));
        let mut pieces = self.leads.clone();
        pieces.push(missing);
        Ok(joined(&pieces)?.slice(0, n))
    }

    /// The accounts of the leads (by the fold's group) `slots`, null for those without one.
    fn accounts_of(&self, slots: impl Iterator<Item = usize>) -> Result<ArrayRef> {
        let rows: UInt32Array = slots
            .map(|s| Some(self.account_of[s]).filter(|&r| r != NO_ACCOUNT))
            .collect();
        if self.accounts.is_empty() {
            return Ok(new_null_array(&self.account_type, rows.len()));
        }
        Ok(take(&joined(&self.accounts)?, &rows, None)?)
    }

    /// Forgets groups `0..n` (all of them for [`EmitTo::All`]); the others are renumbered from 0.
    fn release(&mut self, emit_to: EmitTo, n: usize) -> Result<()> {
        if matches!(emit_to, EmitTo::All) {
            // The fold has handed over all of its groups too.
            self.groups = 0;
            self.buckets = Vec::new();
            self.leads = Vec::new();
            self.lead_count = 0;
            self.account_of = Vec::new();
            self.accounts = Vec::new();
            self.account_rows = 0;
            return Ok(());
        }
        self.groups -= n;
        if self.bits > 0 {
            self.buckets.drain(..n);
        } else {
            // Copied out of the slice, so that the emitted ids' memory goes with them.
            let all = self.group_keys(self.lead_count)?;
            let rest = concat(&[all.slice(n, self.lead_count - n).as_ref()])?;
            self.lead_count = rest.len();
            self.leads = vec![rest];
        }
        // The remaining leads' accounts, renumbered into one piece of their own (a sorted
        // backfill emits group after group: what is kept stays a batch's worth).
        let kept = self.account_of.split_off(n << self.bits);
        let rows: UInt32Array = kept
            .iter()
            .filter(|&&r| r != NO_ACCOUNT)
            .map(|&r| Some(r))
            .collect();
        let accounts = if rows.is_empty() {
            Vec::new()
        } else {
            vec![take(&joined(&self.accounts)?, &rows, None)?]
        };
        let mut next = 0u32;
        self.account_of = kept
            .into_iter()
            .map(|r| {
                if r == NO_ACCOUNT {
                    r
                } else {
                    next += 1;
                    next - 1
                }
            })
            .collect();
        self.account_rows = next as usize;
        self.accounts = accounts;
        Ok(())
    }

    /// The fold's emission for `emit_to`, and how many of these groups it covers.
    fn inner_emit(&self, emit_to: EmitTo) -> (EmitTo, usize) {
        match emit_to {
            EmitTo::All => (EmitTo::All, self.groups),
            EmitTo::First(n) => (EmitTo::First(n << self.bits), n),
        }
    }

    /// The splits of `values`: the fold's arguments, the lead ids, the accounts (an `event_id`
    /// after them plays no part in the fold).
    fn split(values: &[ArrayRef]) -> Result<(&[ArrayRef], &ArrayRef, &ArrayRef)> {
        let values = &values[..values.len().min(ACCOUNT_ARG + 1)];
        match values {
            [fold @ .., ids, accounts] => Ok((fold, ids, accounts)),
            _ => exec_err!("fold_events: lead_id and account_id are missing"),
        }
    }
}

impl GroupsAccumulator for LeadBuckets {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let (fold, ids, accounts) = Self::split(values)?;
        self.reserve(total_num_groups);
        let mut slots = std::mem::take(&mut self.slots);
        slots.clear();
        if self.bits == 0 {
            self.note_new_leads(ids, group_indices, self.groups)?;
            slots.extend_from_slice(group_indices);
        } else {
            let ids = ids.as_primitive::<Int64Type>();
            let (bits, mask) = (self.bits, self.per_group() as i64 - 1);
            slots.reserve(group_indices.len());
            for (i, (&g, &id)) in group_indices.iter().zip(ids.values()).enumerate() {
                // A null id's row is its group's first slot (the FILTER leaves it out).
                if ids.is_valid(i) {
                    // Almost every row is of its group's known bucket: one comparison, inline.
                    if self.buckets[g] != Some(id >> bits) {
                        self.note_bucket(g, id)?;
                    }
                    slots.push((g << bits) | (id & mask) as usize);
                } else {
                    slots.push(g << bits);
                }
            }
        }
        let done = self.note_accounts(accounts, &slots).and_then(|_| {
            self.inner
                .update_batch(fold, &slots, opt_filter, self.groups << self.bits)
        });
        self.slots = slots;
        done
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (inner_emit, n) = self.inner_emit(emit_to);
        let folded = self.inner.evaluate(inner_emit)?;
        let lists = folded.as_list::<i32>();
        let offsets = lists.value_offsets();
        let snapshots = lists.values().as_struct();
        // Each snapshot's lead: the fold's group it came from.
        let mut slot_of_snapshot: Vec<usize> = Vec::with_capacity(snapshots.len());
        for slot in 0..(n << self.bits) {
            let len = (offsets[slot + 1] - offsets[slot]) as usize;
            slot_of_snapshot.extend(std::iter::repeat_n(slot, len));
        }
        let keys = self.group_keys(n)?;
        let lead_ids: ArrayRef = if self.bits > 0 {
            let buckets = keys.as_primitive::<Int64Type>();
            let mask = self.per_group() - 1;
            Arc::new(
                slot_of_snapshot
                    .iter()
                    .map(|&s| {
                        let g = s >> self.bits;
                        buckets
                            .is_valid(g)
                            .then(|| (buckets.value(g) << self.bits) | (s & mask) as i64)
                    })
                    .collect::<Int64Array>(),
            )
        } else {
            let rows: UInt32Array = slot_of_snapshot.iter().map(|&s| s as u32).collect();
            take(&keys, &rows, None)?
        };
        let accounts = self.accounts_of(slot_of_snapshot.iter().copied())?;
        let fields = with_lead_fields(snapshots.fields(), &self.lead_type, &self.account_type);
        let mut columns = snapshots.columns().to_vec();
        columns.push(lead_ids);
        columns.push(accounts);
        let snapshots = StructArray::try_new(fields.clone(), columns, None)?;
        let group_offsets: Vec<i32> = (0..=n).map(|g| offsets[g << self.bits]).collect();
        let out = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Struct(fields), true)),
            OffsetBuffer::new(ScalarBuffer::from(group_offsets)),
            Arc::new(snapshots),
            None,
        )?;
        self.release(emit_to, n)?;
        Ok(Arc::new(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (inner_emit, n) = self.inner_emit(emit_to);
        let per = self.per_group();
        let regular = OffsetBuffer::from_lengths(std::iter::repeat_n(per, n));
        let wrap = |a: ArrayRef| -> Result<ArrayRef> {
            Ok(Arc::new(ListArray::try_new(
                Arc::new(Field::new_list_field(a.data_type().clone(), true)),
                regular.clone(),
                a,
                None,
            )?))
        };
        let mut out = self
            .inner
            .state(inner_emit)?
            .into_iter()
            .map(wrap)
            .collect::<Result<Vec<_>>>()?;
        out.push(self.group_keys(n)?);
        out.push(wrap(self.accounts_of(0..n << self.bits)?)?);
        self.release(emit_to, n)?;
        Ok(out)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let k = self.fold_state_fields;
        if values.len() != k + 2 {
            return exec_err!(
                "fold_events: a partial state of {} columns, not {}",
                values.len(),
                k + 2
            );
        }
        self.reserve(total_num_groups);
        let ids = &values[k];
        if self.bits == 0 {
            self.note_new_leads(ids, group_indices, self.groups)?;
        } else {
            let ids = ids.as_primitive::<Int64Type>();
            for (row, &g) in group_indices.iter().enumerate() {
                if ids.is_valid(row) {
                    // The state holds the bucket: any id of it names it.
                    self.note_bucket(g, ids.value(row) << self.bits)?;
                }
            }
        }
        // Every list column has one entry per lead of its row's bucket.
        let per = self.per_group();
        let mut slots: Vec<usize> = Vec::with_capacity(group_indices.len() * per);
        for &g in group_indices {
            slots.extend((0..per).map(|j| (g << self.bits) | j));
        }
        let entries = |list: &ArrayRef| -> Result<ArrayRef> {
            let list = list.as_list::<i32>();
            let o = list.value_offsets();
            let (first, last) = (o[0] as usize, o[o.len() - 1] as usize);
            if (0..list.len()).any(|r| (o[r + 1] - o[r]) as usize != per) {
                return exec_err!(
                    "fold_events: a partial state with other than {per} leads per group"
                );
            }
            Ok(list.values().slice(first, last - first))
        };
        let accounts = entries(&values[k + 1])?;
        self.note_accounts(&accounts, &slots)?;
        let fold = values[..k]
            .iter()
            .map(entries)
            .collect::<Result<Vec<_>>>()?;
        self.inner
            .merge_batch(&fold, &slots, self.groups << self.bits)
    }

    // Each row as a group of its own.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let rows = values.first().map_or(0, |a| a.len());
        let mut one = Self::new(
            self.inner.empty_like(),
            self.fold_state_fields,
            self.bits,
            self.lead_type.clone(),
            self.account_type.clone(),
        )?;
        let groups: Vec<usize> = (0..rows).collect();
        one.update_batch(values, &groups, opt_filter, rows)?;
        one.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        let arrays: usize = self
            .leads
            .iter()
            .chain(&self.accounts)
            .map(|a| a.get_array_memory_size())
            .sum();
        size_of::<Self>()
            + self.inner.size()
            + self.buckets.capacity() * size_of::<Option<i64>>()
            + self.account_of.capacity() * size_of::<u32>()
            + self.slots.capacity() * size_of::<usize>()
            + arrays
    }
}

/// The bucketed fold over a single group (no GROUP BY).
#[derive(Debug)]
pub(crate) struct OneGroup(pub(crate) LeadBuckets);

impl OneGroup {
    /// A copy holding the one group, for a result that leaves the rows in place.
    fn one(&self) -> LeadBuckets {
        let mut copy = self.0.clone();
        copy.reserve(1);
        copy
    }
}

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0
            .update_batch(values, &super::one_group(values), None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let out = self.one().evaluate(EmitTo::All)?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.one()
            .state(EmitTo::All)?
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states, &super::one_group(states), 1)
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;
    use crate::context::{EngineOptions, session};

    const RULES: &str =
        r#"[{"action":"page_view","assets":["/pricing*"],"points":10,"stage_rank":1}]"#;
    const PARAMS_JSON: &str = r#"{"threshold":15,"floor":0,"decay":{"kind":"exponential","half_life_days":10},"from":"2026-01-10","to":"2026-01-30","every_days":10,"stages":1,"products":true"#;

    /// Event rows of leads spread over three buckets of 256 (among them a negative id, two leads
    /// with the same low bits, a lead with only a leads-table row, a dropped copy, rejected and
    /// null-lead rows), and the leads' rows with their fit and account.
    const ROWS: &str = "create table rows as select lead_id, \
        arrow_cast(to_timestamp_micros(ts), 'Timestamp(Microsecond, Some(\"UTC\"))') as ts, \
        arrow_cast(action, 'Utf8View') as action, arrow_cast(asset, 'Utf8View') as asset, \
        arrow_cast(product, 'Utf8View') as product, value, fit, account_id, dropped \
        from (values \
        (3, 1767744000000000, 'page_view', '/pricing', 'crm', null, null, null, false), \
        (3, 1767830400000000, 'page_view', '/pricing', 'crm', null, null, null, false), \
        (3, 1767830400000000, 'page_view', '/pricing', 'crm', null, null, null, true), \
        (259, 1767916800000000, 'page_view', '/pricing/a', 'ads', null, null, null, false), \
        (259, 1768003200000000, 'email_open', 'x', null, null, null, null, false), \
        (-1, 1768089600000000, 'page_view', '/pricing', null, null, null, null, false), \
        (-256, 1768089600000000, 'page_view', '/blog', null, null, null, null, false), \
        (515, 1768176000000000, 'page_view', '/pricing', 'crm', null, null, null, false), \
        (515, null, 'page_view', '/pricing', 'crm', null, null, null, false), \
        (null, 1768176000000000, 'page_view', '/pricing', 'crm', null, null, null, false), \
        (3, null, null, null, null, null, 2.0, 'acct-a', false), \
        (259, null, null, null, null, null, 6.0, 'acct-b', false), \
        (1027, null, null, null, null, null, 1.0, 'acct-c', false), \
        (-1, null, null, null, null, null, 0.0, null, false) \
        ) as t(lead_id, ts, action, asset, product, value, fit, account_id, dropped)";

    fn fold(bits: u32, group: &str) -> String {
        format!(
            "select s['lead_id'] as lead_id, s['account_id'] as account_id, s['as_of'] as as_of, \
             s['engagement'] as engagement, s['fit'] as fit, s['mql_at'] as mql_at, \
             s['matched'] as matched, s['unmatched'] as unmatched, s['products'] as products \
             from (select unnest(fold_events(ts, action, asset, product, value, fit, '{RULES}', \
             '{PARAMS_JSON},\"lead_bits\":{bits}}}', dropped, lead_id, account_id) \
             filter (where lead_id is not null)) as s from rows group by {group}) \
             order by lead_id, as_of"
        )
    }

    /// The same fold grouped by lead, with the account as `max()` and without lead arguments.
    fn by_lead() -> String {
        format!(
            "select lead_id, account_id, s['as_of'] as as_of, s['engagement'] as engagement, \
             s['fit'] as fit, s['mql_at'] as mql_at, s['matched'] as matched, \
             s['unmatched'] as unmatched, s['products'] as products \
             from (select lead_id, max(account_id) as account_id, unnest(fold_events(ts, \
             action, asset, product, value, fit, '{RULES}', '{PARAMS_JSON}}}', dropped) \
             filter (where lead_id is not null)) as s from rows group by lead_id) \
             order by lead_id, as_of"
        )
    }

    async fn rows_of(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    /// A session of leadscore's (one-phase fold) and DataFusion's own (partial states merged),
    /// both cutting the rows into batches of two over three partitions.
    async fn sessions() -> Vec<SessionContext> {
        let ours = session(&EngineOptions {
            threads: 3,
            batch_size: 2,
            ..EngineOptions::default()
        })
        .unwrap();
        let mut plain = SessionContext::new_with_config(
            SessionConfig::new()
                .with_target_partitions(3)
                .with_batch_size(2),
        );
        crate::udf::register_all(&mut plain).unwrap();
        for ctx in [&ours, &plain] {
            ctx.sql(ROWS).await.unwrap().collect().await.unwrap();
        }
        vec![ours, plain]
    }

    #[tokio::test]
    async fn buckets_of_leads_fold_as_one_lead_per_group() {
        for ctx in sessions().await {
            let expected = rows_of(&ctx, &by_lead()).await;
            // Leads 3, 259, -1, -256, 515 and 1027 (the last with only its leads-table row);
            // lead 3's copy cancelled (one matched event on its second day).
            for id in ["| 3 ", "| 259 ", "| -1 ", "| -256 ", "| 515 ", "| 1027 "] {
                assert!(expected.contains(id), "{id} in {expected}");
            }
            assert!(expected.contains("acct-b"), "{expected}");
            assert_eq!(rows_of(&ctx, &fold(8, "lead_id >> 8")).await, expected);
            assert_eq!(rows_of(&ctx, &fold(0, "lead_id")).await, expected);
            // One bucket for all: any number of low bits up to the maximum.
            assert_eq!(rows_of(&ctx, &fold(16, "lead_id >> 16")).await, expected);
        }
    }

    #[tokio::test]
    async fn a_group_with_ids_of_two_buckets_is_an_error() {
        for ctx in sessions().await {
            let result = ctx
                .sql(&fold(8, "lead_id >> 9"))
                .await
                .unwrap()
                .collect()
                .await;
            let message = result.unwrap_err().to_string();
            assert!(message.contains("different buckets"), "{message}");
        }
        let ctx = &sessions().await[0];
        let text = fold(8, "cast(lead_id as varchar)").replace(
            "lead_id, account_id)",
            "cast(lead_id as varchar), account_id)",
        );
        let message = ctx
            .sql(&text)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains("integer lead ids"), "{message}");
    }

    #[tokio::test]
    async fn without_groups_the_rows_are_one_bucket() {
        let ctx = &sessions().await[0];
        let sql = format!(
            "select s['lead_id'] as lead_id, s['account_id'] as account_id, s['matched'] as m \
             from (select unnest(fold_events(ts, action, asset, product, value, fit, '{RULES}', \
             '{PARAMS_JSON},\"lead_bits\":16}}', dropped, lead_id, account_id)) as s \
             from rows where lead_id between 0 and 600) order by lead_id, m"
        );
        let rows = rows_of(ctx, &sql).await;
        assert!(rows.contains("| 259     | acct-b     | 1 |"), "{rows}");
        assert!(rows.contains("| 515     |            | 1 |"), "{rows}");
    }

    #[test]
    fn first_groups_leave_the_others_numbered_from_zero() {
        use datafusion::arrow::array::{Float64Array, StringViewArray, TimestampMicrosecondArray};
        let spec = format!("{PARAMS_JSON},\"lead_bits\":8}}");
        let fold = LeadFoldGroups::judging(
            crate::udf::lead_fold::FoldSpec::parse(&spec).unwrap(),
            crate::udf::fold_events::Judge::from_json(RULES).unwrap(),
        );
        let mut buckets =
            LeadBuckets::new(fold, 9, 8, DataType::Int64, DataType::Utf8View).unwrap();
        let day = 1_768_176_000_000_000i64;
        let ids = [1i64, 600, 2, 601];
        let values: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(vec![day; 4]).with_timezone("UTC")),
            Arc::new(StringViewArray::from(vec!["page_view"; 4])),
            Arc::new(StringViewArray::from(vec!["/pricing"; 4])),
            Arc::new(StringViewArray::from(vec![None::<&str>; 4])),
            Arc::new(Float64Array::from(vec![None; 4])),
            Arc::new(Float64Array::from(vec![None; 4])),
            Arc::new(StringViewArray::from(vec![RULES; 4])),
            Arc::new(StringViewArray::from(vec![spec.as_str(); 4])),
            Arc::new(BooleanArray::from(vec![false; 4])),
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringViewArray::from(vec![
                Some("a"),
                None,
                None,
                Some("d"),
            ])),
        ];
        buckets
            .update_batch(&values, &[0, 1, 0, 1], None, 2)
            .unwrap();
        let lead_of = |out: &ArrayRef| -> Vec<i64> {
            let s = out.as_list::<i32>().values().as_struct().clone();
            let ids = s
                .column_by_name("lead_id")
                .unwrap()
                .as_primitive::<Int64Type>();
            ids.iter().map(|v| v.unwrap()).collect()
        };
        let first = buckets.evaluate(EmitTo::First(1)).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(lead_of(&first), [1, 1, 2, 2]); // two leads, two snapshots each
        let rest = buckets.evaluate(EmitTo::All).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(lead_of(&rest), [600, 600, 601, 601]);
        let accounts = rest
            .as_list::<i32>()
            .values()
            .as_struct()
            .column_by_name("account_id")
            .unwrap()
            .clone();
        assert_eq!(
            accounts.as_string_view().iter().collect::<Vec<_>>(),
            [None, None, Some("d"), Some("d")]
        );
    }
}

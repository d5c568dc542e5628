-- repeated_keys (step): the event_key of every event_id that more than one row has, once each,
-- and one null key, which rare_events' suspect rows look up.
--
-- The first half of docs/scoring.md's "Reading the input", item 1, on numbers: an integer event_id is its own key, a text one is hashed
-- (see event_key), so a key here may in rare cases stand for two different texts;
-- duplicate_events compares the rows of these keys on the ids themselves. The aggregate sorts
-- every key instead of grouping them in a hash table (see docs/architecture.md); when
-- --memory-limit could not hold 48 bytes per row, repeated_keys_grouped.sql runs instead.
select unnest(array_append(repeated_keys(event_id), null)) as k
from events

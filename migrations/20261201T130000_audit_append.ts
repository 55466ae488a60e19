/**
 * Appending to the audit chain in one statement: `audit_append` takes the chain's lock (the same advisory lock as
 * before, so nodes of the previous version still serialize with it during a rolling deploy), reads the last link
 * (the newest row, else the newest checkpoint, else genesis), numbers and times the events (the database's clock,
 * read under the lock, in milliseconds: `at` follows `seq` across every node, as an export by time needs), hashes
 * each over the previous hash and inserts them all. A time given by the caller (tests place events in chosen months)
 * is kept. The caller sends each event's canonical JSON in three parts around its `at` and `seq`, which only the
 * database knows: hash = SHA-256(prev_hash || '\n' || p0 || at as JSON || p1 || seq || p2), the same bytes as
 * chainHash in src/audit/chain.ts (verification stays in the application). Before: five statements per append
 * (begin, lock, last link, insert, commit); a login wrote one append in its request. Frozen once landed.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
create function audit_append(
  p_at timestamptz[], p_actor_type text[], p_actor_id text[], p_action text[], p_subject text[], p_client_id text[],
  p_ip text[], p_user_agent text[], p_outcome text[], p_reason text[], p_details jsonb[], p_0 text[], p_1 text[],
  p_2 text[]
) returns table (out_seq bigint, out_at timestamptz, out_prev_hash text, out_hash text)
language plpgsql volatile as $fn$
declare
  last_seq bigint;
  last_hash text;
  n int := coalesce(array_length(p_action, 1), 0);
  this_at timestamptz;
  seqs bigint[] := '{}';
  ats timestamptz[] := '{}';
  prevs text[] := '{}';
  hashes text[] := '{}';
begin
  perform pg_advisory_xact_lock(hashtext('dinhdanh:audit'));
  -- Read after the lock (a new snapshot per statement in read committed): the link the previous holder committed.
  select e.seq, e.hash into last_seq, last_hash from audit_events e order by e.seq desc limit 1;
  if last_seq is null then
    select c.seq, c.hash into last_seq, last_hash from audit_checkpoints c order by c.seq desc limit 1;
  end if;
  if last_seq is null then
    last_seq := 0;
    last_hash := repeat('0', 64);
  end if;
  for i in 1 .. n loop
    this_at := coalesce(p_at[i], date_trunc('milliseconds', clock_timestamp()));
    seqs := seqs || (last_seq + 1);
    ats := ats || this_at;
    prevs := prevs || last_hash;
    last_seq := last_seq + 1;
    -- The time as JavaScript's toISOString writes it (UTC, milliseconds, Z), in JSON quotes.
    last_hash := encode(sha256(convert_to(last_hash || E'\n' || p_0[i]
      || '"' || to_char(this_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"'
      || p_1[i] || last_seq::text || p_2[i], 'UTF8')), 'hex');
    hashes := hashes || last_hash;
  end loop;
  insert into audit_events (seq, at, actor_type, actor_id, action, subject, client_id, ip, user_agent, outcome, reason,
    details, prev_hash, hash)
  select * from unnest(seqs, ats, p_actor_type, p_actor_id, p_action, p_subject, p_client_id, p_ip, p_user_agent,
    p_outcome, p_reason, p_details, prevs, hashes);
  return query select * from unnest(seqs, ats, prevs, hashes);
end
$fn$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function audit_append`.execute(db);
}

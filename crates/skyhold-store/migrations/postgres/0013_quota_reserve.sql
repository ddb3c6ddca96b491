-- A quota check and reservation in ONE round trip: the function takes the
-- subjects' advisory locks (sorted by the caller, so two launches never
-- deadlock), then, in one statement whose snapshot is taken after the
-- locks (READ COMMITTED gives each statement of a volatile function its
-- own), reads the owners' usage (owner_usage counters and unexpired
-- reservations), checks it against every limited scope and inserts the
-- reservation only if the request fits them all. Called outside any
-- transaction, its commit releases the locks: the section that 50
-- concurrent launches of one group queue for is this statement alone,
-- and the next waiter is woken inside the server, with no client round
-- trip between two launches.
--
-- The caller (skyhold-store's reserve_quota) passes what SQL cannot know:
-- vCPUs and memory per instance type (p_types/p_vcpus/p_mib; a type it did
-- not pass makes the function reserve nothing and return a 'u' row, and
-- the caller retries with that type's size), the limited scopes' limits
-- flattened four per scope (instances, vcpus, memory_gib, volume_gib; NULL
-- unlimited) and which owners each scope counts (pairs p_scope[k] ->
-- p_scope_owner[k], lower-cased). It returns the usage rows it read (the
-- caller builds its answer, and the refusal naming the quota, from them),
-- plus an 'i' row with the reservation's id when one was made.
CREATE FUNCTION quota_reserve(
    p_locks BIGINT[], p_now BIGINT, p_owners TEXT[],
    p_types TEXT[], p_vcpus BIGINT[], p_mib BIGINT[],
    p_limits BIGINT[], p_scope INT[], p_scope_owner TEXT[],
    p_owner TEXT, p_req BIGINT[], p_expires BIGINT)
RETURNS TABLE (src TEXT, o TEXT, kind TEXT, rtype TEXT, n BIGINT, g BIGINT, v BIGINT, m BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    k BIGINT;
BEGIN
    -- A reservation expires by itself, so one lost in a crash costs
    -- nothing: its commit need not wait for the WAL flush while the locks
    -- are held (the launch row written next flushes it).
    PERFORM set_config('synchronous_commit', 'off', true);
    FOREACH k IN ARRAY p_locks LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;
    RETURN QUERY
    WITH used_rows AS (
        SELECT 'r'::text AS src, u.owner::text AS o, u.kind::text AS kind, u.rtype::text AS rtype,
               u.n AS n, u.size_gib AS g, 0::bigint AS v, 0::bigint AS m
        FROM owner_usage u
        WHERE u.owner = ANY(p_owners) AND u.n > 0
        UNION ALL
        SELECT 'q'::text, LOWER(r.owner)::text, ''::text, ''::text,
               SUM(r.instances)::bigint, SUM(r.volume_gib)::bigint,
               SUM(r.vcpus)::bigint, SUM(r.memory_mib)::bigint
        FROM quota_reservations r
        WHERE r.expires_at > p_now AND LOWER(r.owner) = ANY(p_owners)
        GROUP BY LOWER(r.owner)
    ),
    -- Each row as an amount, as the caller counts it: a volume row its
    -- size, an instance row its count and its type's size, a reservation
    -- what it holds.
    amounts AS (
        SELECT x.o,
               CASE WHEN x.src = 'r' AND x.kind = 'volume' THEN 0 ELSE x.n END AS i,
               CASE WHEN x.src = 'q' THEN x.v WHEN x.kind = 'volume' THEN 0
                    ELSE x.n * COALESCE(t.vcpus, 0) END AS v,
               CASE WHEN x.src = 'q' THEN x.m WHEN x.kind = 'volume' THEN 0
                    ELSE x.n * COALESCE(t.mib, 0) END AS m,
               CASE WHEN x.src = 'q' OR x.kind = 'volume' THEN x.g ELSE 0 END AS g,
               (x.src = 'r' AND x.kind <> 'volume' AND t.name IS NULL) AS unknown
        FROM used_rows x
        LEFT JOIN unnest(p_types, p_vcpus, p_mib) AS t(name, vcpus, mib)
            ON x.src = 'r' AND t.name = x.rtype
    ),
    per_scope AS (
        SELECT sc.idx,
               COALESCE(SUM(a.i), 0) AS i, COALESCE(SUM(a.v), 0) AS v,
               COALESCE(SUM(a.m), 0) AS m, COALESCE(SUM(a.g), 0) AS g
        FROM generate_series(0, COALESCE(cardinality(p_limits), 0) / 4 - 1) AS sc(idx)
        LEFT JOIN unnest(p_scope, p_scope_owner) AS so(idx, owner) ON so.idx = sc.idx
        LEFT JOIN amounts a ON a.o = so.owner
        GROUP BY sc.idx
    ),
    verdict AS (
        SELECT EXISTS (SELECT 1 FROM amounts WHERE amounts.unknown) AS unknown,
               EXISTS (SELECT 1 FROM per_scope s WHERE
                   (p_req[1] > 0 AND s.i + p_req[1] > p_limits[s.idx * 4 + 1])
                OR (p_req[2] > 0 AND s.v + p_req[2] > p_limits[s.idx * 4 + 2])
                OR (p_req[3] > 0 AND s.m + p_req[3] > p_limits[s.idx * 4 + 3]::numeric * 1024)
                OR (p_req[4] > 0 AND s.g + p_req[4] > p_limits[s.idx * 4 + 4])) AS over
    ),
    ins AS (
        INSERT INTO quota_reservations
            (owner, instances, vcpus, memory_mib, volume_gib, created_at, expires_at)
        SELECT p_owner, p_req[1], p_req[2], p_req[3], p_req[4], p_now, p_expires
        FROM verdict WHERE NOT verdict.unknown AND NOT verdict.over
        RETURNING id
    )
    SELECT 'i'::text, ''::text, ''::text, ''::text, ins.id, 0::bigint, 0::bigint, 0::bigint FROM ins
    UNION ALL
    SELECT 'u'::text, ''::text, ''::text, ''::text, 0::bigint, 0::bigint, 0::bigint, 0::bigint
    FROM verdict WHERE verdict.unknown
    UNION ALL
    SELECT * FROM used_rows;
END $$;

/**
 * Statement texts of the PostgreSQL engine, named so node-postgres prepares each one once per
 * connection. Parameters `$now` (the transaction's commit instant, µs) and `$hist` (copy an old
 * image into history only when its `ver` is below this: `$now`, or 0 with history disabled)
 * appear in every versioned write: a row written earlier in the same transaction already has
 * ver = $now and is not copied twice.
 */
export interface Statement {
  name: string;
  text: string;
}

const stmt = (name: string, text: string): Statement => ({ name: `strata_${name}`, text });

/** The inode table's columns, in the order of the inode statements' values. */
export const INODE_COLUMNS = [
  'ino',
  'mode',
  'uid',
  'gid',
  'nlink',
  'size',
  'rdev',
  'atime_s',
  'atime_ns',
  'mtime_s',
  'mtime_ns',
  'ctime_s',
  'ctime_ns',
  'gen',
  'parent',
  'target',
  'alloc',
] as const;
const INODE_COLS = INODE_COLUMNS.join(', ');
const INODE_VALUES =
  '$1::bigint, $2::int, $3::bigint, $4::bigint, $5::int, $6::bigint, $7::bigint, $8::bigint, ' +
  '$9::int, $10::bigint, $11::int, $12::bigint, $13::int, $14::bigint, $15::bigint, $16::text, $17::bigint';
/**
 * The upserts below first copy the old image into history in a CTE. PostgreSQL runs a
 * data-modifying CTE the main statement does not read only after the main statement, when the
 * row has already been replaced (and FOR UPDATE then skips it as "updated by this command"), so
 * the main statement reads the CTE's output to make it run first.
 */
const AFTER_HISTORY = '(SELECT count(*) FROM h) AS after_history';
const DENTRY_COLS = 'parent, name, ino, type, cursor';

export const SQL = {
  getInode: stmt('get_inode', `SELECT ${INODE_COLS} FROM inode WHERE ino = $1`),
  getInodes: stmt('get_inodes', `SELECT ${INODE_COLS} FROM inode WHERE ino = ANY($1::bigint[])`),
  getInodeLocked: stmt('get_inode_locked', `SELECT ${INODE_COLS} FROM inode WHERE ino = $1 FOR UPDATE`),
  getInodeAsOf: stmt(
    'get_inode_asof',
    `SELECT ${INODE_COLS} FROM inode WHERE ino = $1 AND ver <= $2
     UNION ALL
     SELECT ${INODE_COLS} FROM inode_hist WHERE ino = $1 AND from_us <= $2 AND to_us > $2
     LIMIT 1`,
  ),
  putInode: stmt(
    'put_inode',
    `WITH old AS (SELECT * FROM inode WHERE ino = $1 FOR UPDATE),
     h AS (INSERT INTO inode_hist (from_us, to_us, ${INODE_COLS})
           SELECT ver, $18, ${INODE_COLS} FROM old WHERE ver < $19 RETURNING 1)
     INSERT INTO inode (${INODE_COLS}, ver)
     SELECT ${INODE_VALUES}, $18::bigint FROM ${AFTER_HISTORY}
     ON CONFLICT (ino) DO UPDATE SET mode = EXCLUDED.mode, uid = EXCLUDED.uid, gid = EXCLUDED.gid,
       nlink = EXCLUDED.nlink, size = EXCLUDED.size, rdev = EXCLUDED.rdev,
       atime_s = EXCLUDED.atime_s, atime_ns = EXCLUDED.atime_ns,
       mtime_s = EXCLUDED.mtime_s, mtime_ns = EXCLUDED.mtime_ns,
       ctime_s = EXCLUDED.ctime_s, ctime_ns = EXCLUDED.ctime_ns,
       gen = EXCLUDED.gen, parent = EXCLUDED.parent, target = EXCLUDED.target, alloc = EXCLUDED.alloc,
       ver = EXCLUDED.ver`,
  ),
  // A number just allocated (`fresh`): nothing to copy into history, no conflict to handle.
  insertInode: stmt(
    'insert_inode',
    `INSERT INTO inode (${INODE_COLS}, ver) VALUES (${INODE_VALUES}, $18::bigint)`,
  ),
  // A row this transaction holds locked (it read it, or checked its cached copy): a plain
  // UPDATE, cheaper than the upsert's conflict path. Same parameters as putInode.
  updateInode: stmt(
    'update_inode',
    `WITH old AS (SELECT * FROM inode WHERE ino = $1 FOR UPDATE),
     h AS (INSERT INTO inode_hist (from_us, to_us, ${INODE_COLS})
           SELECT ver, $18, ${INODE_COLS} FROM old WHERE ver < $19 RETURNING 1)
     UPDATE inode SET mode = $2::int, uid = $3::bigint, gid = $4::bigint, nlink = $5::int,
       size = $6::bigint, rdev = $7::bigint, atime_s = $8::bigint, atime_ns = $9::int,
       mtime_s = $10::bigint, mtime_ns = $11::int, ctime_s = $12::bigint, ctime_ns = $13::int,
       gen = $14::bigint, parent = $15::bigint, target = $16::text, alloc = $17::bigint, ver = $18::bigint
     FROM ${AFTER_HISTORY} WHERE ino = $1::bigint`,
  ),
  // A cached inode's check (expectInode, $1-$17) and its write (the new values but ino, $18-$33)
  // in one statement: locks the row only if it still holds the cached values, copies the old
  // image into history, updates, and fails with SR001 (strata_expect) when nothing matched.
  updateCheckedInode: stmt(
    'update_checked_inode',
    `WITH old AS (SELECT * FROM inode WHERE ino = $1 AND mode = $2 AND uid = $3 AND gid = $4
       AND nlink = $5 AND size = $6 AND rdev = $7 AND atime_s = $8 AND atime_ns = $9
       AND mtime_s = $10 AND mtime_ns = $11 AND ctime_s = $12 AND ctime_ns = $13 AND gen = $14
       AND parent = $15 AND target IS NOT DISTINCT FROM $16 AND alloc = $17 FOR UPDATE),
     h AS (INSERT INTO inode_hist (from_us, to_us, ${INODE_COLS})
           SELECT ver, $34, ${INODE_COLS} FROM old WHERE ver < $35 RETURNING 1),
     u AS (UPDATE inode SET mode = $18::int, uid = $19::bigint, gid = $20::bigint, nlink = $21::int,
       size = $22::bigint, rdev = $23::bigint, atime_s = $24::bigint, atime_ns = $25::int,
       mtime_s = $26::bigint, mtime_ns = $27::int, ctime_s = $28::bigint, ctime_ns = $29::int,
       gen = $30::bigint, parent = $31::bigint, target = $32::text, alloc = $33::bigint, ver = $34::bigint
       FROM ${AFTER_HISTORY} WHERE ino = $1::bigint AND EXISTS (SELECT 1 FROM old) RETURNING 1)
     SELECT strata_expect(EXISTS (SELECT 1 FROM u), 'inode', $1::bigint::text)`,
  ),
  deleteInode: stmt(
    'delete_inode',
    `WITH di AS (DELETE FROM inode WHERE ino = $1 RETURNING *),
     hi AS (INSERT INTO inode_hist (from_us, to_us, ${INODE_COLS})
            SELECT ver, $2, ${INODE_COLS} FROM di WHERE ver < $3),
     dx AS (DELETE FROM xattr WHERE ino = $1 RETURNING *),
     hx AS (INSERT INTO xattr_hist (ino, name, from_us, to_us, value)
            SELECT ino, name, ver, $2, value FROM dx WHERE ver < $3),
     dc AS (DELETE FROM chunk WHERE ino = $1 RETURNING *),
     hc AS (INSERT INTO chunk_hist (ino, idx, from_us, to_us, slices)
            SELECT ino, idx, ver, $2, slices FROM dc WHERE ver < $3)
     SELECT 1`,
  ),

  lookup: stmt('lookup', `SELECT ${DENTRY_COLS} FROM dentry WHERE parent = $1 AND name = $2`),
  lookupLocked: stmt(
    'lookup_locked',
    `SELECT ${DENTRY_COLS} FROM dentry WHERE parent = $1 AND name = $2 FOR UPDATE`,
  ),
  lookupAsOf: stmt(
    'lookup_asof',
    `SELECT ${DENTRY_COLS} FROM dentry WHERE parent = $1 AND name = $2 AND ver <= $3
     UNION ALL
     SELECT ${DENTRY_COLS} FROM dentry_hist
      WHERE parent = $1 AND name = $2 AND from_us <= $3 AND to_us > $3
     LIMIT 1`,
  ),
  listDir: stmt(
    'list_dir',
    `SELECT ${DENTRY_COLS} FROM dentry WHERE parent = $1 AND cursor > $2 ORDER BY cursor LIMIT $3`,
  ),
  listDirAsOf: stmt(
    'list_dir_asof',
    `SELECT ${DENTRY_COLS} FROM (
       SELECT ${DENTRY_COLS} FROM dentry WHERE parent = $1 AND cursor > $2 AND ver <= $4
       UNION ALL
       SELECT ${DENTRY_COLS} FROM dentry_hist
        WHERE parent = $1 AND cursor > $2 AND from_us <= $4 AND to_us > $4
     ) d ORDER BY cursor LIMIT $3`,
  ),
  hasEntries: stmt('has_entries', 'SELECT EXISTS (SELECT 1 FROM dentry WHERE parent = $1) AS has'),
  // A name the transaction saw absent is inserted, not upserted: a racing insert of the same
  // name by another server then fails with unique_violation and the transaction is retried
  // (it then sees the entry) instead of silently overwriting it.
  insertDentry: stmt(
    'insert_dentry',
    `INSERT INTO dentry (parent, name, ino, type, cursor, ver) VALUES ($1, $2, $3, $4, $5, $6)`,
  ),
  nextCursors: stmt('next_cursors', `SELECT nextval('dentry_cursor_seq') AS c FROM generate_series(1, $1)`),
  putDentry: stmt(
    'put_dentry',
    `WITH old AS (SELECT * FROM dentry WHERE parent = $1 AND name = $2 FOR UPDATE),
     h AS (INSERT INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor)
           SELECT parent, name, ver, $6, ino, type, cursor FROM old WHERE ver < $7 RETURNING 1)
     INSERT INTO dentry (parent, name, ino, type, cursor, ver)
     SELECT $1::bigint, $2::text, $3::bigint, $4::int, $5::bigint, $6::bigint FROM ${AFTER_HISTORY}
     ON CONFLICT (parent, name) DO UPDATE SET ino = EXCLUDED.ino, type = EXCLUDED.type,
       cursor = EXCLUDED.cursor, ver = EXCLUDED.ver`,
  ),
  deleteDentry: stmt(
    'delete_dentry',
    `WITH d AS (DELETE FROM dentry WHERE parent = $1 AND name = $2 RETURNING *)
     INSERT INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor)
     SELECT parent, name, ver, $3, ino, type, cursor FROM d WHERE ver < $4`,
  ),

  getXattr: stmt('get_xattr', 'SELECT value FROM xattr WHERE ino = $1 AND name = $2'),
  getXattrLocked: stmt('get_xattr_locked', 'SELECT value FROM xattr WHERE ino = $1 AND name = $2 FOR UPDATE'),
  getXattrAsOf: stmt(
    'get_xattr_asof',
    `SELECT value FROM xattr WHERE ino = $1 AND name = $2 AND ver <= $3
     UNION ALL
     SELECT value FROM xattr_hist WHERE ino = $1 AND name = $2 AND from_us <= $3 AND to_us > $3
     LIMIT 1`,
  ),
  listXattrs: stmt('list_xattrs', 'SELECT name FROM xattr WHERE ino = $1 ORDER BY name'),
  listXattrsAsOf: stmt(
    'list_xattrs_asof',
    `SELECT name FROM xattr WHERE ino = $1 AND ver <= $2
     UNION ALL
     SELECT name FROM xattr_hist WHERE ino = $1 AND from_us <= $2 AND to_us > $2
     ORDER BY name`,
  ),
  putXattr: stmt(
    'put_xattr',
    `WITH old AS (SELECT * FROM xattr WHERE ino = $1 AND name = $2 FOR UPDATE),
     h AS (INSERT INTO xattr_hist (ino, name, from_us, to_us, value)
           SELECT ino, name, ver, $4, value FROM old WHERE ver < $5 RETURNING 1)
     INSERT INTO xattr (ino, name, value, ver)
     SELECT $1::bigint, $2::text, $3::bytea, $4::bigint FROM ${AFTER_HISTORY}
     ON CONFLICT (ino, name) DO UPDATE SET value = EXCLUDED.value, ver = EXCLUDED.ver`,
  ),
  deleteXattr: stmt(
    'delete_xattr',
    `WITH d AS (DELETE FROM xattr WHERE ino = $1 AND name = $2 RETURNING *)
     INSERT INTO xattr_hist (ino, name, from_us, to_us, value)
     SELECT ino, name, ver, $3, value FROM d WHERE ver < $4`,
  ),

  getChunk: stmt('get_chunk', 'SELECT slices FROM chunk WHERE ino = $1 AND idx = $2'),
  getChunkLocked: stmt('get_chunk_locked', 'SELECT slices FROM chunk WHERE ino = $1 AND idx = $2 FOR UPDATE'),
  getChunkAsOf: stmt(
    'get_chunk_asof',
    `SELECT slices FROM chunk WHERE ino = $1 AND idx = $2 AND ver <= $3
     UNION ALL
     SELECT slices FROM chunk_hist WHERE ino = $1 AND idx = $2 AND from_us <= $3 AND to_us > $3
     LIMIT 1`,
  ),
  listChunkIndexes: stmt(
    'list_chunk_indexes',
    'SELECT idx FROM chunk WHERE ino = $1 AND idx BETWEEN $2::bigint AND $3::bigint ORDER BY idx',
  ),
  listChunkIndexesAsOf: stmt(
    'list_chunk_indexes_asof',
    `SELECT idx FROM chunk WHERE ino = $1 AND idx BETWEEN $2::bigint AND $3::bigint AND ver <= $4
     UNION
     SELECT idx FROM chunk_hist
      WHERE ino = $1 AND idx BETWEEN $2::bigint AND $3::bigint AND from_us <= $4 AND to_us > $4
     ORDER BY idx`,
  ),
  putChunk: stmt(
    'put_chunk',
    `WITH old AS (SELECT * FROM chunk WHERE ino = $1 AND idx = $2 FOR UPDATE),
     h AS (INSERT INTO chunk_hist (ino, idx, from_us, to_us, slices)
           SELECT ino, idx, ver, $4, slices FROM old WHERE ver < $5 RETURNING 1)
     INSERT INTO chunk (ino, idx, slices, ver)
     SELECT $1::bigint, $2::int, $3::bytea, $4::bigint FROM ${AFTER_HISTORY}
     ON CONFLICT (ino, idx) DO UPDATE SET slices = EXCLUDED.slices, ver = EXCLUDED.ver`,
  ),
  deleteChunk: stmt(
    'delete_chunk',
    `WITH d AS (DELETE FROM chunk WHERE ino = $1 AND idx = $2 RETURNING *)
     INSERT INTO chunk_hist (ino, idx, from_us, to_us, slices)
     SELECT ino, idx, ver, $3, slices FROM d WHERE ver < $4`,
  ),

  // Checks of values a write transaction took from this server's cache (row-cache.ts), sent in
  // its batch before its writes: each locks the row it checks, as the uncached read would have,
  // and strata_expect (migration 3) fails the transaction with SQLSTATE SR001 on a mismatch.
  expectInode: stmt(
    'expect_inode',
    `SELECT strata_expect(EXISTS (SELECT 1 FROM inode WHERE ino = $1 AND mode = $2 AND uid = $3
       AND gid = $4 AND nlink = $5 AND size = $6 AND rdev = $7 AND atime_s = $8 AND atime_ns = $9
       AND mtime_s = $10 AND mtime_ns = $11 AND ctime_s = $12 AND ctime_ns = $13 AND gen = $14
       AND parent = $15 AND target IS NOT DISTINCT FROM $16 AND alloc = $17 FOR UPDATE),
       'inode', $1::bigint::text)`,
  ),
  expectDentry: stmt(
    'expect_dentry',
    `SELECT strata_expect(EXISTS (SELECT 1 FROM dentry WHERE parent = $1 AND name = $2 AND ino = $3
       AND type = $4 AND cursor = $5 FOR UPDATE), 'entry', $1::bigint::text || '/' || $2::text)`,
  ),
  expectNoDentry: stmt(
    'expect_no_dentry',
    `SELECT strata_expect(NOT EXISTS (SELECT 1 FROM dentry WHERE parent = $1 AND name = $2),
       'absent entry', $1::bigint::text || '/' || $2::text)`,
  ),
  expectXattr: stmt(
    'expect_xattr',
    `SELECT strata_expect(EXISTS (SELECT 1 FROM xattr WHERE ino = $1 AND name = $2 AND value = $3
       FOR UPDATE), 'xattr', $1::bigint::text || '/' || $2::text)`,
  ),
  expectNoXattr: stmt(
    'expect_no_xattr',
    `SELECT strata_expect(NOT EXISTS (SELECT 1 FROM xattr WHERE ino = $1 AND name = $2),
       'absent xattr', $1::bigint::text || '/' || $2::text)`,
  ),
  putCallOutcome: stmt(
    'put_call_outcome',
    `INSERT INTO call_outcome (client_id, seq, reply, at_us) VALUES ($1, $2, $3, $4)
     ON CONFLICT (client_id, seq) DO UPDATE SET reply = EXCLUDED.reply, at_us = EXCLUDED.at_us`,
  ),
  getSetting: stmt('get_setting', 'SELECT value FROM setting WHERE key = $1'),
  putSetting: stmt(
    'put_setting',
    'INSERT INTO setting (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
  ),
  getCounter: stmt(
    'get_counter',
    `SELECT coalesce((SELECT value FROM counter WHERE name = $1), 0)
          + coalesce((SELECT sum(value) FROM counter_shard WHERE name = $1), 0)::bigint AS value`,
  ),
  addShardedCounter: stmt(
    'add_sharded_counter',
    `INSERT INTO counter_shard (name, shard, value) VALUES ($1, $2, $3)
     ON CONFLICT (name, shard) DO UPDATE SET value = counter_shard.value + EXCLUDED.value`,
  ),
  addCounter: stmt(
    'add_counter',
    `INSERT INTO counter (name, value) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET value = counter.value + EXCLUDED.value RETURNING value`,
  ),

  // Renamed with slice_floor (migration 7): a connection may hold the old prepared statements.
  getSession: stmt(
    'get_session_7',
    'SELECT id, info, started_us, heartbeat_us, slice_floor FROM session WHERE id = $1',
  ),
  listSessions: stmt(
    'list_sessions_7',
    'SELECT id, info, started_us, heartbeat_us, slice_floor FROM session ORDER BY id',
  ),
  putSession: stmt(
    'put_session_7',
    `INSERT INTO session (id, info, started_us, heartbeat_us, slice_floor) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (id) DO UPDATE SET info = EXCLUDED.info, started_us = EXCLUDED.started_us,
       heartbeat_us = EXCLUDED.heartbeat_us, slice_floor = EXCLUDED.slice_floor`,
  ),
  // The reclaim floor's lock (engine.ts lockReclaimFloor): an advisory lock, so commits share it
  // without writing to any row, and it exists before the floor's counter row does.
  shareReclaimFloor: stmt('share_reclaim_floor', 'SELECT pg_advisory_xact_lock_shared(21325, 0)'),
  lockReclaimFloor: stmt('lock_reclaim_floor', 'SELECT pg_advisory_xact_lock(21325, 0)'),
  deleteSession: stmt('delete_session', 'DELETE FROM session WHERE id = $1'),

  // Lock decisions read all locks of an inode and then replace some: two servers must not
  // decide at once, so a write transaction first takes an advisory lock per inode.
  lockInodeLocks: stmt(
    'lock_inode_locks',
    'SELECT pg_advisory_xact_lock(21324, ($1::bigint % 2147483647)::int)',
  ),
  listLocks: stmt(
    'list_locks',
    'SELECT ino, session, owner, flock, type, start, "end", pid FROM lock WHERE ino = $1 ORDER BY start',
  ),
  replaceLocks: stmt(
    'replace_locks',
    `WITH d AS (DELETE FROM lock WHERE ino = $1 AND session = $2 AND owner = $3 AND flock = $4)
     INSERT INTO lock (ino, session, owner, flock, type, start, "end", pid)
     SELECT $1, $2, $3, $4, t, s, e, p
       FROM unnest($5::text[], $6::bigint[], $7::bigint[], $8::int[]) AS l(t, s, e, p)`,
  ),
  deleteSessionLocks: stmt('delete_session_locks', 'DELETE FROM lock WHERE session = $1'),

  openCount: stmt('open_count', 'SELECT coalesce(sum(count), 0)::bigint AS n FROM open_file WHERE ino = $1'),
  addOpen: stmt(
    'add_open',
    `INSERT INTO open_file (session, ino, count) VALUES ($1, $2, $3)
     ON CONFLICT (session, ino) DO UPDATE SET count = open_file.count + EXCLUDED.count RETURNING count`,
  ),
  dropOpen: stmt('drop_open', 'DELETE FROM open_file WHERE session = $1 AND ino = $2 AND count <= 0'),
  takeSessionOpens: stmt('take_session_opens', 'DELETE FROM open_file WHERE session = $1 RETURNING ino'),

  addSliceRefs: stmt(
    'add_slice_refs',
    `INSERT INTO slice_ref (id, size, refs) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET refs = slice_ref.refs + EXCLUDED.refs RETURNING refs`,
  ),
  dropSliceRef: stmt('drop_slice_ref', 'DELETE FROM slice_ref WHERE id = $1 AND refs <= 0'),
  recordDeletedSlice: stmt(
    'record_deleted_slice',
    'INSERT INTO deleted_slice (id, size, deleted_us) VALUES ($1, $2, $3)',
  ),
  forgetDeletedSlices: stmt(
    'forget_deleted_slices',
    `DELETE FROM deleted_slice d USING unnest($1::bigint[], $2::bigint[]) AS f(id, deleted_us)
     WHERE d.id = f.id AND d.deleted_us = f.deleted_us`,
  ),
  sliceStates: stmt(
    'slice_states',
    `SELECT i.id, coalesce(r.refs, 0) AS refs,
       (SELECT max(d.deleted_us) FROM deleted_slice d WHERE d.id = i.id) AS last_deleted_us
     FROM unnest($1::bigint[]) WITH ORDINALITY AS i(id, n) LEFT JOIN slice_ref r ON r.id = i.id
     ORDER BY i.n`,
  ),
  listDeletedSlices: stmt(
    'list_deleted_slices',
    'SELECT id, size, deleted_us FROM deleted_slice WHERE deleted_us < $1 ORDER BY deleted_us, id LIMIT $2',
  ),
} as const;

/**
 * A string as an SQL literal: the same text as `pg.escapeLiteral` (quotes doubled; with a
 * backslash, the E'' form with backslashes doubled), built by two native replaces instead of a
 * loop of one-character concatenations: group commit quotes each transaction's whole batch.
 */
export function quoteLiteral(text: string): string {
  const quoted = text.replaceAll("'", "''");
  return text.includes('\\') ? ` E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`cannot inline ${value} into SQL: not a safe integer`);
    return value < 0 ? `(${value})` : String(value);
  }
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'string') return quoteLiteral(value);
  if (Buffer.isBuffer(value)) return `'\\x${value.toString('hex')}'::bytea`;
  if (Array.isArray(value)) return value.length === 0 ? `'{}'` : `ARRAY[${value.map(literal).join(', ')}]`;
  throw new Error(`cannot inline a ${typeof value} into SQL`);
}

/** SQL-level name of a statement (protocol-level prepared statements use `statement.name`). */
const sqlLevelName = (statement: Statement): string => `${statement.name}_x`;

/** PREPARE of a statement, once per connection, so batched statements skip parse and plan. */
export function prepareStatement(statement: Statement): string {
  return `PREPARE ${sqlLevelName(statement)} AS ${statement.text}`;
}

/** The statements of `used` not PREPAREd yet on a connection that has `prepared`. */
export function newStatements(prepared: ReadonlySet<string>, used: Iterable<Statement>): Statement[] {
  const fresh: Statement[] = [];
  for (const statement of used) if (!prepared.has(statement.name)) fresh.push(statement);
  return fresh;
}

/** EXECUTE of a PREPAREd statement with its parameters written in as literals. */
export function executeStatement(statement: Statement, values: readonly unknown[]): string {
  return values.length === 0
    ? `EXECUTE ${sqlLevelName(statement)}`
    : `EXECUTE ${sqlLevelName(statement)}(${values.map(literal).join(', ')})`;
}

// verify.mjs: an independent reader for tables written by sluice's file
// and Delta sinks, built on DuckDB (npm @duckdb/node-api), so tests can
// check our output with code we did not write.
//
// Usage:
//   node verify.mjs [--rows] [--order COL] [--csv-header] [--json-nested] TABLE_DIR
//
// The kind of table is detected: a _delta_log directory means Delta, a
// _spark_metadata directory means a file sink. The result is one JSON
// object on stdout:
//
//   file sink: {"kind":"file","latestBatch":N,"groupVersion":V,
//               "groupEnds":{"topic-partition":end},"files":[relative paths],
//               "count":rows,"columns":[{"name","type"}],"rows":[...]}
//   Delta:     {"kind":"delta","version":V,"txn":{appId:version},
//               "partitionColumns":[...],"files":[relative paths],
//               "count":rows,"columns":[...],"checkpoint":{...},"rows":[...]}
//
// The file sink's log is read here (latest N.compact plus later batch
// files, "delete" entries applied; in group mode also the group log
// _spark_metadata/group, in the same layout) and the listed files are read with
// read_parquet / read_json / read_csv (Hive partitioning on). The Delta
// log is replayed with DuckDB SQL over read_json(_delta_log/*.json,
// union_by_name): the table version is the highest commit, the txn of an
// appId is the one from its latest commit, live files are paths whose
// latest add/remove is an add; partition values come from the log, not
// from directory names. When _last_checkpoint exists, the checkpoint is
// read with read_parquet and the commits after it are replayed on top; the
// result must equal the full JSON replay ("checkpoint.agrees").
//
// --rows adds every row, ordered by --order (default: the first column),
// normalised for comparison: integers and timestamps (as microseconds
// since the epoch) as decimal strings, dates as days since the epoch,
// binary as base64, lists of {key,value} structs with base64 values; with
// --json-nested, other structs, lists and maps as DuckDB's to_json text.
//
// @duckdb/node-api is resolved from $SLUICE_DUCKDB_DIR/node_modules when
// that variable is set, else from this script's directory upwards.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const base = process.env.SLUICE_DUCKDB_DIR
  ? path.join(path.resolve(process.env.SLUICE_DUCKDB_DIR), 'x.js')
  : fileURLToPath(import.meta.url);
const require = createRequire(base);
const { DuckDBInstance } = require('@duckdb/node-api');

function parseArgs(argv) {
  const opts = { rows: false, order: null, csvHeader: false, jsonNested: false, dir: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rows') opts.rows = true;
    else if (a === '--order') opts.order = argv[++i];
    else if (a === '--csv-header') opts.csvHeader = true;
    else if (a === '--json-nested') opts.jsonNested = true;
    else if (a.startsWith('--')) throw new Error(`unknown flag ${a}`);
    else opts.dir = path.resolve(a);
  }
  if (!opts.dir) throw new Error('usage: node verify.mjs [--rows] [--order COL] [--csv-header] [--json-nested] TABLE_DIR');
  return opts;
}

const sqlString = (s) => `'${String(s).replaceAll("'", "''")}'`;
const ident = (s) => `"${String(s).replaceAll('"', '""')}"`;

async function all(conn, sql) {
  const r = await conn.runAndReadAll(sql);
  return r.getRowObjectsJson();
}

// normalised returns a SELECT list that renders each column of relation
// `rel` in the comparable form described above.
async function normalised(conn, rel, jsonNested) {
  const cols = await all(conn, `DESCRIBE SELECT * FROM ${rel}`);
  const exprs = cols.map(({ column_name: name, column_type: type }) => {
    const c = ident(name);
    let e = c;
    if (/^TIMESTAMP/.test(type)) e = `CAST(epoch_us(${c}) AS VARCHAR)`;
    else if (type === 'DATE') e = `CAST(${c} - DATE '1970-01-01' AS VARCHAR)`;
    else if (type === 'BLOB') e = `to_base64(${c})`;
    else if (/^(BIGINT|INTEGER|SMALLINT|TINYINT|HUGEINT)$/.test(type)) e = `CAST(${c} AS VARCHAR)`;
    else if (/^STRUCT\(.*\)\[\]$/.test(type) && /"?value"? BLOB/.test(type)) {
      e = `list_transform(${c}, x -> struct_pack(key := x.key, value := to_base64(x.value)))`;
    } else if (jsonNested && /^(STRUCT|MAP)\(|\[\]$/.test(type)) {
      e = `CAST(to_json(${c}) AS VARCHAR)`;
    }
    return `${e} AS ${c}`;
  });
  return { cols: cols.map((c) => ({ name: c.column_name, type: c.column_type })), list: exprs.join(', ') };
}

async function finish(conn, out, rel, opts) {
  const { cols, list } = await normalised(conn, rel, opts.jsonNested);
  out.columns = cols;
  out.count = Number((await all(conn, `SELECT count(*) AS n FROM ${rel}`))[0].n);
  if (opts.rows) {
    const order = opts.order ?? cols[0]?.name;
    out.rows = await all(conn, `SELECT ${list} FROM ${rel} ORDER BY ${rel}.${ident(order)}`);
  }
  return out;
}

// ---- file sink -------------------------------------------------------

// logEntries reads a file sink log directory (Spark's layout: N and
// N.compact files of "v1" then JSON lines) from its latest compact file on.
function logEntries(logDir) {
  if (!fs.existsSync(logDir)) return { latest: -1, entries: [] };
  const batches = fs.readdirSync(logDir)
    .map((name) => /^(\d+)(\.compact)?$/.exec(name))
    .filter(Boolean)
    .map((m) => ({ id: Number(m[1]), compact: !!m[2], name: m[0] }))
    .sort((a, b) => a.id - b.id || (a.compact ? 1 : -1));
  if (batches.length === 0) return { latest: -1, entries: [] };
  let start = 0;
  batches.forEach((b, i) => { if (b.compact) start = i; });
  const entries = [];
  for (const b of batches.slice(start)) {
    const lines = fs.readFileSync(path.join(logDir, b.name), 'utf8').split('\n');
    if (lines[0].trim() !== 'v1') throw new Error(`${b.name}: version ${lines[0]}`);
    for (const line of lines.slice(1)) if (line.trim()) entries.push(JSON.parse(line));
  }
  return { latest: batches[batches.length - 1].id, entries };
}

// fileSinkFiles merges the query log _spark_metadata with the group log
// _spark_metadata/group of group mode (same layout; its "sluice-group"
// record lines carry each batch's partition ranges, and the last range of
// a partition is where it ends: groupEnds {"topic-partition": end}).
function fileSinkFiles(dir) {
  const logDir = path.join(dir, '_spark_metadata');
  const own = logEntries(logDir);
  const group = logEntries(path.join(logDir, 'group'));
  const entries = [...own.entries, ...group.entries];
  const groupEnds = {};
  for (const e of group.entries) {
    if (e.action !== 'sluice-group') continue;
    for (const p of e.sluiceGroup.partitions ?? []) groupEnds[`${p.topic}-${p.partition}`] = p.end;
  }
  const deleted = new Set(entries.filter((e) => e.action === 'delete').map((e) => e.path));
  const seen = new Set();
  const files = [];
  for (const e of entries) {
    if (e.action !== 'add' || deleted.has(e.path) || seen.has(e.path)) continue;
    seen.add(e.path);
    files.push(e.path.startsWith('file:') ? fileURLToPath(new URL(e.path)) : e.path);
  }
  return { latestBatch: own.latest, groupVersion: group.latest, groupEnds, files };
}

async function verifyFileSink(conn, dir, opts) {
  const { latestBatch, groupVersion, groupEnds, files } = fileSinkFiles(dir);
  const out = {
    kind: 'file',
    latestBatch,
    groupVersion,
    groupEnds,
    files: files.map((f) => path.relative(dir, f).split(path.sep).join('/')).sort(),
  };
  if (files.length === 0) return { ...out, count: 0, columns: [], rows: opts.rows ? [] : undefined };
  const list = `[${files.map(sqlString).join(', ')}]`;
  let rel;
  if (files.every((f) => f.endsWith('.parquet'))) {
    rel = `read_parquet(${list}, hive_partitioning = true, union_by_name = true)`;
  } else if (files.every((f) => /\.json(\.gz)?$/.test(f))) {
    rel = `read_json(${list}, format = 'newline_delimited', hive_partitioning = true, union_by_name = true)`;
  } else if (files.every((f) => /\.csv(\.gz)?$/.test(f))) {
    rel = `read_csv(${list}, header = ${opts.csvHeader}, escape = '\\', hive_partitioning = true, union_by_name = true)`;
  } else {
    throw new Error('mixed or unknown file formats in the log');
  }
  await conn.run(`CREATE TEMP VIEW data AS SELECT * FROM ${rel}`);
  return finish(conn, out, 'data', opts);
}

// ---- Delta -----------------------------------------------------------

const deltaTypes = {
  string: 'VARCHAR', long: 'BIGINT', integer: 'INTEGER', short: 'SMALLINT', byte: 'TINYINT',
  double: 'DOUBLE', float: 'FLOAT', boolean: 'BOOLEAN', date: 'DATE', timestamp: 'TIMESTAMPTZ',
};

// liveFilesSQL replays add/remove actions of relation `acts` (path,
// version, is_add, pv) to the live set.
const liveFilesSQL = (acts) => `
  SELECT path, pv FROM (
    SELECT *, row_number() OVER (PARTITION BY path ORDER BY version DESC, is_add ASC) AS rn FROM ${acts}
  ) WHERE rn = 1 AND is_add = 1`;

async function verifyDelta(conn, dir, opts) {
  const logGlob = path.join(dir, '_delta_log', '*.json');
  await conn.run(`CREATE TEMP TABLE log AS
    SELECT *, CAST(regexp_extract(filename, '(\\d{20})\\.json$', 1) AS BIGINT) AS version
    FROM read_json(${sqlString(logGlob)}, filename = true, union_by_name = true, format = 'newline_delimited')`);
  const logCols = new Set((await all(conn, 'DESCRIBE log')).map((c) => c.column_name));
  const version = Number((await all(conn, 'SELECT max(version) AS v FROM log'))[0].v);
  const meta = (await all(conn, `SELECT metaData.schemaString AS schema, metaData.partitionColumns AS parts
    FROM log WHERE metaData IS NOT NULL ORDER BY version DESC LIMIT 1`))[0];
  const txn = {};
  if (logCols.has('txn')) {
    for (const r of await all(conn, `SELECT txn.appId AS app, arg_max(txn.version, version) AS v
        FROM log WHERE txn IS NOT NULL GROUP BY 1`)) txn[r.app] = Number(r.v);
  }
  const parts = meta.parts ?? [];
  const removes = logCols.has('remove')
    ? `UNION ALL SELECT remove.path, version, 0, NULL FROM log WHERE remove IS NOT NULL` : '';
  await conn.run(`CREATE TEMP TABLE acts AS
    SELECT add.path AS path, version, 1 AS is_add, to_json(add.partitionValues) AS pv FROM log WHERE add IS NOT NULL ${removes}`);
  const live = await all(conn, liveFilesSQL('acts'));

  const out = {
    kind: 'delta',
    version,
    txn,
    partitionColumns: parts,
    files: live.map((f) => decodeURIComponent(f.path)).sort(),
  };

  // The checkpoint, read independently, plus the commits after it.
  const lcPath = path.join(dir, '_delta_log', '_last_checkpoint');
  if (fs.existsSync(lcPath)) {
    const lc = JSON.parse(fs.readFileSync(lcPath, 'utf8'));
    const cpFile = path.join(dir, '_delta_log', `${String(lc.version).padStart(20, '0')}.checkpoint.parquet`);
    await conn.run(`CREATE TEMP TABLE cp AS SELECT * FROM read_parquet(${sqlString(cpFile)})`);
    const rows = Number((await all(conn, 'SELECT count(*) AS n FROM cp'))[0].n);
    await conn.run(`CREATE TEMP TABLE cpacts AS
      SELECT add.path AS path, ${lc.version} AS version, 1 AS is_add, NULL AS pv FROM cp WHERE add IS NOT NULL
      UNION ALL SELECT path, version, is_add, pv FROM acts WHERE version > ${lc.version}`);
    const cpLive = (await all(conn, liveFilesSQL('cpacts'))).map((f) => decodeURIComponent(f.path)).sort();
    const cpTxn = {};
    for (const r of await all(conn, `SELECT txn.appId AS app, txn.version AS v FROM cp WHERE txn IS NOT NULL`)) cpTxn[r.app] = Number(r.v);
    for (const r of await all(conn, `SELECT txn.appId AS app, arg_max(txn.version, version) AS v
        FROM log WHERE txn IS NOT NULL AND version > ${lc.version} GROUP BY 1`)) cpTxn[r.app] = Number(r.v);
    out.checkpoint = {
      version: lc.version,
      size: lc.size,
      rows,
      agrees: JSON.stringify(cpLive) === JSON.stringify(out.files) && JSON.stringify(sortKeys(cpTxn)) === JSON.stringify(sortKeys(txn)),
    };
  }

  if (live.length === 0) return { ...out, count: 0, columns: [] };
  const schema = JSON.parse(meta.schema);
  const partType = (name) => {
    const f = schema.fields.find((x) => x.name === name);
    return deltaTypes[f?.type] ?? 'VARCHAR';
  };
  const values = live.map((f) => `(${sqlString(path.join(dir, decodeURIComponent(f.path)))}, ${sqlString(f.pv ?? '{}')})`).join(', ');
  await conn.run(`CREATE TEMP TABLE livefiles AS SELECT * FROM (VALUES ${values}) t(abs, pv)`);
  const fileList = `[${live.map((f) => sqlString(path.join(dir, decodeURIComponent(f.path)))).join(', ')}]`;
  const partCols = parts.map((p) =>
    `CAST(json_extract_string(l.pv, ${sqlString('$.' + JSON.stringify(p))}) AS ${partType(p)}) AS ${ident(p)}`);
  const dataCols = schema.fields.filter((f) => !parts.includes(f.name)).map((f) => `d.${ident(f.name)}`);
  await conn.run(`CREATE TEMP VIEW data AS
    SELECT ${[...dataCols, ...partCols].join(', ')}
    FROM read_parquet(${fileList}, filename = true, union_by_name = true) d JOIN livefiles l ON d.filename = l.abs`);
  return finish(conn, out, 'data', opts);
}

function sortKeys(o) {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  let out;
  if (fs.existsSync(path.join(opts.dir, '_delta_log'))) out = await verifyDelta(conn, opts.dir, opts);
  else if (fs.existsSync(path.join(opts.dir, '_spark_metadata'))) out = await verifyFileSink(conn, opts.dir, opts);
  else throw new Error(`${opts.dir}: neither _delta_log nor _spark_metadata found`);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`verify.mjs: ${err.stack ?? err}\n`);
  process.exit(1);
});
